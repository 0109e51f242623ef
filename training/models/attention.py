"""The two attention kinds of the student, in torch and on export.

* :class:`SparseAttention`: the input-aware block mask in CSR form, computed by
  :func:`training.sparse_attention.block_sparse_attention` (exports to the ``BlockSparseAttention``
  custom op, or to ONNX Runtime's dense attention with the mask as a bias: ``target="mha"``).
* :class:`DenseAttention`: plain attention to the first ``key_length`` keys (the rest are empty cache
  positions). Exports to ``com.microsoft::MultiHeadAttention`` with a 1-D key-length mask, which
  keeps ONNX Runtime on its fused flash kernel.
* :class:`FullAttention`: every query to every key, torch's fused kernel with no mask (the teacher's
  bidirectional clips in training; never exported).

All take q, k, v as ``[B, H, L, Dh]`` and return ``[B, H, Lq, Dh]`` (B = 1 in the student's graphs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from onnxscript import opset18 as op
from onnxscript import values as onnxscript_values

from training import sparse_attention, split_heads


@dataclass(frozen=True)
class SparseAttention:
    """Block-sparse attention: ``row_ptr`` int32 ``[1, q_blocks + 1]``, ``col_idx`` int32 ``[1, nnz]``."""

    row_ptr: torch.Tensor
    col_idx: torch.Tensor
    block_size: int

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return sparse_attention.block_sparse_attention(q, k, v, self.row_ptr, self.col_idx, block_size=self.block_size)


@dataclass(frozen=True)
class TrainingSparseAttention(SparseAttention):
    """:class:`SparseAttention` for training, never exported: the CSR mask becomes a token mask once per
    (query, key) length and every later call (each layer, each step, the backward pass) reuses it, through
    torch's own attention and autograd. The export path's op rebuilds the mask on every call and recomputes
    the forward in its backward: on a GPU those small kernels and host syncs dominated a streamed student."""

    _masks: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict, compare=False, repr=False)

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        lengths = (q.shape[2], k.shape[2])
        mask = self._masks.get(lengths)
        if mask is None:
            mask = sparse_attention.token_mask(self.row_ptr, self.col_idx, *lengths, self.block_size)
            self._masks[lengths] = mask
        return sparse_attention.masked_attention(q, k, v, mask)


@dataclass(frozen=True)
class DenseAttention:
    """Dense attention over the first ``key_length`` keys: int32 ``[1]`` (None: all keys)."""

    key_length: torch.Tensor | None = None

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        batch, heads, length, head_dim = q.shape
        key_length = self.key_length
        if key_length is None:
            key_length = torch.full((batch,), k.shape[2], dtype=torch.int32, device=k.device)
        packed = q.transpose(1, 2).reshape(batch, length, heads * head_dim)
        out = torch.ops.podium_student.dense_attention(packed, k, v, key_length, heads)
        return out.reshape(batch, length, heads, head_dim).transpose(1, 2)


@dataclass(frozen=True)
class FullAttention:
    """Every query attends to every key: :func:`torch.nn.functional.scaled_dot_product_attention` without a
    mask, so a GPU runs its flash kernel forwards and backwards (the custom op of :class:`DenseAttention`
    carries a mask and recomputes in its backward)."""

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.scaled_dot_product_attention(q, k, v)


@torch.library.custom_op("podium_student::dense_attention", mutates_args=())
def _dense_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_length: torch.Tensor,
                     heads: int) -> torch.Tensor:
    batch, length, _ = q.shape
    query = q.reshape(batch, length, heads, -1).transpose(1, 2)
    keys = torch.arange(k.shape[2], device=k.device)
    mask = (keys[None, :] < key_length[:, None].to(keys.dtype))[:, None, None, :]
    out = torch.nn.functional.scaled_dot_product_attention(query, k, v, attn_mask=mask)
    return out.transpose(1, 2).reshape(batch, length, -1)


@_dense_attention.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_length: torch.Tensor, heads: int) -> torch.Tensor:
    return q.new_empty(q.shape)


def _dense_backward(ctx, grad: torch.Tensor) -> tuple:  # noqa: ANN001 - autograd's context object
    q, k, v, key_length = ctx.saved_tensors
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_() for t in (q, k, v)]
        out = _dense_attention(*leaves, key_length, ctx.heads)
        grads = torch.autograd.grad(out, leaves, grad)
    return (*grads, None, None)


def _dense_setup(ctx, inputs: tuple, output: torch.Tensor) -> None:  # noqa: ANN001
    q, k, v, key_length, heads = inputs
    ctx.save_for_backward(q, k, v, key_length)
    ctx.heads = heads


_dense_attention.register_autograd(_dense_backward, setup_context=_dense_setup)


def _to_multi_head_attention(q, k, v, key_length, heads: int):  # noqa: ANN001, ANN202 - onnxscript values
    microsoft = onnxscript_values.Opset("com.microsoft", 1)
    return microsoft.MultiHeadAttention(q, k, v, None, op.Identity(key_length), num_heads=heads)


def translation_table(sparse_target: sparse_attention.Target = "podium") -> dict:
    """``custom_translation_table`` for ``torch.onnx.export(..., dynamo=True)`` covering both kinds, and the
    blocks' :func:`training.split_heads.split_heads_norm` (the op library's node unless ``sparse_target`` is
    ``"mha"``, the graphs that load without it)."""
    table = sparse_attention.translation_table(sparse_target)  # also registers the MultiHeadAttention schema
    table[torch.ops.podium_student.dense_attention.default] = _to_multi_head_attention
    table.update(split_heads.translation_table(sparse_target))
    return table
