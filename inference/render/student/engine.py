"""The streaming engine of the IASA student: keypoint chunks in, RGB frames out, through ONNX Runtime.

A chunk goes through two phases:

* **prepare** (host only): plan it (:mod:`inference.render.student.planner`: top-K frame selection,
  region layout, CSR block mask) and record its frames in the planner's cache bookkeeping, draw the pose
  maps, draw the chunk's noise, and pack all of that into one host *staging* buffer;
* **execute**: upload the staging buffer (one host-to-device copy), copy the selected cached frames in,
  run the student graph once per sampling step, decode, run the student once more at the clean time (the
  refresh) to compute the chunk's keys and values, and copy those out into free cache slots.

:meth:`StudentEngine.render_chunk` does both in turn. :meth:`StudentEngine.render_stream` prepares chunk
n+1 on a helper thread while chunk n executes (ONNX Runtime releases the GIL while the GPU works), which
is how an offline render or a benchmark reaches the GPU's rate instead of the sum of host and GPU time.
Preparing only needs the keypoints: the planner's bookkeeping does not wait for the GPU.

Every buffer (latents, the reference's and the cached frames' keys and values, masks, the decoded
frames) is allocated once on the device and bound once with IO binding, so every run of a graph reads
and writes the same addresses. The per-chunk inputs (pose maps, token order, block mask or key length,
noise) are views into one device staging buffer; each sampling step has its own binding, whose
timestep and update coefficients are constants uploaded once. A *slot* holds one frame's keys and
values for all layers (``[layers, 2, 1, heads, N, head_dim]``, contiguous); the graph's past inputs are
bound to fixed *position buffers* of that shape and its present outputs to fixed *present buffers*.
Before the steps, a position whose selected frame changed gets a device-to-device copy of that slot (or
of the zero ``empty_slot`` when nothing is selected there; a position that already holds the frame is
not copied: each slot write gets a new serial number, which the positions remember); after the refresh,
the present buffers are copied into the chunk's destination slots (:mod:`.device_copy`, ONNX Runtime
only). Only the rendered frames come back to the host.

Because the addresses never change, the student and decoder runs can replay CUDA graphs (CUDA EP,
``enable_cuda_graph``): one graph per IO binding, chosen with the run option ``gpu_graph_id``. The
student has one binding per sampling step (step 0 reads the staged starting noise, later steps the
previous step's latent, alternating between two buffers) and one for the refresh (x̂ in, x̂ out to a
scratch buffer); the decoder one. ONNX Runtime captures a graph on the first run of its id on the calling
thread (after warm-up runs of its own, so that first run is slow) and replays it afterwards; no output of
a run is also its input, so those repeated runs change nothing. A session that ONNX Runtime refuses to
create with graphs, or whose capture fails, is rebuilt without them, with one logged warning; the frames
are the same either way. The CPU takes the same path without graphs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from inference.errors import CustomOpError, DeviceError, ModelLoadError, first_line
from inference.gpu import FIX as GPU_FIX
from inference.gpu import cuda_status, runs_on_cuda
from inference.packs import ModelPack
from inference.render.pose_map import draw_pose_map
from inference.render.student import masks
from inference.render.student.device_copy import Copy, DeviceCopier
from inference.render.student.planner import ChunkPlan, StreamPlanner
from inference.render.student.sampling import CLEAN_TIME, chunk_noise, schedule

log = logging.getLogger(__name__)

ATTENTION_GRAPHS = {"sparse": "student", "fallback": "student_fallback", "dense": "student_dense"}
OP_LIBRARY_ATTENTION = ("sparse", "dense")  # their graphs use the ai.podium ops; the fallback's none
OP_LIBRARY_GRAPHS = tuple(ATTENTION_GRAPHS[attention] for attention in OP_LIBRARY_ATTENTION)
_NUMPY_TYPES = {"float32": np.float32, "float16": np.float16}
GRAPH_ID_OPTION = "gpu_graph_id"  # ONNX Runtime run option: which captured CUDA graph a run replays
_EMPTY = 0  # what a position holds after the zero empty_slot was copied there (slot writes count from 1)
#: Serialises building engines (device allocations) against capturing CUDA graphs: ONNX Runtime captures in
#: CUDA's global mode, in which an allocation on another thread (the loader building the next renderer while
#: the render thread captures) would make the capture, or the allocation, fail.
GPU_SETUP_LOCK = threading.RLock()
#: Options of ONNX Runtime's CUDA execution provider for every graph. prefer_nhwc runs the convolutions (pose encoder,
#: decoder) channels-last, without cuDNN's layout conversions: on an H200, 13 % less GPU time for the bundled pack
#: (2.48 → 2.23 ms a chunk), frames within 4/255 of NCHW's (65.8 dB apart). Benchmarks change them (--cuda-option).
CUDA_PROVIDER_OPTIONS: dict[str, str] = {"prefer_nhwc": "1"}
#: Runs of a graphed binding by which ONNX Runtime has captured its graph (two plain warm-up runs, then the
#: capture); they run under :data:`GPU_SETUP_LOCK`, later replays do not.
CAPTURE_RUNS = 3


#: Byte alignment of each input inside the staging buffer.
STAGING_ALIGNMENT = 256

#: What the reference graph writes once per portrait and every step graph reads, beside the keys and values
#: (each only where the graphs have it: the pooled embedding, the aligned reference's tokens).
_REFERENCE_VECTORS = ("reference_embedding", "reference_tokens")


@dataclass
class ChunkTimings:
    """Host wall time of one chunk's parts, seconds (the device work is inside the steps, decode and refresh
    entries). In :meth:`StudentEngine.render_stream`, plan, pose maps and packing ran on the helper thread
    while the previous chunk executed; ``total`` is then this chunk's share of the stream's wall time."""

    plan: float = 0.0  # frame selection, regions, layout, block mask
    pose_maps: float = 0.0
    upload: float = 0.0  # packing the per-chunk inputs (CSR, noise) and the one host-to-device copy
    copies: float = 0.0  # cached frames into the position buffers, the chunk's keys and values into slots
    steps: float = 0.0  # the student's sampling steps
    decode: float = 0.0  # decoder, including the copy of the frames to the host
    refresh: float = 0.0  # the cache pass at the clean time
    total: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class Staging:
    """The per-chunk inputs packed into one buffer: named, aligned views of a host array and the matching
    device pointers of its device copy, so one ``update_inplace`` uploads a whole chunk.

    Args:
        fields: (name, shape, numpy dtype) of each input, in order.
        value_of: makes a device OrtValue of (shape, dtype) (the engine's allocator).
    """

    def __init__(self, fields: list[tuple[str, tuple[int, ...], type]],
                 value_of: Callable[[tuple[int, ...], type], object]) -> None:
        self.layout: dict[str, tuple[int, tuple[int, ...], np.dtype]] = {}
        offset = 0
        for name, shape, dtype in fields:
            offset = -(-offset // STAGING_ALIGNMENT) * STAGING_ALIGNMENT
            self.layout[name] = (offset, tuple(shape), np.dtype(dtype))
            offset += int(np.prod(shape)) * np.dtype(dtype).itemsize
        self.host = np.zeros(offset, dtype=np.uint8)
        self.device = value_of((offset,), np.uint8)
        self.views = {name: self.host[start:start + int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)
                      for name, (start, shape, dtype) in self.layout.items()}

    def pointer(self, name: str) -> int:
        """Device address of input ``name``."""
        return self.device.data_ptr() + self.layout[name][0]

    def upload(self) -> None:
        self.device.update_inplace(self.host)


@dataclass
class PreparedChunk:
    """A chunk planned, recorded in the planner and packed into the staging buffer, ready to execute."""

    plan: ChunkPlan
    timings: ChunkTimings


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
        cuda_graph: replay the student's and the decoder's runs as CUDA graphs. None (default): on CUDA
            wherever ONNX Runtime accepts them, off on the CPU; True on the CPU is refused (ValueError);
            False: never. :attr:`graphed` names the sessions that do.

    Raises:
        ModelLoadError, CustomOpError, DeviceError: with what to do.
        ValueError: an argument out of range.
    """

    def __init__(self, pack: ModelPack, *, provider: str = "cuda", attention: str = "auto",
                 precision: str | None = None, seed: int = 0, session_options: dict | None = None,
                 cuda_graph: bool | None = None) -> None:
        import onnxruntime as ort

        self._ort = ort
        self.pack = pack
        manifest = self.manifest = pack.manifest
        self.provider = provider
        use_graphs = self._resolve_cuda_graph(cuda_graph)
        self.precision = precision or self._default_precision()
        self.attention = self._resolve_attention(attention)
        self.student_graph = ATTENTION_GRAPHS[self.attention]
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

        self._session_options = session_options
        self.graphed: set[str] = set()  # the sessions whose runs replay CUDA graphs
        self._runs_done: dict[tuple[str, int], int] = {}  # (graph, binding) → runs so far, up to CAPTURE_RUNS
        graphable = (self.student_graph, "decoder")
        with GPU_SETUP_LOCK:  # no other engine is capturing a CUDA graph while this one allocates
            weights = pack.weight_files(self.precision)  # the graphs' shared weights, handed over from memory
            self.sessions = {name: self._session(name, weights, cuda_graph=use_graphs and name in graphable)
                             for name in ("encoder", "reference", *graphable)}
            self._check_signatures()
            self._allocate()
            self.copier = DeviceCopier(provider, width=max(self.frames, self.planner.positions))
            self._runs: dict[str, list[tuple[object, object]]] = {}  # graph → its (IOBinding, RunOptions)
            for graph in graphable:
                self._bind(graph)
        self.has_reference = False
        self.last_plan: ChunkPlan | None = None
        self.reset()

    # -- set-up ---------------------------------------------------------------------------------------

    def _resolve_cuda_graph(self, cuda_graph: bool | None) -> bool:
        if self.provider == "cuda":
            return cuda_graph is not False
        if cuda_graph:
            raise ValueError(f"cuda_graph=True needs provider='cuda' (CUDA graphs are a feature of ONNX Runtime's "
                             f"CUDA execution provider); the {self.provider.upper()} provider runs without them: "
                             f"pass cuda_graph=None or False")
        return False

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
        if attention in OP_LIBRARY_ATTENTION and not op_ok:
            raise CustomOpError(op_reason)
        graph = ATTENTION_GRAPHS[attention]
        if self.precision not in self.pack.precisions(graph):
            raise ModelLoadError(f"model pack {self.pack.path} has no {self.precision} {graph} graph, which "
                                 f"{attention} attention needs; choose another attention mode or pack")
        return attention

    def _session(self, graph: str, weights: dict[str, bytes],  # noqa: ANN202 - onnxruntime.InferenceSession
                 cuda_graph: bool = False):
        """The session of ``graph``; with ``cuda_graph``, one that captures CUDA graphs if ONNX Runtime
        accepts that for this graph (else a plain one, with a warning)."""
        ort = self._ort
        options = ort.SessionOptions()
        options.log_severity_level = 3
        for key, value in (self._session_options or {}).items():
            setattr(options, key, value)
        if weights:
            options.add_external_initializers_from_files_in_memory(list(weights), list(weights.values()),
                                                                   [len(data) for data in weights.values()])
        if graph == self.student_graph and self.attention in OP_LIBRARY_ATTENTION:
            from inference import ops

            ops.register(options)
        if self.provider == "cuda":
            cuda_ok, cuda_reason = cuda_status()
            if not cuda_ok:
                raise DeviceError(cuda_reason)
            cuda_options = ({"device_id": 0} | CUDA_PROVIDER_OPTIONS
                            | ({"enable_cuda_graph": "1"} if cuda_graph else {}))
            providers = [("CUDAExecutionProvider", cuda_options), "CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        source = self.pack.graph_source(graph, self.precision)
        try:
            session = ort.InferenceSession(source, options, providers=providers,
                                           disabled_optimizers=["MatMulAddFusion"])
        except Exception as exc:  # onnxruntime raises its own exception types
            if cuda_graph:
                self._cuda_graph_off(graph, f"ONNX Runtime refused them ({first_line(exc)})")
                return self._session(graph, weights)
            raise ModelLoadError(f"model pack {self.pack.path}: ONNX Runtime cannot load the {self.precision} "
                                 f"{graph} graph ({first_line(exc)}); rebuild the pack with training/pack.py") from exc
        if self.provider == "cuda" and not runs_on_cuda(session):  # ONNX Runtime fell back to the CPU
            raise DeviceError(f"ONNX Runtime could not run the {graph} graph of {self.pack.path} on CUDA (it fell back "
                              f"to the CPU): {GPU_FIX}")
        if cuda_graph:
            self.graphed.add(graph)
        return session

    def _cuda_graph_off(self, graph: str, reason: str) -> None:
        self.graphed.discard(graph)
        log.warning("student: the %s graph runs without CUDA graphs (more host time per chunk): %s", graph, reason)

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
        if model.aligned_reference:
            expected["reference"][1]["reference_tokens"] = (1, self.tokens, model.width)
            student_inputs["reference_tokens"] = (1, self.tokens, model.width)
        expected[self.student_graph] = (student_inputs, student_outputs)
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
        self._view_bytes = int(np.prod(self.kv_shape)) * np.dtype(self.dtype).itemsize  # one layer's k or v
        self._slot_bytes = model.depth * 2 * self._view_bytes
        self.slots = [self._value(slot_shape, self.dtype) for _ in range(self.planner.slots)]
        self.position_buffers = [self._value(slot_shape, self.dtype) for _ in range(self.planner.positions)]
        self.present_buffers = [self._value(slot_shape, self.dtype) for _ in range(self.frames)]
        self.empty_slot = self._value(slot_shape, self.dtype)
        self.empty_slot.update_inplace(np.zeros(slot_shape, dtype=self.dtype))
        self._slot_contents: list[int | None] = [None] * self.planner.slots  # serial number of the last write
        self._position_contents: list[int | None] = [None] * self.planner.positions  # None: unknown
        self._writes = 0
        self.reference_kv = self._value(slot_shape, self.dtype)
        self.reference_embedding = self._value((1, model.width), self.dtype)
        self.reference_tokens = (self._value((1, self.tokens, model.width), self.dtype) if model.aligned_reference
                                 else None)
        self.latents = [self._value(self.latent_shape, self.dtype) for _ in range(2)]
        self.x0 = self._value(self.latent_shape, self.dtype)
        self.scratch = self._value(self.latent_shape, self.dtype)
        times = [t for t, _ in self.schedule] + [CLEAN_TIME]  # each step's, then the refresh's
        coefficients = [c for _, c in self.schedule] + [self.schedule[-1][1]]  # the refresh's are unused
        self.step_times = [self._constant(np.full(self.frames, t, dtype=np.float32)) for t in times]
        self.step_coefficients = [self._constant(np.asarray(c, dtype=np.float32)) for c in coefficients]
        width, height = manifest.resolution
        tokens = self.frames * self.tokens
        fields = [("pose", (self.frames, height, width, 3), np.uint8), ("token_order", (tokens,), np.int64),
                  ("token_restore", (tokens,), np.int64)]
        if self.attention == "dense":
            fields.append(("key_length", (1,), np.int32))
        else:
            q_blocks = self.frames * self.grid.blocks
            kv_blocks = (self.tokens + (self.frames + self.planner.positions) * self.tokens) // self.grid.block_size
            fields += [("row_ptr", (1, q_blocks + 1), np.int32), ("col_idx", (1, q_blocks * kv_blocks), np.int32)]
        fields += [(f"noise_{s}", self.latent_shape, self.dtype) for s in range(len(self.schedule))]
        self.staging = Staging(fields, self._value)
        self.image = self._value((self.frames, height, width, 3), np.uint8)

    def _constant(self, array: np.ndarray) -> object:
        value = self._value(array.shape, array.dtype.type)
        value.update_inplace(array)
        return value

    def _bind_view(self, binding: object, name: str, slot: object, layer: int, which: int,
                   output: bool = False) -> None:
        """Binds ``name`` to layer ``layer``'s keys (``which`` 0) or values (1) inside a slot-shaped buffer."""
        bind = binding.bind_output if output else binding.bind_input
        bind(name, self.device, 0, self.dtype, list(self.kv_shape),
             slot.data_ptr() + (layer * 2 + which) * self._view_bytes)

    def _bind(self, graph: str) -> None:
        """Makes ``graph``'s IO bindings (the student's one per step and the refresh, the decoder's one), each
        with the run options that select its own CUDA graph when the session has them."""
        runs = []
        count = 1 if graph == "decoder" else len(self.schedule) + 1
        for index in range(count):
            binding = self.sessions[graph].io_binding()
            if graph == "decoder":
                binding.bind_ortvalue_input("latent", self.x0)
                binding.bind_ortvalue_output("image", self.image)
            else:
                self._bind_student(binding, index)
            options = self._ort.RunOptions()
            if graph in self.graphed:
                options.add_run_config_entry(GRAPH_ID_OPTION, str(index + 1))  # ORT reserves graph id 0
            runs.append((binding, options))
        self._runs[graph] = runs

    def _bind_student(self, binding: object, index: int) -> None:
        """Binds the student's run ``index``: sampling step ``index`` (its latent from the staged starting noise or
        the previous step, its next latent into the other buffer) or, past the last step, the refresh (x̂ in at
        the clean time, x̂ out to scratch); and what every run shares: the staged per-chunk inputs, the
        reference, the position buffers (past) and the present buffers."""
        steps = len(self.schedule)
        staging, latent_shape = self.staging, list(self.latent_shape)
        if index == steps:  # the refresh
            binding.bind_ortvalue_input("latent", self.x0)
            binding.bind_ortvalue_output("x0", self.scratch)
        else:
            if index == 0:
                binding.bind_input("latent", self.device, 0, self.dtype, latent_shape, staging.pointer("noise_0"))
            else:
                binding.bind_ortvalue_input("latent", self.latents[(index - 1) % 2])
            binding.bind_ortvalue_output("x0", self.x0)
        binding.bind_ortvalue_output("latent_next", self.latents[index % 2])
        # the noise of step s's update is drawn for step s+1; the last step's update lands on x̂ (no noise)
        binding.bind_input("noise", self.device, 0, self.dtype, latent_shape,
                           staging.pointer(f"noise_{min(index + 1, steps - 1)}"))
        binding.bind_ortvalue_input("timestep", self.step_times[index])
        binding.bind_ortvalue_input("coefficients", self.step_coefficients[index])
        names = {arg.name for arg in self.student.get_inputs()}
        for name, (_, shape, dtype) in staging.layout.items():
            if not name.startswith("noise_"):
                binding.bind_input(name, self.device, 0, dtype.type, list(shape), staging.pointer(name))
        for name in _REFERENCE_VECTORS:
            if name in names:
                binding.bind_ortvalue_input(name, getattr(self, name))
        for layer in range(self.manifest.model.depth):
            for which, kind in enumerate("kv"):
                self._bind_view(binding, f"reference_{kind}_{layer}", self.reference_kv, layer, which)
                for p, buffer in enumerate(self.position_buffers):
                    self._bind_view(binding, f"past_{kind}_{layer}_{p}", buffer, layer, which)
                for f, buffer in enumerate(self.present_buffers):
                    self._bind_view(binding, f"present_{kind}_{layer}_{f}", buffer, layer, which, output=True)

    @property
    def student(self):  # noqa: ANN201 - onnxruntime.InferenceSession
        """The student graph's session."""
        return self.sessions[self.student_graph]

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
        for name in _REFERENCE_VECTORS:
            if name in outputs:
                binding.bind_ortvalue_output(name, getattr(self, name))
        for layer in range(self.manifest.model.depth):
            self._bind_view(binding, f"reference_k_{layer}", self.reference_kv, layer, 0, output=True)
            self._bind_view(binding, f"reference_v_{layer}", self.reference_kv, layer, 1, output=True)
        with GPU_SETUP_LOCK:  # its outputs' device memory may be allocated here
            session.run_with_iobinding(binding)
        self.has_reference = True
        self.reset()

    def render_chunk(self, keypoints: np.ndarray) -> tuple[np.ndarray, ChunkTimings]:
        """One chunk: float ``[F, 134, 3]`` keypoints → uint8 ``[F, H, W, 3]`` frames and the timings."""
        if not self.has_reference:
            raise RuntimeError("set_reference() must be called before render_chunk()")
        start = time.perf_counter()
        prepared = self._prepare(keypoints)
        self._upload(prepared)
        frames, timings = self._execute(prepared)
        timings.total = time.perf_counter() - start
        return frames, timings

    def render_stream(self, chunks: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, ChunkTimings]]:
        """Renders chunk after chunk like :meth:`render_chunk` (the same frames), preparing each next chunk on a
        helper thread while the current one executes. For offline work, where the keypoints are known ahead."""
        if not self.has_reference:
            raise RuntimeError("set_reference() must be called before render_stream()")
        chunks = iter(chunks)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="student-prepare") as helper:
            upcoming = next(chunks, None)
            pending = None if upcoming is None else helper.submit(self._prepare, upcoming)
            while pending is not None:
                start = time.perf_counter()
                prepared = pending.result()
                self._upload(prepared)  # the staging buffer is free for the next chunk from here on
                upcoming = next(chunks, None)
                pending = None if upcoming is None else helper.submit(self._prepare, upcoming)
                frames, timings = self._execute(prepared)
                timings.total = time.perf_counter() - start
                yield frames, timings

    def _prepare(self, keypoints: np.ndarray) -> PreparedChunk:
        """Host work of a chunk: plan it and record it in the planner, draw its pose maps, pack its inputs."""
        timings = ChunkTimings()
        plan = self.last_plan = self.planner.plan(keypoints, self.next_index)
        self.planner.commit(plan)  # bookkeeping only: the next chunk can be planned before this one runs
        self.next_index += self.frames
        timings.plan = plan.seconds

        mark = time.perf_counter()
        views = self.staging.views
        size = self.manifest.resolution
        for f, frame in enumerate(keypoints):
            draw_pose_map(frame, size, out=views["pose"][f], style=self.manifest.model.pose_style)
        timings.pose_maps = time.perf_counter() - mark

        mark = time.perf_counter()
        views["token_order"][...] = plan.order
        views["token_restore"][...] = plan.restore
        if plan.block_mask is not None:
            masks.block_mask_to_padded_csr(plan.block_mask, views["row_ptr"], views["col_idx"])
        else:
            views["key_length"][0] = plan.key_length
        for s, noise in enumerate(chunk_noise(self.rng, len(self.schedule), self.latent_shape)):
            views[f"noise_{s}"][...] = noise
        timings.upload = time.perf_counter() - mark
        return PreparedChunk(plan, timings)

    def _upload(self, prepared: PreparedChunk) -> None:
        """Copies the staging buffer to the device (afterwards the host side may take the next chunk)."""
        mark = time.perf_counter()
        self.staging.upload()
        prepared.timings.upload += time.perf_counter() - mark

    def _execute(self, prepared: PreparedChunk) -> tuple[np.ndarray, ChunkTimings]:
        """Device work of a prepared and uploaded chunk."""
        plan, timings = prepared.plan, prepared.timings
        mark = time.perf_counter()
        self._copy_positions_in(plan)
        timings.copies = time.perf_counter() - mark

        mark = time.perf_counter()
        steps = len(self.schedule)
        for step in range(steps):
            self._run(self.student_graph, step)
        timings.steps = time.perf_counter() - mark

        mark = time.perf_counter()
        frames = self._decode()
        timings.decode = time.perf_counter() - mark

        mark = time.perf_counter()
        self._run(self.student_graph, steps)  # the refresh
        timings.refresh = time.perf_counter() - mark

        mark = time.perf_counter()
        self._copy_presents_out(plan)
        timings.copies += time.perf_counter() - mark
        return frames, timings

    def _copy_positions_in(self, plan: ChunkPlan) -> None:
        """Copies each position's selected slot (or the zero empty slot) into its buffer, unless the buffer
        already holds exactly that (the same write of the same slot)."""
        copies = []
        for p, slot in enumerate(plan.position_slots):
            contents = _EMPTY if slot is None else self._slot_contents[slot]
            if self._position_contents[p] != contents:
                source = self.empty_slot if slot is None else self.slots[slot]
                copies.append(Copy(source.data_ptr(), self.position_buffers[p].data_ptr(), self._slot_bytes))
                self._position_contents[p] = contents
        self.copier.copy(copies)

    def _copy_presents_out(self, plan: ChunkPlan) -> None:
        """Copies the refresh's keys and values of each frame into its destination slot."""
        copies = []
        for buffer, slot in zip(self.present_buffers, plan.destination_slots, strict=True):
            copies.append(Copy(buffer.data_ptr(), self.slots[slot].data_ptr(), self._slot_bytes))
            self._writes += 1
            self._slot_contents[slot] = self._writes
        self.copier.copy(copies)

    def _decode(self) -> np.ndarray:
        """Decodes x̂ into the device image buffer and returns a host copy of it."""
        self._run("decoder", 0)
        binding, _ = self._runs["decoder"][0]
        return binding.copy_outputs_to_cpu()[0]

    def _run(self, graph: str, index: int) -> None:
        """Runs ``graph`` with its binding ``index`` (its first :data:`CAPTURE_RUNS` runs with CUDA graphs under
        :data:`GPU_SETUP_LOCK`). If a session with CUDA graphs fails (capturing a graph can), it is rebuilt
        without them and the run repeated: no run overwrites its own inputs."""
        done = self._runs_done.get((graph, index), 0)
        if graph in self.graphed and done < CAPTURE_RUNS:
            with GPU_SETUP_LOCK:
                self._run_or_fall_back(graph, index)
            self._runs_done[graph, index] = done + 1
        else:
            self._run_or_fall_back(graph, index)

    def _run_or_fall_back(self, graph: str, index: int) -> None:
        binding, options = self._runs[graph][index]
        try:
            self.sessions[graph].run_with_iobinding(binding, options)
        except Exception as exc:  # onnxruntime raises its own exception types
            if graph not in self.graphed:
                raise
            self._cuda_graph_off(graph, f"running it with them failed ({first_line(exc)})")
            with GPU_SETUP_LOCK:
                self.sessions[graph] = self._session(graph, self.pack.weight_files(self.precision))
                self._bind(graph)
            self._run_or_fall_back(graph, index)

    def close(self) -> None:
        """Releases the sessions and the device buffers (the engine cannot render afterwards)."""
        self._runs.clear()
        self.sessions.clear()
        self.copier = None
        for buffers in (self.slots, self.position_buffers, self.present_buffers):
            buffers.clear()
        self.has_reference = False

    @property
    def description(self) -> str:
        m = self.manifest
        graphs = ", CUDA graphs" if self.graphed else ""
        return (f"{m.name} {m.version}, {m.resolution[0]}x{m.resolution[1]}, {self.attention} attention, "
                f"{self.precision}, {self.provider.upper()}{graphs}")
