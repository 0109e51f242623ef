"""BlockSparseAttention and SplitHeadsNorm under ONNX Runtime's CUDA execution provider, against the float64
references.

Runs where onnxruntime has the CUDA execution provider, the op library has CUDA kernels and torch
sees a GPU (torch holds the device buffers); otherwise every test is skipped with the reason.
Inputs are fresh random data (the seed is printed), bound on the device with IO binding; the output
buffer is filled with NaN first. The reference runs on the inputs rounded to the kernel's type.
Tolerance: relative Frobenius error |out - ref| / |ref| <= 2e-3 (float16), 1.5e-2 (bfloat16); no NaN;
the rows of query blocks without kept key blocks exactly zero.
PODIUM_BSA_KERNEL=mma runs the portable mma.sync kernel on Hopper too (bench/gpu/op_check.sh runs
this file both ways).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto
from op_cases import MASK_KINDS, AttentionCase, make_case

from inference import ops
from inference.gpu import cuda_status
from inference.ops import csr, graphs
from inference.ops.reference import reference_split_heads_norm

TOLERANCE = {"float16": 2e-3, "bfloat16": 1.5e-2}


def _skip_reason() -> str | None:
    cuda_ok, cuda_reason = cuda_status()
    if not cuda_ok:
        return cuda_reason
    if not ops.has_cuda_kernel():
        return "the op library was built without CUDA kernels (no nvcc at build time)"
    try:
        import torch
    except ImportError:
        return "torch is not installed; these tests use it for device buffers"
    if not torch.cuda.is_available():
        return "torch sees no CUDA GPU"
    return None


_SKIP_REASON = _skip_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_SKIP_REASON is not None, reason=str(_SKIP_REASON))]


@pytest.fixture(scope="module")
def torch_cuda():
    import torch

    return torch


def onnx_type(torch, dtype) -> int:
    return {torch.float16: TensorProto.FLOAT16, torch.bfloat16: TensorProto.BFLOAT16, torch.float32: TensorProto.FLOAT,
            torch.int32: TensorProto.INT32}[dtype]


def cuda_session(model, *, cuda_graph: bool = False) -> ort.InferenceSession:
    options = ort.SessionOptions()
    ops.register(options)
    cuda_options = {"device_id": 0, "enable_cuda_graph": "1" if cuda_graph else "0"}
    sess = ort.InferenceSession(model.SerializeToString(), options,
                                providers=[("CUDAExecutionProvider", cuda_options), "CPUExecutionProvider"])
    assert sess.get_providers()[0] == "CUDAExecutionProvider"
    return sess


class DeviceCall:
    """Device copies of a case's inputs and a NaN-filled output, bound to a session."""

    def __init__(self, torch, sess: ort.InferenceSession, case: AttentionCase, dtype: str) -> None:
        self.torch = torch
        self.dtype = getattr(torch, dtype)
        self.tensors = {name: self._to_device(value) for name, value in case.inputs().items()}
        self.out = torch.full(case.q.shape, float("nan"), dtype=self.dtype, device="cuda")
        self.binding = sess.io_binding()
        for name, tensor in self.tensors.items():
            self._bind(self.binding.bind_input, name, tensor)
        self._bind(self.binding.bind_output, "out", self.out)
        self.sess = sess

    def _to_device(self, value: np.ndarray):
        if value.size == 0:  # keep a real device address behind an empty tensor
            return self.torch.zeros(1, dtype=self.torch.int32, device="cuda")[:0].reshape(value.shape)
        tensor = self.torch.from_numpy(value).cuda()
        return tensor.to(self.dtype) if value.dtype == np.float32 else tensor

    def _bind(self, bind, name: str, tensor) -> None:
        bind(name, "cuda", 0, onnx_type(self.torch, tensor.dtype), list(tensor.shape), tensor.data_ptr())

    def load(self, case: AttentionCase) -> None:
        """Copies new inputs into the same device buffers (same shapes) and poisons the output again."""
        for name, value in case.inputs().items():
            self.tensors[name].copy_(self._to_device(value))
        self.out.fill_(float("nan"))

    def run(self) -> np.ndarray:
        self.sess.run_with_iobinding(self.binding)
        self.torch.cuda.synchronize()
        return self.out.double().cpu().numpy()

    def rounded(self, name: str) -> np.ndarray:
        return self.tensors[name].double().cpu().numpy()


def check(torch, sess: ort.InferenceSession, case: AttentionCase, dtype: str) -> None:
    call = DeviceCall(torch, sess, case, dtype)
    out = call.run()
    assert not np.isnan(out).any(), "some output elements were not written"
    expected = case.expected(call.rounded("q"), call.rounded("k"), call.rounded("v"))
    error = np.linalg.norm(out - expected) / max(np.linalg.norm(expected), 1e-30)
    assert error <= TOLERANCE[dtype], f"relative error {error:.2e}"
    empty = case.empty_query_rows()
    if empty.ndim == 2:
        empty = np.broadcast_to(empty[:, None], out.shape[:3])
    assert (out[empty] == 0).all(), "query rows without a kept key block must be exactly zero"


_sessions: dict[tuple, ort.InferenceSession] = {}


def op_session(dtype: str, block_size: int, *, per_head: bool = False,
               scale: float | None = None) -> ort.InferenceSession:
    key = (dtype, block_size, per_head, scale)
    if key not in _sessions:
        model = graphs.block_sparse_attention_model(dtype if dtype == "bfloat16" else np.float16, block_size,
                                                    per_head_mask=per_head, scale=scale)
        _sessions[key] = cuda_session(model)
    return _sessions[key]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
class TestCorrectness:
    @pytest.mark.parametrize("block_size", [64, 128])
    @pytest.mark.parametrize("kind", MASK_KINDS)
    def test_mask_kinds_with_partial_blocks(self, torch_cuda, rng: np.random.Generator, dtype: str,
                                            block_size: int, kind: str) -> None:
        q_len = int(rng.integers(block_size + 1, 4 * block_size)) | 1
        kv_len = int(rng.integers(block_size + 1, 5 * block_size)) | 1
        case = make_case(rng, batch=2, heads=3, q_len=q_len, kv_len=kv_len, head_dim=64, block_size=block_size,
                         kind=kind)
        check(torch_cuda, op_session(dtype, block_size), case, dtype)

    @pytest.mark.parametrize("block_size", [64, 128])
    def test_head_dim_128(self, torch_cuda, rng: np.random.Generator, dtype: str, block_size: int) -> None:
        case = make_case(rng, batch=2, heads=2, q_len=333, kv_len=517, head_dim=128, block_size=block_size)
        check(torch_cuda, op_session(dtype, block_size), case, dtype)

    def test_per_head_mask_and_scale(self, torch_cuda, rng: np.random.Generator, dtype: str) -> None:
        case = make_case(rng, batch=2, heads=3, q_len=300, kv_len=450, head_dim=64, block_size=64, per_head=True,
                         scale=0.2)
        check(torch_cuda, op_session(dtype, 64, per_head=True, scale=0.2), case, dtype)

    def test_long_sequences(self, torch_cuda, rng: np.random.Generator, dtype: str) -> None:
        case = make_case(rng, batch=1, heads=4, q_len=2048 + 77, kv_len=3000, head_dim=64, block_size=128)
        check(torch_cuda, op_session(dtype, 128), case, dtype)

    def test_short_sequences(self, torch_cuda, rng: np.random.Generator, dtype: str) -> None:
        case = make_case(rng, batch=3, heads=2, q_len=5, kv_len=1, head_dim=64, block_size=64, kind="full")
        check(torch_cuda, op_session(dtype, 64), case, dtype)


def fixed_count_case(rng: np.random.Generator, kept_per_row: int) -> AttentionCase:
    """A case whose nnz does not change from draw to draw (for reused device buffers)."""
    q_blocks, kv_blocks = 6, 8
    mask = np.zeros((1, q_blocks, kv_blocks), dtype=bool)
    for r in range(q_blocks):
        mask[0, r, rng.choice(kv_blocks, kept_per_row, replace=False)] = True
    row_ptr, col_idx = csr.block_mask_to_csr(mask)
    q, k, v = (rng.standard_normal((1, 4, n, 64)).astype(np.float32) for n in (q_blocks * 64 - 9, 500, 500))
    return AttentionCase(q, k, v, row_ptr, col_idx, mask, 64, None)


def test_cuda_graph_replays_with_new_inputs_and_masks(torch_cuda, rng: np.random.Generator) -> None:
    """Compute neither allocates nor synchronises, so ONNX Runtime can capture and replay it."""
    sess = cuda_session(graphs.block_sparse_attention_model(np.float16, 64), cuda_graph=True)
    case = fixed_count_case(rng, 3)
    call = DeviceCall(torch_cuda, sess, case, "float16")
    for _ in range(4):  # the first runs warm up and capture, the later ones replay
        case = fixed_count_case(rng, 3)
        call.load(case)
        out = call.run()
        expected = case.expected(call.rounded("q"), call.rounded("k"), call.rounded("v"))
        assert np.linalg.norm(out - expected) / np.linalg.norm(expected) <= TOLERANCE["float16"]


def test_malformed_mask_gives_nan_rows_then_an_error(torch_cuda, rng: np.random.Generator) -> None:
    """The kernel checks the mask on the device: the bad row's queries become NaN (never an
    out-of-bounds read), the other rows stay right, and the node's next run reports the fault."""
    case = make_case(rng, batch=1, heads=2, q_len=256, kv_len=256, head_dim=64, block_size=64, kind="full")
    case.col_idx[0, 5] = 1000  # row 1 (query rows 64..127) names a key block that does not exist
    sess = cuda_session(graphs.block_sparse_attention_model(np.float16, 64))
    call = DeviceCall(torch_cuda, sess, case, "float16")
    out = call.run()
    assert np.isnan(out[:, :, 64:128]).all()
    good = np.r_[0:64, 128:256]
    case.col_idx[0, 5] = 1  # what the other rows were computed with
    expected = case.expected(call.rounded("q"), call.rounded("k"), call.rounded("v"))
    assert np.linalg.norm(out[:, :, good] - expected[:, :, good]) / np.linalg.norm(expected) <= 2e-3
    with pytest.raises(Exception, match=r"col_idx\[0, 5\] = 1000 is not a key block"):
        call.run()


def test_row_pointer_past_col_idx_is_refused(torch_cuda, rng: np.random.Generator) -> None:
    case = make_case(rng, batch=1, heads=1, q_len=128, kv_len=128, head_dim=64, block_size=64, kind="full")
    case.row_ptr[0, 2] = 1 << 30
    call = DeviceCall(torch_cuda, cuda_session(graphs.block_sparse_attention_model(np.float16, 64)), case, "float16")
    out = call.run()
    assert np.isnan(out[:, :, 64:]).all()
    with pytest.raises(Exception, match=r"row_ptr\[0, 2\] = 1073741824 is outside \[0, 4\]"):
        call.run()


def test_unsupported_head_dim_is_refused(torch_cuda, rng: np.random.Generator) -> None:
    case = make_case(rng, batch=1, heads=1, q_len=64, kv_len=64, head_dim=96, block_size=64)
    call = DeviceCall(torch_cuda, op_session("float16", 64), case, "float16")
    with pytest.raises(Exception, match="the CUDA kernel takes head_dim 64 or 128, got 96"):
        call.run()


# ---------------------------------------------------------------------------------------------
# SplitHeadsNorm
# ---------------------------------------------------------------------------------------------

SPLIT_HEADS_TOLERANCE = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1.6e-2}  # max |out - ref| / max |ref|
SPLIT_HEADS_TYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": "bfloat16"}


class SplitHeadsCall:
    """Device copies of qkv and the weights, and three NaN-filled outputs, bound to a session."""

    def __init__(self, torch, sess: ort.InferenceSession, shape: tuple[int, int, int, int], dtype: str) -> None:
        batch, tokens, heads, head_dim = shape
        self.torch, self.dtype, self.heads = torch, getattr(torch, dtype), heads
        self.qkv = torch.empty((batch, tokens, 3 * heads * head_dim), dtype=self.dtype, device="cuda")
        self.weights = [torch.empty(head_dim, dtype=self.dtype, device="cuda") for _ in range(2)]
        self.outputs = [torch.empty((batch, heads, tokens, head_dim), dtype=self.dtype, device="cuda")
                        for _ in range(3)]
        self.binding = sess.io_binding()
        for name, tensor in (("qkv", self.qkv), ("q_weight", self.weights[0]), ("k_weight", self.weights[1])):
            self.binding.bind_input(name, "cuda", 0, onnx_type(torch, self.dtype), list(tensor.shape),
                                    tensor.data_ptr())
        for name, tensor in zip(("q", "k", "v"), self.outputs, strict=True):
            self.binding.bind_output(name, "cuda", 0, onnx_type(torch, self.dtype), list(tensor.shape),
                                     tensor.data_ptr())
        self.sess = sess

    def load(self, rng: np.random.Generator) -> None:
        """Fresh random inputs (scaled at random: RMSNorm must not care) and poisoned outputs."""
        scale = float(np.exp(rng.uniform(-3, 3)))
        self.qkv.copy_(self.torch.from_numpy(rng.standard_normal(tuple(self.qkv.shape)) * scale))
        for weight in self.weights:
            weight.copy_(self.torch.from_numpy(rng.uniform(-2, 2, weight.shape[0])))
        for out in self.outputs:
            out.fill_(float("nan"))

    def check(self) -> None:
        self.sess.run_with_iobinding(self.binding)
        self.torch.cuda.synchronize()
        expected = reference_split_heads_norm(*(t.double().cpu().numpy() for t in (self.qkv, *self.weights)),
                                              self.heads)
        tolerance = SPLIT_HEADS_TOLERANCE[str(self.dtype).removeprefix("torch.")]
        for name, out, ref in zip("qkv", self.outputs, expected, strict=True):
            out = out.double().cpu().numpy()
            assert not np.isnan(out).any(), f"{name}: some elements were not written"
            error = np.abs(out - ref).max() / np.abs(ref).max()
            assert error <= tolerance, f"{name}: error {error:.2e}"
        assert np.array_equal(self.outputs[2].double().cpu().numpy(), expected[2]), "v must be copied exactly"


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", [(2, 37, 3, 64), (1, 2048, 16, 64), (3, 5, 2, 128), (2, 17, 4, 24),
                                   (1, 9, 1, 256)])
def test_split_heads_norm_matches_the_float64_reference(torch_cuda, rng: np.random.Generator, dtype: str,
                                                        shape: tuple[int, int, int, int]) -> None:
    if dtype == "float32" and shape[3] > 128:
        pytest.skip("float32 rows take at most 128 values (test_split_heads_norm_refuses_an_unsupported_head_dim)")
    model = graphs.split_heads_norm_model(SPLIT_HEADS_TYPES[dtype], shape[2])
    call = SplitHeadsCall(torch_cuda, cuda_session(model), shape, dtype)
    call.load(rng)
    call.check()


def test_split_heads_norm_replays_in_a_cuda_graph(torch_cuda, rng: np.random.Generator) -> None:
    sess = cuda_session(graphs.split_heads_norm_model(np.float16, 7), cuda_graph=True)
    call = SplitHeadsCall(torch_cuda, sess, (1, 300, 7, 64), "float16")
    for _ in range(4):  # the first runs warm up and capture, the later ones replay
        call.load(rng)
        call.check()


@pytest.mark.parametrize(("dtype", "head_dim", "message"), [
    ("float16", 12, "a multiple of 8 up to 256, got 12"), ("float32", 256, "a multiple of 8 up to 128 in float32, got 256")])
def test_split_heads_norm_refuses_an_unsupported_head_dim(torch_cuda, rng: np.random.Generator, dtype: str,
                                                          head_dim: int, message: str) -> None:
    call = SplitHeadsCall(torch_cuda, cuda_session(graphs.split_heads_norm_model(SPLIT_HEADS_TYPES[dtype], 2)),
                          (1, 4, 2, head_dim), dtype)
    call.load(rng)
    with pytest.raises(Exception, match=f"SplitHeadsNorm: the CUDA kernel takes head_dim {message}"):
        call.sess.run_with_iobinding(call.binding)
