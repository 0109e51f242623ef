"""The numpy side of the op: CSR helpers, their checks, and the float64 reference itself."""

from __future__ import annotations

import numpy as np
import pytest
from op_cases import make_case, random_block_mask

from inference.ops import csr
from inference.ops.reference import reference_block_sparse_attention


@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 3, 4, 6)])
def test_block_mask_round_trips_through_csr(rng: np.random.Generator, shape: tuple[int, ...]) -> None:
    mask = random_block_mask(rng, shape, "empty_rows")
    row_ptr, col_idx = csr.block_mask_to_csr(mask)
    assert row_ptr.dtype == np.int32 and col_idx.dtype == np.int32
    assert row_ptr.shape == (*shape[:-2], shape[-2] + 1)
    assert col_idx.shape[-1] == mask.reshape(-1, *shape[-2:]).sum(axis=(1, 2)).max()
    np.testing.assert_array_equal(csr.csr_to_block_mask(row_ptr, col_idx, shape[-1]), mask)


def test_csr_layout() -> None:
    mask = np.array([[[0, 1, 1], [0, 0, 0], [1, 0, 1]], [[1, 0, 0], [0, 0, 0], [0, 0, 0]]], dtype=bool)
    row_ptr, col_idx = csr.block_mask_to_csr(mask)
    np.testing.assert_array_equal(row_ptr, [[0, 2, 2, 4], [0, 1, 1, 1]])
    np.testing.assert_array_equal(col_idx, [[1, 2, 0, 2], [0, 0, 0, 0]])  # batch 1 padded with zeros


def test_token_mask_cuts_partial_blocks() -> None:
    token = csr.block_mask_to_token_mask(np.array([[[True, False], [False, True]]]), 100, 70, 64)
    assert token.shape == (1, 100, 70)
    assert token[0, :64, :64].all() and not token[0, :64, 64:].any() and token[0, 64:, 64:].all()


@pytest.mark.parametrize(("row_ptr", "col_idx", "message"), [
    ([[1, 2, 3]], [[0, 1, 2]], r"row_ptr\[0, 0\] is 1, but a row-pointer array starts at 0"),
    ([[0, 4, 3]], [[0, 1, 2]], r"row_ptr\[0, 1\] = 4 is outside \[0, 3\]"),
    ([[0, 2, 1]], [[0, 1, 2]], r"row_ptr\[0, 2\] = 1 is smaller than the row pointer before it"),
    ([[0, 1, 2]], [[0, 5, 0]], r"col_idx\[0, 1\] = 5 is not a key block \(there are 3\)"),
    ([[0, 2, 2]], [[1, 1, 0]], r"col_idx\[0, 1\] = 1 is not greater than the key block before it"),
])
def test_validate_csr_names_the_first_bad_entry(row_ptr: list, col_idx: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        csr.validate_csr(np.array(row_ptr, np.int32), np.array(col_idx, np.int32), kv_blocks=3)


def test_validate_csr_wants_int32() -> None:
    with pytest.raises(ValueError, match="row_ptr must be int32, got int64"):
        csr.validate_csr(np.array([[0, 1]]), np.array([[0]], np.int32), kv_blocks=1)


def brute_force(case) -> np.ndarray:
    """Attention one query at a time over the kept keys only, in float64 (no block tricks)."""
    q, k, v = (x.astype(np.float64) for x in (case.q, case.k, case.v))
    batch, heads, q_len, head_dim = q.shape
    scale = case.scale or 1 / np.sqrt(head_dim)
    out = np.zeros_like(q)
    for b in range(batch):
        for h in range(heads):
            for i in range(q_len):
                blocks = case.block_mask[b, h, i // case.block_size] if case.block_mask.ndim == 4 else \
                    case.block_mask[b, i // case.block_size]
                keys = [j for j in range(k.shape[2]) if blocks[j // case.block_size]]
                if keys:
                    scores = scale * k[b, h, keys] @ q[b, h, i]
                    weights = np.exp(scores - scores.max())
                    out[b, h, i] = weights @ v[b, h, keys] / weights.sum()
    return out


@pytest.mark.parametrize("per_head", [False, True])
def test_reference_matches_brute_force(rng: np.random.Generator, per_head: bool) -> None:
    case = make_case(rng, batch=2, heads=2, q_len=70, kv_len=90, head_dim=8, block_size=64, kind="empty_rows",
                     per_head=per_head, scale=0.7)
    expected = reference_block_sparse_attention(case.q, case.k, case.v, case.row_ptr, case.col_idx, 64, 0.7)
    np.testing.assert_allclose(expected, brute_force(case), rtol=1e-12, atol=1e-12)
