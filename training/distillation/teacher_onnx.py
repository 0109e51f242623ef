"""A teacher as ONNX graphs, sampled many-step through ONNX Runtime (the ablation's teacher rows).

The teacher's clip denoiser is the student graph of :mod:`training.export_student` with the chunk grown to the
teacher's clip (``window`` frames) and one empty past position: :meth:`VideoTransformer.forward` over a clip
with the clip's region layout as token order computes exactly what :meth:`VideoTransformer.denoise_clips`
computes with :class:`.clip_attention.ClipAttention` (or, dense, with every key). The ``student`` graph (the
custom op) carries the sparse masks, ``student_dense`` the dense teacher (its key length leaves the empty
past position out).

:class:`OnnxTeacher` samples a stream as :func:`training.models.teacher.euler_sample` does: uniform Euler
steps from noise, every step denoising overlapping windows of the stream and fusing their predictions with
triangular weights (MimicMotion's progressive latent fusion), with classifier-free guidance over the pose if
asked (a second call a window with black pose maps, :func:`training.models.teacher.guided`), then decodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.render.pose_map import draw_pose_map
from inference.render.student.engine import OP_LIBRARY_GRAPHS
from inference.render.student.sampling import step_coefficients
from training.distillation.clip_attention import ClipMaskSpec, clip_mask, padded_csr
from training.export_student import export_all, input_names
from training.models.autoencoder import Autoencoder
from training.models.config import StudentConfig
from training.models.student import Student
from training.models.teacher import _triangle, _window_starts, guided
from training.models.transformer import VideoTransformer

_DTYPES = {"float32": np.float32, "float16": np.float16}


@dataclass(frozen=True)
class TeacherGraphs:
    """A teacher exported for ONNX Runtime.

    Attributes:
        folder: where the graphs are; files: graph name → file name.
        config: the exported configuration (the teacher's, with ``window`` frames a chunk, one past position).
        spec: the attention the teacher runs with (its own ``top_k``).
        precision: "float32" (CPU) or "float16" (CUDA).
    """

    folder: Path
    files: dict[str, str]
    config: StudentConfig
    spec: ClipMaskSpec
    precision: str

    @property
    def step_graph(self) -> str:
        return "student" if self.spec.sparse else "student_dense"


def export_teacher(transformer: VideoTransformer, autoencoder: Autoencoder, spec: ClipMaskSpec, folder: Path, *,
                   window: int, precision: str, exported: dict[str, str] | None = None) -> TeacherGraphs:
    """Exports a teacher's encoder, reference, clip-step and decoder graphs into ``folder``.

    Args:
        exported: graphs of this teacher already in ``folder`` (graph → file), not exported again (a dense and a
            sparse row of one teacher share all but the step graph).
    """
    config = transformer.config.with_(chunk_frames=window, cache_frames=1, top_k=1, keep_recent=1)
    step = "student" if spec.sparse else "student_dense"
    files = dict(exported or {})
    missing = tuple(g for g in ("encoder", "reference", step, "decoder") if g not in files)
    if missing:
        student = Student(config)
        student.transformer.load_state_dict(transformer.state_dict())
        student.autoencoder.load_state_dict(autoencoder.state_dict())
        made = export_all(student.eval(), folder, (precision,), missing)
        files |= {graph: variants[precision] for graph, variants in made.items()}
    return TeacherGraphs(folder, files, config, spec, precision)


class OnnxTeacher:
    """Renders keypoint streams with an exported teacher: ``steps`` Euler steps over fused windows.

    Args:
        graphs: from :func:`export_teacher`.
        provider: "cuda" or "cpu".
        steps: Euler steps; overlap: frames shared by neighbouring windows; seed: the noise.
        guidance: classifier-free guidance scale over the pose (1: none, one call a window and step; otherwise
            two, as MimicMotion's teacher samples with 2; for teachers trained with pose dropout).
    """

    def __init__(self, graphs: TeacherGraphs, provider: str, *, steps: int = 25, overlap: int = 4,
                 seed: int = 0, guidance: float = 1.0) -> None:
        import onnxruntime as ort

        from inference import ops

        self.ort = ort
        if not guidance > 0:
            raise ValueError(f"the guidance scale must be above 0, got {guidance:g}")
        self.graphs, self.steps, self.overlap, self.seed, self.guidance = graphs, steps, overlap, seed, guidance
        self.device = "cuda" if provider == "cuda" else "cpu"
        self.dtype = _DTYPES[graphs.precision]
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if provider == "cuda" else ["CPUExecutionProvider"]
        self.sessions = {}
        for graph, file in graphs.files.items():
            options = ort.SessionOptions()
            options.log_severity_level = 3
            if graph in OP_LIBRARY_GRAPHS:  # sparse or dense, their blocks use SplitHeadsNorm
                ops.register(options)
            self.sessions[graph] = ort.InferenceSession(str(graphs.folder / file), options, providers=providers,
                                                        disabled_optimizers=["MatMulAddFusion"])
        self.step = self.sessions[graphs.step_graph]
        self.reference: dict[str, object] = {}

    @property
    def window(self) -> int:
        return self.graphs.config.chunk_frames

    def _value(self, array: np.ndarray) -> object:
        return self.ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), self.device, 0)

    def set_reference(self, portrait: np.ndarray) -> None:
        """The portrait (uint8 ``[S, S, 3]``): its keys and values of every layer, kept on the device."""
        latent = self.sessions["encoder"].run(None, {"image": portrait[None]})[0]
        names = [o.name for o in self.sessions["reference"].get_outputs()]
        outputs = self.sessions["reference"].run(None, {"latent": latent})
        config = self.graphs.config
        empty = np.zeros((1, config.heads, config.tokens_per_frame, config.head_dim), dtype=self.dtype)
        self.reference = {name: self._value(value) for name, value in zip(names, outputs, strict=True)}
        self.reference |= {f"past_{kv}_{layer}_0": self._value(empty) for layer in range(config.depth) for kv in "kv"}

    def _window_inputs(self, keypoints: np.ndarray) -> dict[str, object]:
        """Per-window inputs that stay the same over the steps: pose maps, token layout, mask."""
        config, spec = self.graphs.config, self.graphs.spec
        size = (config.size, config.size)
        inputs = {"pose": np.stack([draw_pose_map(k, size, style=config.pose_style) for k in keypoints]),
                  "noise": np.zeros((self.window, config.latent_channels, config.latent_size, config.latent_size),
                                    dtype=self.dtype)}
        if spec.sparse:
            mask = clip_mask(keypoints, spec, extra_positions=1)
            row_ptr, col_idx = padded_csr(mask.block_mask)
            inputs |= {"token_order": mask.order, "token_restore": mask.restore, "row_ptr": row_ptr[None],
                       "col_idx": col_idx[None]}
        else:
            order = np.arange(self.window * config.tokens_per_frame, dtype=np.int64)
            inputs |= {"token_order": order, "token_restore": order,
                       "key_length": np.array([(1 + self.window) * config.tokens_per_frame], dtype=np.int32)}
        return {name: self._value(value) for name, value in inputs.items()}

    def render(self, keypoints: np.ndarray) -> np.ndarray:
        """A stream ``[N, 134, 3]`` (``N`` at least the window) → uint8 frames ``[N, S, S, 3]``."""
        if not self.reference:
            raise RuntimeError("set_reference() must be called before render()")
        frames, window, config = len(keypoints), self.window, self.graphs.config
        if frames < window:
            raise ValueError(f"the teacher renders streams of at least {window} frames, got {frames}")
        starts = _window_starts(frames, window, self.overlap)
        weights = _triangle(window).numpy() if len(starts) > 1 else np.ones(window, dtype=np.float32)
        fixed = [self._window_inputs(keypoints[s:s + window]) for s in starts]
        names = set(input_names(config, "dense" if not self.graphs.spec.sparse else "sparse", 1))
        no_pose = self._value(np.zeros((window, config.size, config.size, 3), dtype=np.uint8))  # teacher.without_pose
        rng = np.random.default_rng(self.seed)
        z = rng.standard_normal((frames, config.latent_channels, config.latent_size, config.latent_size),
                                dtype=np.float32)
        times = np.linspace(0.0, 1.0, self.steps + 1)
        for t, t_next in zip(times[:-1], times[1:], strict=True):
            fused = np.zeros_like(z)
            total = np.zeros(frames, dtype=np.float32)
            timestep = self._value(np.full(window, t, dtype=np.float32))
            coefficients = self._value(step_coefficients(float(t), float(t_next), "euler"))
            for start, inputs in zip(starts, fixed, strict=True):
                feeds = {"latent": self._value(z[start:start + window].astype(self.dtype)), "timestep": timestep,
                         "coefficients": coefficients, **inputs, **self.reference}
                feeds = {k: v for k, v in feeds.items() if k in names}
                x0 = self.step.run_with_ort_values(["x0"], feeds)[0].numpy()
                if self.guidance != 1.0:
                    free = self.step.run_with_ort_values(["x0"], feeds | {"pose": no_pose})[0].numpy()
                    x0 = guided(x0.astype(np.float32), free.astype(np.float32), self.guidance)
                fused[start:start + window] += x0.astype(np.float32) * weights[:, None, None, None]
                total[start:start + window] += weights
            a, b, _ = step_coefficients(float(t), float(t_next), "euler")
            z = float(a) * fused / total[:, None, None, None] + float(b) * z
        return self._decode(z)

    def _decode(self, z: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(z), self.window):
            piece = z[start:start + self.window]
            padded = np.concatenate([piece, np.repeat(piece[-1:], self.window - len(piece), axis=0)])
            out.append(self.sessions["decoder"].run(None, {"latent": padded.astype(self.dtype)})[0][:len(piece)])
        return np.concatenate(out)

