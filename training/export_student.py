"""Export the student's graphs to ONNX, optimise them for ONNX Runtime, and check them against torch.

Usage:
    python -m training.export_student --preset tiny --random-weights --out DIR [--precision float32]
        [--check] [--pack NAME]

Graphs (static shapes; F = chunk frames, N = tokens a frame, L = layers, P = past positions):

* ``encoder``: ``image`` uint8 ``[1, H, W, 3]`` → ``latent`` ``[1, C, h, w]``.
* ``reference``: ``latent`` → ``reference_embedding`` ``[1, width]`` (pooled reference only),
  ``reference_tokens`` ``[1, N, width]`` (aligned reference only) and ``reference_k_{l}``, ``reference_v_{l}``
  ``[1, heads, N, head_dim]``.
* ``student`` (custom op), ``student_fallback`` (ONNX Runtime's MultiHeadAttention with the block mask
  as a bias), ``student_dense`` (MultiHeadAttention over every key up to ``key_length``). Inputs:
  ``latent``, ``noise`` ``[F, C, h, w]``; ``timestep`` float32 ``[F]``; ``coefficients`` float32 ``[3]``
  (the step update, :mod:`inference.render.student.sampling`); ``pose`` uint8 ``[F, H, W, 3]``;
  ``reference_embedding``; ``reference_tokens``; ``token_order``, ``token_restore`` int64 ``[F · N]``; the mask: ``row_ptr``
  int32 ``[1, F · nb + 1]`` and ``col_idx`` int32 ``[1, F · nb · kv_blocks]`` (padded), or ``key_length``
  int32 ``[1]``; ``reference_k_{l}``/``reference_v_{l}``; ``past_k_{l}_{p}``/``past_v_{l}_{p}``
  ``[1, heads, N, head_dim]``. Outputs: ``x0`` and ``latent_next`` ``[F, C, h, w]``,
  ``present_k_{l}_{f}``/``present_v_{l}_{f}`` ``[1, heads, N, head_dim]`` (laid-out token order).
* ``decoder``: ``latent`` ``[F, C, h, w]`` → ``image`` uint8 ``[F, H, W, 3]``.

Optimisation (``ort-dit-calibration.md``): zero LayerNorm biases are added so that ONNX Runtime's
transformer optimizer fuses residual + LayerNorm (SkipLayerNormalization) and GELU(tanh) (FastGelu).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from training.models.attention import DenseAttention, SparseAttention, translation_table
from training.models.autoencoder import rgb_from_uint8, rgb_to_uint8
from training.models.config import PRESETS, StudentConfig, preset
from training.models.student import Student
from training.models.transformer import ReferenceEncoding, randomize_

log = logging.getLogger(__name__)
ONNX_OPSET = 18
STUDENT_KINDS = {"student": "sparse", "student_fallback": "fallback", "student_dense": "dense"}
DTYPES = {"float32": torch.float32, "float16": torch.float16}


# --------------------------------------------------------------------------------------------------
# Graph wrappers
# --------------------------------------------------------------------------------------------------

class EncoderGraph(nn.Module):
    def __init__(self, student: Student) -> None:
        super().__init__()
        self.autoencoder = student.autoencoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        dtype = self.autoencoder.latent_scale.dtype
        return self.autoencoder.encode(rgb_from_uint8(image).to(dtype))


class DecoderGraph(nn.Module):
    def __init__(self, student: Student) -> None:
        super().__init__()
        self.autoencoder = student.autoencoder

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return rgb_to_uint8(self.autoencoder.decode(latent))


class ReferenceGraph(nn.Module):
    def __init__(self, student: Student) -> None:
        super().__init__()
        self.transformer = student.transformer

    def forward(self, latent: torch.Tensor) -> tuple[torch.Tensor, ...]:
        embedding, kv, aligned = self.transformer.encode_reference(latent)
        flat = [t for pair in kv for t in pair]
        return tuple(t for t in (embedding, aligned) if t is not None) + tuple(flat)


class StudentStepGraph(nn.Module):
    """One denoising step (or the cache refresh) of a chunk, with flat inputs and outputs."""

    def __init__(self, student: Student, kind: str, positions: int) -> None:
        super().__init__()
        self.transformer = student.transformer
        self.config = student.config
        self.kind = kind
        self.positions = positions

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        config = self.config
        names = input_names(config, self.kind, self.positions)
        values = dict(zip(names, inputs, strict=True))
        depth = config.depth
        if self.kind == "dense":
            attention = DenseAttention(values["key_length"])
        else:
            attention = SparseAttention(values["row_ptr"], values["col_idx"], config.block_size)
        reference_kv = [(values[f"reference_k_{layer}"], values[f"reference_v_{layer}"]) for layer in range(depth)]
        past_kv = [[(values[f"past_k_{layer}_{p}"], values[f"past_v_{layer}_{p}"]) for p in range(self.positions)]
                   for layer in range(depth)]
        latent = values["latent"]
        reference = ReferenceEncoding(values.get("reference_embedding"), reference_kv, values.get("reference_tokens"))
        x0, present = self.transformer(latent, values["timestep"], values["pose"], reference, past_kv,
                                       values["token_order"], values["token_restore"], attention)
        a, b, c = values["coefficients"].to(latent.dtype).unbind(0)
        latent_next = a * x0 + b * latent + c * values["noise"]
        tokens = config.tokens_per_frame
        outputs = [x0, latent_next]
        for k, v in present:  # one Split each (a kernel per tensor, where slices would be one per frame)
            outputs += [t for frame in zip(k.split(tokens, dim=2), v.split(tokens, dim=2), strict=True) for t in frame]
        return tuple(outputs)


def input_names(config: StudentConfig, kind: str, positions: int) -> list[str]:
    """The student graph's input names, in order (see the module docstring)."""
    names = ["latent", "noise", "timestep", "coefficients", "pose"]
    if config.pooled_reference:
        names.append("reference_embedding")
    if config.aligned_reference:
        names.append("reference_tokens")
    names += ["token_order", "token_restore"]
    names += ["key_length"] if kind == "dense" else ["row_ptr", "col_idx"]
    for layer in range(config.depth):
        names += [f"reference_k_{layer}", f"reference_v_{layer}"]
    for layer in range(config.depth):
        for p in range(positions):
            names += [f"past_k_{layer}_{p}", f"past_v_{layer}_{p}"]
    return names


def output_names(config: StudentConfig) -> list[str]:
    """The student graph's output names, in order."""
    names = ["x0", "latent_next"]
    for layer in range(config.depth):
        for f in range(config.chunk_frames):
            names += [f"present_k_{layer}_{f}", f"present_v_{layer}_{f}"]
    return names


def reference_output_names(config: StudentConfig) -> list[str]:
    names = ["reference_embedding"] if config.pooled_reference else []
    names += ["reference_tokens"] if config.aligned_reference else []
    for layer in range(config.depth):
        names += [f"reference_k_{layer}", f"reference_v_{layer}"]
    return names


def positions_of(config: StudentConfig, kind: str) -> int:
    """Past positions of a student graph kind: K for the sparse ones, M for the dense one."""
    return config.cache_frames if kind == "dense" else config.top_k


# --------------------------------------------------------------------------------------------------
# Example inputs
# --------------------------------------------------------------------------------------------------

def example_step_inputs(config: StudentConfig, kind: str, dtype: torch.dtype, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random but valid inputs of a student graph (a real block mask from random poses)."""
    from inference.render.student import masks
    from training.models.student import csr_tensors

    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    frames, tokens, positions = config.chunk_frames, config.tokens_per_frame, positions_of(config, kind)
    latent_shape = (frames, config.latent_channels, config.latent_size, config.latent_size)
    kv_shape = (1, config.heads, tokens, config.head_dim)
    values: dict[str, torch.Tensor] = {
        "latent": torch.randn(latent_shape, generator=generator).to(dtype),
        "noise": torch.randn(latent_shape, generator=generator).to(dtype),
        "timestep": torch.rand(frames, generator=generator),
        "coefficients": torch.tensor([0.5, 0.3, 0.2]),
        "pose": torch.randint(0, 256, (frames, config.size, config.size, 3), generator=generator, dtype=torch.uint8),
        "reference_embedding": torch.randn(1, config.width, generator=generator).to(dtype),
        "reference_tokens": torch.randn(1, tokens, config.width, generator=generator).to(dtype),
    }
    orders = [rng.permutation(tokens) + f * tokens for f in range(frames)]
    order = np.concatenate(orders)
    restore = np.empty_like(order)
    restore[order] = np.arange(order.size)
    values["token_order"], values["token_restore"] = torch.from_numpy(order), torch.from_numpy(restore)
    if kind == "dense":
        values["key_length"] = torch.tensor([tokens * (1 + frames + positions - 1)], dtype=torch.int32)
    else:
        grid = config.grid
        bits = rng.integers(1, 64, size=(frames + positions, grid.blocks)).astype(np.uint8)
        allowed = np.ones((frames, positions), dtype=bool)
        allowed[:, -1] = False  # one empty position
        block_mask = masks.build_block_mask(bits[:frames], bits[frames:], allowed, tokens // grid.block_size)
        values["row_ptr"], values["col_idx"] = csr_tensors(block_mask)
    for layer in range(config.depth):
        for name in (f"reference_k_{layer}", f"reference_v_{layer}"):
            values[name] = torch.randn(kv_shape, generator=generator).to(dtype)
    for layer in range(config.depth):
        for p in range(positions):
            for name in (f"past_k_{layer}_{p}", f"past_v_{layer}_{p}"):
                values[name] = torch.randn(kv_shape, generator=generator).to(dtype)
    return {name: values[name] for name in input_names(config, kind, positions)}


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------

def _export(module: nn.Module, args: tuple, path: Path, names_in: list[str], names_out: list[str],
            sparse_target: str = "podium") -> None:
    program = torch.onnx.export(module, args, dynamo=True, opset_version=ONNX_OPSET, input_names=names_in,
                                output_names=names_out, custom_translation_table=translation_table(sparse_target),
                                optimize=True, verbose=False)
    program.save(str(path))
    _strip_export_metadata(path)


def _strip_export_metadata(path: Path) -> None:
    """Drops the exporter's per-node debug metadata (stack traces that name this machine's source paths, FX
    names, scopes) and its graph metadata: a graph we ship carries nothing of the machine it was made on."""
    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
    del model.graph.metadata_props[:]
    onnx.save(model, str(path))


def export_graph(student: Student, graph: str, path: Path, precision: str) -> None:
    """Exports one graph of the pack (``encoder``, ``reference``, ``student``, ``student_fallback``,
    ``student_dense``, ``decoder``) in ``precision`` to ``path``, then optimises it in place."""
    config = student.config
    dtype = DTYPES[precision]
    student = student.to(dtype).eval()
    latent = torch.randn(1, config.latent_channels, config.latent_size, config.latent_size).to(dtype)
    with torch.no_grad():
        if graph == "encoder":
            image = torch.randint(0, 256, (1, config.size, config.size, 3), dtype=torch.uint8)
            _export(EncoderGraph(student), (image,), path, ["image"], ["latent"])
        elif graph == "decoder":
            chunk = latent.expand(config.chunk_frames, -1, -1, -1).contiguous()
            _export(DecoderGraph(student), (chunk,), path, ["latent"], ["image"])
        elif graph == "reference":
            # Once per portrait, and loaded without the op library: standard ops only.
            _export(ReferenceGraph(student), (latent,), path, ["latent"], reference_output_names(config),
                    sparse_target="mha")
        elif graph in STUDENT_KINDS:
            kind = STUDENT_KINDS[graph]
            positions = positions_of(config, kind)
            inputs = example_step_inputs(config, kind, dtype)
            _export(StudentStepGraph(student, kind, positions), tuple(inputs.values()), path, list(inputs),
                    output_names(config), sparse_target="mha" if kind == "fallback" else "podium")
        else:
            raise ValueError(f"unknown graph {graph!r}")
    if graph in STUDENT_KINDS or graph == "reference":
        optimize_transformer_graph(path, config, use_gpu=precision == "float16")


def optimize_transformer_graph(path: Path, config: StudentConfig, *, use_gpu: bool) -> dict[str, int]:
    """Runs ONNX Runtime's transformer optimizer (model type "bert") in place, after giving every
    LayerNormalization a zero bias (the fusion needs one; numerically identical). Returns the fused
    operator counts (FastGelu, SkipLayerNormalization, ...)."""
    from onnxruntime.transformers.optimizer import optimize_model

    model = onnx.load(str(path))
    _add_zero_layer_norm_biases(model)
    with tempfile.TemporaryDirectory() as tmp, _custom_op_shape_inference():
        patched = Path(tmp) / "patched.onnx"
        onnx.save(model, str(patched))
        optimized = optimize_model(str(patched), model_type="bert", num_heads=config.heads, hidden_size=config.width,
                                   opt_level=0, use_gpu=use_gpu, only_onnxruntime=False)
        counts = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
        if use_gpu:
            counts["RMSNormInFloat16"] = rms_norms_in_half(optimized.model)
        optimized.save_model_to_file(str(path))
    log.info("%s: fused %s", path.name, counts)
    return counts


def rms_norms_in_half(model: onnx.ModelProto) -> int:
    """Runs the q/k RMSNorms of a float16 graph in float16; returns how many were rewritten.

    torch exports ``nn.RMSNorm`` on half inputs as Cast(float32) → SimplifiedLayerNormalization → Cast(float16), with
    its weight cast to float32 too. ONNX Runtime's float16 kernel accumulates in float32 (``stash_type`` 1) and
    rounds once to float16, so the casts only cost time (a tenth of a paper-scale chunk). Each such chain becomes
    one float16 SimplifiedLayerNormalization on the original input and weight.
    """
    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}
    to_float, to_half = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16

    def cast_to(node: onnx.NodeProto | None, element_type: int) -> bool:
        return (node is not None and node.op_type == "Cast"
                and any(a.name == "to" and a.i == element_type for a in node.attribute))

    initializers = {init.name: init for init in graph.initializer}
    removed: set[int] = set()
    replaced_weights: set[str] = set()
    rewritten = 0
    for norm in graph.node:
        if norm.op_type != "SimplifiedLayerNormalization" or len(norm.input) < 2:
            continue
        cast_in, weight = producer.get(norm.input[0]), norm.input[1]
        users = consumers.get(norm.output[0], [])
        if not (cast_to(cast_in, to_float) and len(users) == 1 and cast_to(users[0], to_half)) \
                or any(o in graph_outputs for o in norm.output[1:] if o):
            continue
        cast_weight = producer.get(weight)
        if cast_to(cast_weight, to_float):  # the float16 weight, cast
            half_weight = cast_weight.input[0]
        elif weight in initializers and initializers[weight].data_type == to_float:  # the cast, constant-folded
            half_weight = f"{weight}_float16"
            replaced_weights.add(weight)
            if half_weight not in initializers:
                values = numpy_helper.to_array(initializers[weight]).astype(np.float16)
                initializers[half_weight] = numpy_helper.from_array(values, half_weight)
                graph.initializer.append(initializers[half_weight])
        else:
            continue
        cast_out = users[0]
        norm.input[0], norm.input[1] = cast_in.input[0], half_weight
        norm.output[0] = cast_out.output[0]
        del norm.output[1:]  # the float32 statistics outputs, unused
        removed.add(id(cast_out))
        for cast in (cast_in, cast_weight):
            if cast is not None and all(user is norm for user in consumers.get(cast.output[0], [])):
                removed.add(id(cast))
        rewritten += 1
    used = {name for node in graph.node if id(node) not in removed for name in node.input}
    for name in replaced_weights - used:  # float32 weights that only the rewritten norms read
        graph.initializer.remove(initializers[name])
    kept = [node for node in graph.node if id(node) not in removed]
    del graph.node[:]
    graph.node.extend(kept)
    live = {name for node in kept for name in (*node.input, *node.output)}
    stale = [info for info in graph.value_info if info.name not in live]
    for info in stale:
        graph.value_info.remove(info)
    return rewritten


@contextlib.contextmanager
def _custom_op_shape_inference() -> Iterator[None]:
    """Teaches ONNX Runtime's symbolic shape inference the custom ops' outputs: BlockSparseAttention's has the shape
    and type of its q input; SplitHeadsNorm's three are qkv ``[B, N, 3 · heads · D]`` → ``[B, heads, N, D]``.
    Without it, inference fails on the custom ops and the optimizer skips the fusions that need shapes (residual +
    LayerNorm)."""
    from onnxruntime.transformers import shape_infer_helper  # imports its own copy of symbolic_shape_infer

    from inference.ops import OP_NAME, SPLIT_HEADS_OP_NAME

    inference_class = shape_infer_helper.SymbolicShapeInference
    original = inference_class.__init__

    def split_heads(self, node: onnx.NodeProto) -> None:  # noqa: ANN001
        batch, tokens, width = self._get_shape(node, 0)
        heads = next(a.i for a in node.attribute if a.name == "heads")
        head_dim = width // (3 * heads) if isinstance(width, int) else None
        element_type = self.known_vi_[node.input[0]].type.tensor_type.elem_type
        for name in node.output:
            self.known_vi_[name].CopyFrom(onnx.helper.make_tensor_value_info(
                name, element_type, [batch, heads, tokens, head_dim]))

    def patched(self, *args, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        original(self, *args, **kwargs)
        self.dispatcher_[OP_NAME] = self._pass_on_shape_and_type
        self.dispatcher_[SPLIT_HEADS_OP_NAME] = lambda node: split_heads(self, node)

    inference_class.__init__ = patched
    try:
        yield
    finally:
        inference_class.__init__ = original


def _add_zero_layer_norm_biases(model: onnx.ModelProto) -> None:
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    for index, node in enumerate(graph.node):
        if node.op_type == "LayerNormalization" and len(node.input) == 2 and node.input[1] in initializers:
            scale = numpy_helper.to_array(initializers[node.input[1]])
            name = f"{node.name or 'layer_norm'}_{index}_zero_bias"
            graph.initializer.append(numpy_helper.from_array(np.zeros_like(scale), name))
            node.input.append(name)


def export_all(student: Student, out_dir: Path, precisions: tuple[str, ...] = ("float32",),
               graphs: tuple[str, ...] = ("encoder", "reference", "student", "decoder")) -> dict[str, dict[str, str]]:
    """Exports ``graphs`` in every precision into ``out_dir``; returns ``{graph: {precision: file name}}``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, str]] = {}
    for precision in precisions:
        for graph in graphs:
            name = f"{graph}.onnx" if precision == "float32" else f"{graph}_{precision}.onnx"
            export_graph(student, graph, out_dir / name, precision)
            files.setdefault(graph, {})[precision] = name
    student.float()
    return files


# --------------------------------------------------------------------------------------------------
# Agreement with torch
# --------------------------------------------------------------------------------------------------

#: Largest |ONNX Runtime − torch| accepted, relative to the largest |torch| output of the graph
#: (float32 on the CPU: accumulation-order differences; float16 on CUDA: a few float16 ulps).
TOLERANCE = {"float32": 2e-4, "float16": 2e-2}


@dataclass(frozen=True)
class Agreement:
    graph: str
    precision: str
    provider: str
    max_abs_error: float
    reference_scale: float

    @property
    def relative_error(self) -> float:
        return self.max_abs_error / max(self.reference_scale, 1e-12)

    @property
    def ok(self) -> bool:
        return self.relative_error <= TOLERANCE[self.precision]


def check_student_graph(student: Student, path: Path, graph: str, precision: str, provider: str = "cpu",
                        seed: int = 1) -> Agreement:
    """Runs a student-kind graph in ONNX Runtime and in torch (float32) on the same random inputs."""
    config = student.config
    kind = STUDENT_KINDS[graph]
    inputs = example_step_inputs(config, kind, DTYPES[precision], seed=seed)
    outputs = _run_onnx(path, {k: v.numpy() for k, v in inputs.items()}, provider, custom_op=kind != "fallback")
    reference = StudentStepGraph(student.float().eval(), kind, positions_of(config, kind))
    with torch.no_grad():
        expected = reference(*(t.float() if t.is_floating_point() else t for t in inputs.values()))
    return _compare(graph, precision, provider, outputs, [t.numpy() for t in expected])


def check_plain_graph(student: Student, path: Path, graph: str, precision: str, provider: str = "cpu",
                      seed: int = 1) -> Agreement:
    """Encoder, reference or decoder in ONNX Runtime against torch (float32) on random inputs."""
    config = student.config
    generator = torch.Generator().manual_seed(seed)
    student = student.float().eval()
    latent = torch.randn(1, config.latent_channels, config.latent_size, config.latent_size, generator=generator)
    if graph == "encoder":
        module, args = EncoderGraph(student), (torch.randint(0, 256, (1, config.size, config.size, 3),
                                                             generator=generator, dtype=torch.uint8),)
    elif graph == "decoder":
        module, args = DecoderGraph(student), (latent.expand(config.chunk_frames, -1, -1, -1).contiguous(),)
    else:
        module, args = ReferenceGraph(student), (latent,)
    feeds = {name: (a.to(DTYPES[precision]) if a.is_floating_point() else a).numpy()
             for name, a in zip(_session_input_names(path), args, strict=True)}
    outputs = _run_onnx(path, feeds, provider, custom_op=False)
    with torch.no_grad():
        expected = module(*args)
    expected = expected if isinstance(expected, tuple) else (expected,)
    return _compare(graph, precision, provider, outputs, [t.numpy() for t in expected])


def _session_input_names(path: Path) -> list[str]:
    return [i.name for i in onnx.load(str(path), load_external_data=False).graph.input]


def _run_onnx(path: Path, feeds: dict[str, np.ndarray], provider: str, *, custom_op: bool) -> list[np.ndarray]:
    import onnxruntime as ort

    from inference import ops

    options = ort.SessionOptions()
    if custom_op:
        ops.register(options)
    providers = ["CUDAExecutionProvider"] if provider == "cuda" else ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), options, providers=providers)
    return session.run(None, feeds)


def _compare(graph: str, precision: str, provider: str, actual: list[np.ndarray],
             expected: list[np.ndarray]) -> Agreement:
    if len(actual) != len(expected):
        raise AssertionError(f"{graph}: ONNX Runtime gave {len(actual)} outputs, torch {len(expected)}")
    error, scale = 0.0, 0.0
    for a, e in zip(actual, expected, strict=True):
        if a.shape != e.shape:
            raise AssertionError(f"{graph}: output shape {a.shape} from ONNX Runtime, {e.shape} from torch")
        a64, e64 = a.astype(np.float64), e.astype(np.float64)
        error = max(error, float(np.abs(a64 - e64).max(initial=0.0)))
        scale = max(scale, float(np.abs(e64).max(initial=0.0)))
    if np.issubdtype(expected[0].dtype, np.integer):
        scale = 255.0
    return Agreement(graph, precision, provider, error, scale)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------

def verify_pack(student: Student, pack_path: Path, provider: str, chunks: int = 6) -> list[str]:
    """Checks every graph of a pack against ``student`` on ``provider``, then streams ``chunks`` chunks
    through the ONNX Runtime engine and the torch reference stream; returns failures (empty: all agree)."""
    from inference.packs import load_pack
    from inference.render.student.engine import StudentEngine
    from training.models.student import TorchStream

    pack = load_pack(pack_path)
    failures = []
    for graph, variants in pack.manifest.graphs.items():
        for precision, file in variants.items():
            check = check_student_graph if graph in STUDENT_KINDS else check_plain_graph
            result = check(student, pack.path / file, graph, precision, provider)
            print(f"{graph} {precision} {provider}: max |ORT - torch| = {result.max_abs_error:.3g} "
                  f"(relative {result.relative_error:.3g}, tolerance {TOLERANCE[precision]:g}) "
                  f"{'ok' if result.ok else 'FAILED'}")
            if not result.ok:
                failures.append(f"{graph} ({precision}, {provider})")
    config = student.config
    rng = np.random.default_rng(0)
    portrait = rng.integers(0, 256, (config.size, config.size, 3), dtype=np.uint8)
    keypoints = _wandering_keypoints(rng, chunks * config.chunk_frames)
    for attention in ("sparse", "dense"):
        if ATTENTION_GRAPH_OF[attention] not in pack.manifest.graphs:
            continue
        engine = StudentEngine(pack, provider=provider, attention=attention, seed=3)
        reference = TorchStream(student.float().eval(), sparse=attention != "dense", seed=3)
        engine.set_reference(portrait)
        reference.set_reference(portrait)
        worst = 0
        for c in range(chunks):
            window = keypoints[c * config.chunk_frames:(c + 1) * config.chunk_frames]
            ours, _ = engine.render_chunk(window)
            worst = max(worst, int(np.abs(ours.astype(int) - reference.render(window).astype(int)).max()))
        limit = STREAM_TOLERANCE[engine.precision]
        print(f"stream {attention} {engine.precision} {provider}: {chunks} chunks, max |ORT - torch| = {worst} of 255 "
              f"(tolerance {limit}) {'ok' if worst <= limit else 'FAILED'}")
        if worst > limit:
            failures.append(f"stream {attention}")
    return failures


#: Largest per-pixel difference (0-255) between the engine's frames and the torch stream's.
STREAM_TOLERANCE = {"float32": 2, "float16": 24}
ATTENTION_GRAPH_OF = {"sparse": "student", "dense": "student_dense"}


def _wandering_keypoints(rng: np.random.Generator, frames: int) -> np.ndarray:
    """A random-walk keypoint stream (all points visible) for stream checks."""
    start = rng.uniform(0.2, 0.8, size=(134, 2))
    walk = np.cumsum(rng.normal(0.0, 0.01, size=(frames, 134, 2)), axis=0)
    xy = np.clip(start[None] + walk, 0.0, 1.0)
    return np.concatenate([xy, np.full((frames, 134, 1), 0.9)], axis=2).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export_student", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--checkpoint", type=Path, help="state dict of a trained Student (default: random weights)")
    parser.add_argument("--random-weights", action="store_true", help="export untrained, randomised weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="export into this folder")
    parser.add_argument("--save-weights", type=Path, help="also save the exported state dict here")
    parser.add_argument("--precision", action="append", choices=sorted(DTYPES), help="repeatable; default float32")
    parser.add_argument("--graphs", default="encoder,reference,student,student_fallback,student_dense,decoder")
    parser.add_argument("--check", action="store_true", help="compare every exported graph with torch on the CPU")
    parser.add_argument("--verify-pack", type=Path, help="instead of exporting: check a pack's graphs and stream "
                                                          "against the weights of --checkpoint")
    parser.add_argument("--provider", default="cpu", choices=["cpu", "cuda"], help="for --verify-pack")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.checkpoint and not args.random_weights:
        parser.error("give --checkpoint or --random-weights")
    config = preset(args.preset)
    student = Student(config)
    if args.checkpoint:
        student.load_state_dict(torch.load(args.checkpoint, map_location="cpu"))
    else:
        randomize_(student, args.seed)
    student.eval()
    if args.verify_pack:
        failures = verify_pack(student, args.verify_pack, args.provider)
        print("all graphs agree" if not failures else "disagree: " + ", ".join(failures))
        return 1 if failures else 0
    if not args.out:
        parser.error("give --out (or --verify-pack)")
    if args.save_weights:
        args.save_weights.parent.mkdir(parents=True, exist_ok=True)
        torch.save(student.state_dict(), args.save_weights)
    precisions = tuple(args.precision or ["float32"])
    files = export_all(student, args.out, precisions, tuple(args.graphs.split(",")))
    (args.out / "export.json").write_text(json.dumps({"preset": args.preset, "graphs": files}, indent=2) + "\n")
    status = 0
    if args.check and "float32" in precisions:
        for graph, variants in files.items():
            path = args.out / variants["float32"]
            check = check_student_graph if graph in STUDENT_KINDS else check_plain_graph
            result = check(student, path, graph, "float32")
            print(f"{graph}: max |ORT - torch| = {result.max_abs_error:.3g} (relative {result.relative_error:.3g}, "
                  f"tolerance {TOLERANCE['float32']:g}) {'ok' if result.ok else 'FAILED'}")
            status |= not result.ok
    return status


if __name__ == "__main__":
    raise SystemExit(main())
