"""training.sparse_attention: the torch function, and its export to the custom op or to ONNX
Runtime's MultiHeadAttention, each checked against the float64 reference under the CPU EP.
Tolerance: |out - ref| <= 2e-5 + 1e-4 |ref| (float32)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from op_cases import AttentionCase, make_case

from inference import ops

torch = pytest.importorskip("torch", reason="torch is not installed (the train extra)")
sparse_attention = pytest.importorskip("training.sparse_attention")

pytestmark = pytest.mark.train
RTOL, ATOL = 1e-4, 2e-5


class Attention(torch.nn.Module):
    def forward(self, q, k, v, row_ptr, col_idx):
        return sparse_attention.block_sparse_attention(q, k, v, row_ptr, col_idx, block_size=64)


def tensors(case: AttentionCase) -> tuple:
    return tuple(torch.from_numpy(x) for x in (case.q, case.k, case.v, case.row_ptr, case.col_idx))


@pytest.mark.parametrize("kind", ["empty_rows", "all_empty"])
@pytest.mark.parametrize("per_head", [False, True])
def test_torch_function_matches_reference(rng: np.random.Generator, per_head: bool, kind: str) -> None:
    case = make_case(rng, batch=2, heads=3, q_len=150, kv_len=200, head_dim=32, block_size=64, kind=kind,
                     per_head=per_head)
    out = Attention()(*tensors(case)).numpy()
    np.testing.assert_allclose(out, case.expected(), rtol=RTOL, atol=ATOL)


def test_gradients_match_masked_softmax_in_float64(rng: np.random.Generator) -> None:
    case = make_case(rng, batch=1, heads=2, q_len=100, kv_len=130, head_dim=16, block_size=64, kind="empty_rows")
    q, k, v = (torch.from_numpy(x).double().requires_grad_() for x in (case.q, case.k, case.v))
    out = sparse_attention.block_sparse_attention(q, k, v, torch.from_numpy(case.row_ptr),
                                                  torch.from_numpy(case.col_idx), block_size=64)
    weights = torch.from_numpy(rng.standard_normal(out.shape))
    grads = torch.autograd.grad((out * weights).sum(), (q, k, v))

    mask = torch.from_numpy(np.repeat(np.repeat(case.block_mask, 64, 1), 64, 2)[:, None, :100, :130])
    q2, k2, v2 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    scores = (q2 @ k2.transpose(-1, -2) / 4.0).masked_fill(~mask, float("-inf"))
    kept = mask.any(-1, keepdim=True)
    expected = torch.where(kept, torch.softmax(scores.masked_fill(~kept, 0.0), -1), 0.0) @ v2
    expected_grads = torch.autograd.grad((expected * weights).sum(), (q2, k2, v2))
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def run_exported(path: Path, case: AttentionCase, *, with_op_library: bool) -> np.ndarray:
    options = ort.SessionOptions()
    if with_op_library:
        ops.register(options)
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, (case.q, case.k, case.v, case.row_ptr, case.col_idx), strict=True)))[0]


def test_export_to_the_custom_op(rng: np.random.Generator, tmp_path: Path, op_library: Path) -> None:
    case = make_case(rng, batch=2, heads=2, q_len=150, kv_len=200, head_dim=64, block_size=64, kind="empty_rows")
    model = sparse_attention.export_onnx(Attention().eval(), tensors(case), tmp_path / "op.onnx", target="podium")
    assert [(n.domain, n.op_type) for n in model.graph.node] == [(ops.OP_DOMAIN, ops.OP_NAME)]
    assert {(o.domain, o.version) for o in model.opset_import} >= {(ops.OP_DOMAIN, ops.OP_VERSION)}
    out = run_exported(tmp_path / "op.onnx", case, with_op_library=True)
    np.testing.assert_allclose(out, case.expected(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("per_head", [False, True])
def test_export_to_multi_head_attention_with_dynamic_lengths(rng: np.random.Generator, tmp_path: Path,
                                                             per_head: bool) -> None:
    """The fallback graph needs no op library, and its mask follows the CSR inputs at run time."""
    from torch.export import Dim

    case = make_case(rng, batch=2, heads=2, q_len=150, kv_len=200, head_dim=64, block_size=64, kind="empty_rows",
                     per_head=per_head)
    axis = 2 if per_head else 1
    q_len, kv_len, rows, nnz = Dim("q_len", max=1 << 20), Dim("kv_len", max=1 << 20), Dim("rows"), Dim("nnz")
    dynamic = ({2: q_len}, {2: kv_len}, {2: kv_len}, {axis: rows}, {axis: nnz})
    model = sparse_attention.export_onnx(Attention().eval(), tensors(case), tmp_path / "mha.onnx", target="mha",
                                         dynamic_shapes=dynamic)
    op_types = {(n.domain, n.op_type) for n in model.graph.node}
    assert ("com.microsoft", "MultiHeadAttention") in op_types and all(d != ops.OP_DOMAIN for d, _ in op_types)
    # A layout that keeps no block at all (NNZ 0) gives zeros, as the op does.
    for q_len_now, kv_len_now, kind in ((150, 200, "empty_rows"), (333, 70, "empty_rows"), (150, 200, "all_empty")):
        case = make_case(rng, batch=2, heads=2, q_len=q_len_now, kv_len=kv_len_now, head_dim=64, block_size=64,
                         kind=kind, per_head=per_head)
        out = run_exported(tmp_path / "mha.onnx", case, with_op_library=False)
        np.testing.assert_allclose(out, case.expected(), rtol=RTOL, atol=ATOL)
