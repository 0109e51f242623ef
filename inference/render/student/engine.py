"""The streaming engine of the IASA student: keypoint chunks in, RGB frames out, through ONNX Runtime.

Per chunk: plan it on the host (:mod:`inference.render.student.planner`: top-K frame selection,
region layout, CSR block mask), draw the pose maps, upload the small per-chunk inputs, run the
student graph once per sampling step, decode, then run the student once more at the clean time to
write the chunk's keys and values into free cache slots.

Tensors stay where the execution provider wants them: every buffer (latents, the reference's and the
cached frames' keys and values, masks) is allocated once on the device and bound with IO binding;
the past inputs of the graph are bound *by pointer* to the selected cache slots (one slot holds one
frame's keys and values for all layers, ``[layers, 2, 1, heads, N, head_dim]``), and the present
outputs straight into the slots the chunk's frames will occupy, so selecting frames and filling the
cache copy nothing. Only the rendered frames come back to the host. (CUDA graphs are not used: the
bindings change from chunk to chunk.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from inference.errors import CustomOpError, DeviceError, ModelLoadError
from inference.packs import ModelPack
from inference.render.pose_map import draw_pose_map
from inference.render.student import masks
from inference.render.student.planner import ChunkPlan, StreamPlanner
from inference.render.student.sampling import CLEAN_TIME, chunk_noise, schedule

ATTENTION_GRAPHS = {"sparse": "student", "fallback": "student_fallback", "dense": "student_dense"}
_NUMPY_TYPES = {"float32": np.float32, "float16": np.float16}


@dataclass
class ChunkTimings:
    """Host wall time of one chunk's parts, seconds (the device work is inside the run_* entries)."""

    plan: float = 0.0  # frame selection, regions, layout, block mask
    pose_maps: float = 0.0
    upload: float = 0.0  # per-chunk inputs and bindings
    steps: float = 0.0  # the student's sampling steps
    decode: float = 0.0  # decoder, including the copy of the frames to the host
    refresh: float = 0.0  # the cache pass at the clean time
    total: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class StudentEngine:
    """Streams chunks of ``manifest.chunk_size`` keypoint frames through one model pack.

    Args:
        pack: a verified pack (:func:`inference.packs.load_pack`).
        provider: "cuda" or "cpu".
        attention: "sparse" (the custom op), "fallback" (dense attention with the block mask as a bias:
            same result), "dense" (attend to the whole cache; another model regime, for comparison), or
            "auto" (sparse if the op loads, else fallback).
        precision: "float16" or "float32" (default: float16 on CUDA when the pack has it, float32 on CPU).
        seed: noise seed (a fixed seed renders the same frames).
        session_options: extra ``SessionOptions`` attributes (benchmarks set ``enable_profiling``).

    Raises:
        ModelLoadError, CustomOpError, DeviceError: with what to do.
    """

    def __init__(self, pack: ModelPack, *, provider: str = "cuda", attention: str = "auto",
                 precision: str | None = None, seed: int = 0, session_options: dict | None = None) -> None:
        import onnxruntime as ort

        self._ort = ort
        self.pack = pack
        manifest = self.manifest = pack.manifest
        self.provider = provider
        self.precision = precision or self._default_precision()
        self.attention = self._resolve_attention(attention)
        self.seed = seed
        self.dtype = _NUMPY_TYPES[self.precision]
        self.device = "cuda" if provider == "cuda" else "cpu"
        model = manifest.model
        self.frames, self.tokens = manifest.chunk_size, manifest.tokens_per_frame
        self.kv_shape = (1, model.heads, self.tokens, model.head_dim)
        self.latent_shape = (self.frames, model.latent_channels, manifest.latent_size[1], manifest.latent_size[0])
        rows, cols = manifest.token_grid
        self.grid = masks.TokenGrid(rows, cols, manifest.block_size)
        sparse = self.attention != "dense"
        self.planner = StreamPlanner(
            grid=self.grid, reference_tokens=self.tokens, chunk_size=self.frames, cache_frames=manifest.cache_frames,
            top_k=manifest.top_k, keep_recent=manifest.keep_recent,
            positions=manifest.top_k if sparse else manifest.cache_frames, sparse=sparse,
            aspect=manifest.resolution[0] / manifest.resolution[1])
        self.schedule = schedule(manifest.timesteps, manifest.sampler)

        self.sessions = {name: self._session(name, session_options)
                         for name in ("encoder", "reference", ATTENTION_GRAPHS[self.attention], "decoder")}
        self.student = self.sessions[ATTENTION_GRAPHS[self.attention]]
        self._check_signatures()
        self._allocate()
        self._binding = self.student.io_binding()
        self._bound_positions: list[int | None] = [-1] * self.planner.positions  # -1: never bound
        self._bind_fixed()
        self.has_reference = False
        self.last_plan: ChunkPlan | None = None
        self.reset()

    # -- set-up ---------------------------------------------------------------------------------------

    def _default_precision(self) -> str:
        available = self.pack.precisions("student")
        if self.provider == "cuda" and "float16" in available:
            return "float16"
        if "float32" in available:
            return "float32"
        raise ModelLoadError(f"model pack {self.pack.path} has only {', '.join(available)} graphs, which the "
                             f"{self.provider.upper()} execution provider cannot run; use a pack with float32 graphs")

    def _resolve_attention(self, attention: str) -> str:
        from inference import ops

        if attention not in (*ATTENTION_GRAPHS, "auto"):
            raise ValueError(f"attention must be auto, {', '.join(ATTENTION_GRAPHS)}; got {attention!r}")
        op_ok, op_reason = ops.availability()
        if attention == "auto":
            if op_ok:
                attention = "sparse"
            elif self.precision in self.pack.precisions("student_fallback"):
                attention = "fallback"
            else:
                raise CustomOpError(f"{op_reason}; the model pack {self.pack.path} has no fallback graph either")
        if attention == "sparse" and not op_ok:
            raise CustomOpError(op_reason)
        graph = ATTENTION_GRAPHS[attention]
        if self.precision not in self.pack.precisions(graph):
            raise ModelLoadError(f"model pack {self.pack.path} has no {self.precision} {graph} graph, which "
                                 f"{attention} attention needs; choose another attention mode or pack")
        return attention

    def _session(self, graph: str, extra_options: dict | None):  # noqa: ANN202 - onnxruntime.InferenceSession
        ort = self._ort
        options = ort.SessionOptions()
        options.log_severity_level = 3
        for key, value in (extra_options or {}).items():
            setattr(options, key, value)
        if graph == "student":
            from inference import ops

            ops.register(options)
        if self.provider == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise DeviceError("ONNX Runtime has no CUDA execution provider here: install onnxruntime-gpu "
                                  "(installer/setup.sh does on a machine with an NVIDIA driver)")
            providers = [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        source = self.pack.graph_source(graph, self.precision)
        try:
            return ort.InferenceSession(source, options, providers=providers, disabled_optimizers=["MatMulAddFusion"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"model pack {self.pack.path}: ONNX Runtime cannot load the {self.precision} "
                                 f"{graph} graph ({_first_line(exc)}); rebuild the pack with training/pack.py") from exc

    def _check_signatures(self) -> None:
        """The graphs' inputs and outputs must have the shapes the manifest implies ("wrong shapes")."""
        manifest, model = self.manifest, self.manifest.model
        width, height = manifest.resolution
        expected = {
            "encoder": ({"image": (1, height, width, 3)}, {"latent": (1, *self.latent_shape[1:])}),
            "decoder": ({"latent": self.latent_shape}, {"image": (self.frames, height, width, 3)}),
            "reference": ({"latent": (1, *self.latent_shape[1:])},
                          {f"reference_k_{layer}": self.kv_shape for layer in range(model.depth)}),
        }
        student_inputs = {"latent": self.latent_shape, "noise": self.latent_shape, "timestep": (self.frames,),
                          "pose": (self.frames, height, width, 3),
                          "token_order": (self.frames * self.tokens,)}
        student_inputs |= {f"past_k_{layer}_{p}": self.kv_shape
                           for layer in range(model.depth) for p in range(self.planner.positions)}
        student_outputs = {"x0": self.latent_shape} | {f"present_k_{layer}_{f}": self.kv_shape
                                                       for layer in range(model.depth) for f in range(self.frames)}
        expected[ATTENTION_GRAPHS[self.attention]] = (student_inputs, student_outputs)
        for graph, (inputs, outputs) in expected.items():
            session = self.sessions[graph]
            for kind, declared, wanted in (("input", session.get_inputs(), inputs),
                                           ("output", session.get_outputs(), outputs)):
                shapes = {arg.name: tuple(arg.shape) for arg in declared}
                for name, shape in wanted.items():
                    if name not in shapes:
                        raise ModelLoadError(f"model pack {self.pack.path}: the {graph} graph has no {kind} {name!r} "
                                             f"(is it a graph of another pack?); rebuild it with training/pack.py")
                    if shapes[name] != shape:
                        raise ModelLoadError(f"model pack {self.pack.path}: the {graph} graph's {kind} {name} has "
                                             f"shape {list(shapes[name])}, the manifest implies {list(shape)}; "
                                             f"the pack is inconsistent: rebuild it with training/pack.py")

    def _value(self, shape: tuple[int, ...], dtype: type) -> object:
        return self._ort.OrtValue.ortvalue_from_shape_and_type(list(shape), dtype, self.device, 0)

    def _allocate(self) -> None:
        manifest, model = self.manifest, self.manifest.model
        slot_shape = (model.depth, 2, *self.kv_shape)
        self._slot_bytes = int(np.prod(self.kv_shape)) * np.dtype(self.dtype).itemsize  # one layer's k or v
        self.slots = [self._value(slot_shape, self.dtype) for _ in range(self.planner.slots)]
        self.empty_slot = self._value(slot_shape, self.dtype)
        self.empty_slot.update_inplace(np.zeros(slot_shape, dtype=self.dtype))
        self.reference_kv = self._value(slot_shape, self.dtype)
        self.reference_embedding = self._value((1, model.width), self.dtype)
        self.latents = [self._value(self.latent_shape, self.dtype) for _ in range(2)]
        self.noise = self._value(self.latent_shape, self.dtype)
        self.x0 = self._value(self.latent_shape, self.dtype)
        self.scratch = self._value(self.latent_shape, self.dtype)
        self.timestep = self._value((self.frames,), np.float32)
        self.coefficients = self._value((3,), np.float32)
        width, height = manifest.resolution
        self.pose_host = np.zeros((self.frames, height, width, 3), dtype=np.uint8)
        self.pose = self._value(self.pose_host.shape, np.uint8)
        self.order = self._value((self.frames * self.tokens,), np.int64)
        self.restore = self._value((self.frames * self.tokens,), np.int64)
        if self.attention == "dense":
            self.key_length = self._value((1,), np.int32)
        else:
            q_blocks = self.frames * self.grid.blocks
            kv_blocks = (self.tokens + (self.frames + self.planner.positions) * self.tokens) // self.grid.block_size
            self.row_ptr_host = np.zeros((1, q_blocks + 1), dtype=np.int32)
            self.col_idx_host = np.zeros((1, q_blocks * kv_blocks), dtype=np.int32)
            self.row_ptr = self._value(self.row_ptr_host.shape, np.int32)
            self.col_idx = self._value(self.col_idx_host.shape, np.int32)
        self.image = self._ort.OrtValue.ortvalue_from_shape_and_type([self.frames, height, width, 3], np.uint8,
                                                                      "cpu", 0)

    def _pointer(self, slot: object, layer: int, which: int) -> int:
        return slot.data_ptr() + (layer * 2 + which) * self._slot_bytes

    def _bind_view(self, name: str, slot: object, layer: int, which: int, output: bool = False) -> None:
        bind = self._binding.bind_output if output else self._binding.bind_input
        bind(name, self.device, 0, self.dtype, list(self.kv_shape), self._pointer(slot, layer, which))

    def _bind_fixed(self) -> None:
        binding, model = self._binding, self.manifest.model
        names = {arg.name for arg in self.student.get_inputs()}
        for name, value in (("noise", self.noise), ("timestep", self.timestep), ("coefficients", self.coefficients),
                            ("pose", self.pose), ("token_order", self.order), ("token_restore", self.restore)):
            binding.bind_ortvalue_input(name, value)
        if "reference_embedding" in names:
            binding.bind_ortvalue_input("reference_embedding", self.reference_embedding)
        if self.attention == "dense":
            binding.bind_ortvalue_input("key_length", self.key_length)
        else:
            binding.bind_ortvalue_input("row_ptr", self.row_ptr)
            binding.bind_ortvalue_input("col_idx", self.col_idx)
        for layer in range(model.depth):
            self._bind_view(f"reference_k_{layer}", self.reference_kv, layer, 0)
            self._bind_view(f"reference_v_{layer}", self.reference_kv, layer, 1)

    # -- streaming ------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Starts a new stream: forgets the cache (the reference stays)."""
        self.planner.reset()
        self.rng = np.random.default_rng(self.seed)
        self.next_index = 0

    def set_reference(self, portrait: np.ndarray) -> None:
        """Encodes the reference portrait (uint8 ``[H, W, 3]`` at the pack's resolution) into its keys
        and values; starts a new stream."""
        width, height = self.manifest.resolution
        if portrait.shape != (height, width, 3) or portrait.dtype != np.uint8:
            raise ValueError(f"the reference must be uint8 [{height}, {width}, 3], got {portrait.dtype} "
                             f"{list(portrait.shape)}")
        latent = self.sessions["encoder"].run(None, {"image": np.ascontiguousarray(portrait)[None]})[0]
        session = self.sessions["reference"]
        binding = session.io_binding()
        binding.bind_cpu_input("latent", latent)
        outputs = {arg.name for arg in session.get_outputs()}
        if "reference_embedding" in outputs:
            binding.bind_ortvalue_output("reference_embedding", self.reference_embedding)
        for layer in range(self.manifest.model.depth):
            for which, name in enumerate((f"reference_k_{layer}", f"reference_v_{layer}")):
                binding.bind_output(name, self.device, 0, self.dtype, list(self.kv_shape),
                                    self._pointer(self.reference_kv, layer, which))
        session.run_with_iobinding(binding)
        self.has_reference = True
        self.reset()

    def render_chunk(self, keypoints: np.ndarray) -> tuple[np.ndarray, ChunkTimings]:
        """One chunk: float ``[F, 134, 3]`` keypoints → uint8 ``[F, H, W, 3]`` frames and the timings."""
        if not self.has_reference:
            raise RuntimeError("set_reference() must be called before render_chunk()")
        timings = ChunkTimings()
        start = time.perf_counter()
        plan = self.last_plan = self.planner.plan(keypoints, self.next_index)
        timings.plan = plan.seconds

        mark = time.perf_counter()
        size = self.manifest.resolution
        for f, frame in enumerate(keypoints):
            draw_pose_map(frame, size, out=self.pose_host[f])
        timings.pose_maps = time.perf_counter() - mark

        mark = time.perf_counter()
        self._upload_chunk(plan)
        noise = chunk_noise(self.rng, len(self.schedule), self.latent_shape)
        timings.upload = time.perf_counter() - mark

        mark = time.perf_counter()
        run = self.student.run_with_iobinding
        binding = self._binding
        self.latents[0].update_inplace(noise[0].astype(self.dtype, copy=False))
        binding.bind_ortvalue_output("x0", self.x0)
        for step, (t, coefficients) in enumerate(self.schedule):
            self.timestep.update_inplace(np.full(self.frames, t, dtype=np.float32))
            self.coefficients.update_inplace(coefficients)
            if step + 1 < len(noise):
                self.noise.update_inplace(noise[step + 1].astype(self.dtype, copy=False))
            binding.bind_ortvalue_input("latent", self.latents[step % 2])
            binding.bind_ortvalue_output("latent_next", self.latents[(step + 1) % 2])
            run(binding)
        timings.steps = time.perf_counter() - mark

        mark = time.perf_counter()
        frames = self._decode()
        timings.decode = time.perf_counter() - mark

        mark = time.perf_counter()
        self.timestep.update_inplace(np.full(self.frames, CLEAN_TIME, dtype=np.float32))
        binding.bind_ortvalue_input("latent", self.x0)
        binding.bind_ortvalue_output("x0", self.scratch)
        binding.bind_ortvalue_output("latent_next", self.latents[0])
        run(binding)
        self.planner.commit(plan)
        self.next_index += self.frames
        timings.refresh = time.perf_counter() - mark
        timings.total = time.perf_counter() - start
        return frames, timings

    def _upload_chunk(self, plan: ChunkPlan) -> None:
        self.pose.update_inplace(self.pose_host)
        self.order.update_inplace(plan.order)
        self.restore.update_inplace(plan.restore)
        if plan.block_mask is not None:
            masks.block_mask_to_padded_csr(plan.block_mask, self.row_ptr_host, self.col_idx_host)
            self.row_ptr.update_inplace(self.row_ptr_host)
            self.col_idx.update_inplace(self.col_idx_host)
        else:
            self.key_length.update_inplace(np.array([plan.key_length], dtype=np.int32))
        depth = self.manifest.model.depth
        for p, slot in enumerate(plan.position_slots):
            if slot == self._bound_positions[p]:
                continue
            value = self.slots[slot] if slot is not None else self.empty_slot
            for layer in range(depth):
                self._bind_view(f"past_k_{layer}_{p}", value, layer, 0)
                self._bind_view(f"past_v_{layer}_{p}", value, layer, 1)
            self._bound_positions[p] = slot
        for f, slot in enumerate(plan.destination_slots):
            for layer in range(depth):
                self._bind_view(f"present_k_{layer}_{f}", self.slots[slot], layer, 0, output=True)
                self._bind_view(f"present_v_{layer}_{f}", self.slots[slot], layer, 1, output=True)

    def _decode(self) -> np.ndarray:
        session = self.sessions["decoder"]
        binding = session.io_binding()
        binding.bind_ortvalue_input("latent", self.x0)
        binding.bind_ortvalue_output("image", self.image)
        session.run_with_iobinding(binding)
        return self.image.numpy().copy()  # numpy() is a view of the bound buffer, which the next chunk reuses

    def close(self) -> None:
        """Releases the sessions and the device buffers (the engine cannot render afterwards)."""
        self.sessions.clear()
        self.student = self._binding = None
        self.slots.clear()
        self.has_reference = False

    @property
    def description(self) -> str:
        m = self.manifest
        return (f"{m.name} {m.version}, {m.resolution[0]}x{m.resolution[1]}, {self.attention} attention, "
                f"{self.precision}, {self.provider.upper()}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
