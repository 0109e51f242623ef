"""Random test cases for the custom op: inputs, block masks of several kinds, and the float64
reference; plus a helper that strips input shapes from a model so the op's own checks are reached.
Shared by the CPU, CUDA and export tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from inference.ops import csr
from inference.ops.reference import reference_block_sparse_attention

MASK_KINDS = ("random", "empty_rows", "full", "one_block", "all_empty")


@dataclass
class AttentionCase:
    """Inputs of one call (float32) and the block mask they came from."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    row_ptr: np.ndarray
    col_idx: np.ndarray
    block_mask: np.ndarray
    block_size: int
    scale: float | None

    def inputs(self) -> dict[str, np.ndarray]:
        return {"q": self.q, "k": self.k, "v": self.v, "row_ptr": self.row_ptr, "col_idx": self.col_idx}

    def expected(self, q: np.ndarray | None = None, k: np.ndarray | None = None,
                 v: np.ndarray | None = None) -> np.ndarray:
        """The float64 reference, on these inputs or on rounded copies of them."""
        return reference_block_sparse_attention(self.q if q is None else q, self.k if k is None else k,
                                                self.v if v is None else v, self.row_ptr, self.col_idx,
                                                self.block_size, self.scale)

    def empty_query_rows(self) -> np.ndarray:
        """Boolean [B, (H,) q_len]: query rows whose block keeps no key block (they must be zeros)."""
        empty_blocks = ~self.block_mask.any(axis=-1)
        return np.repeat(empty_blocks, self.block_size, axis=-1)[..., : self.q.shape[2]]


def random_block_mask(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    """A boolean block mask of ``shape`` ([..., q_blocks, kv_blocks]) of the given kind."""
    if kind == "full":
        return np.ones(shape, dtype=bool)
    if kind == "all_empty":
        return np.zeros(shape, dtype=bool)
    if kind == "one_block":
        mask = np.zeros(shape, dtype=bool)
        picks = rng.integers(0, shape[-1], size=shape[:-1])
        np.put_along_axis(mask, picks[..., None], True, axis=-1)
        return mask
    mask = rng.random(shape) < rng.uniform(0.3, 0.7)
    if kind == "empty_rows":
        mask[..., :: 2, :] = False
    elif kind != "random":
        raise ValueError(kind)
    return mask


def make_case(rng: np.random.Generator, *, batch: int, heads: int, q_len: int, kv_len: int, head_dim: int,
              block_size: int, kind: str = "random", per_head: bool = False,
              scale: float | None = None) -> AttentionCase:
    lead = (batch, heads) if per_head else (batch,)
    mask = random_block_mask(rng, (*lead, csr.num_blocks(q_len, block_size), csr.num_blocks(kv_len, block_size)),
                             kind)
    row_ptr, col_idx = csr.block_mask_to_csr(mask)
    q, k, v = (rng.standard_normal((batch, heads, n, head_dim)).astype(np.float32) for n in (q_len, kv_len, kv_len))
    return AttentionCase(q, k, v, row_ptr, col_idx, mask, block_size, scale)


def without_input_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with the shapes of its inputs removed, so ONNX Runtime passes any rank to the op."""
    stripped = onnx.ModelProto()
    stripped.CopyFrom(model)
    for value in stripped.graph.input:
        value.type.tensor_type.ClearField("shape")
    return stripped
