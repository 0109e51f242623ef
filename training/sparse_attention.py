"""Block-sparse attention in torch, and its export to ONNX.

:func:`block_sparse_attention` computes what the ``ai.podium::BlockSparseAttention`` op computes
(contract: docs/ops.md): q ``[B, H, q_len, D]``, k and v ``[B, H, kv_len, D]``, the block mask in CSR
form (``row_ptr`` ``[B, q_blocks + 1]``, ``col_idx`` ``[B, nnz]``, int32, or with an ``H`` axis for a
mask per head), softmax over the kept keys only, zeros for a query block that keeps no key block.
In torch it runs as dense masked attention (differentiable, any device), so it serves training.

On export it becomes one node. :func:`export_onnx` (or :func:`translation_table` passed to
``torch.onnx.export(..., dynamo=True, custom_translation_table=...)``) chooses the node:

- ``"podium"``: ``ai.podium::BlockSparseAttention``, for ONNX Runtime with the custom op registered
  (``inference.ops.register``): it visits only kept blocks.
- ``"mha"``: ONNX Runtime's ``com.microsoft::MultiHeadAttention`` with an additive mask built from the
  CSR inside the graph, for machines where the op library cannot load. Dense: same result, full cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import onnx
import torch
from onnxscript import opset18 as op
from onnxscript import values as onnxscript_values

from inference.ops import OP_DOMAIN, OP_NAME, OP_VERSION

Target = Literal["podium", "mha"]
ONNX_OPSET = 18
_MASKED = -65504.0  # additive bias of a masked key: the lowest float16, finite in every float type


def block_sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, row_ptr: torch.Tensor,
                           col_idx: torch.Tensor, *, block_size: int, scale: float | None = None) -> torch.Tensor:
    """Attention of q over the key blocks kept by the CSR mask; ``[B, H, q_len, D]``."""
    if scale is None:
        scale = q.shape[-1] ** -0.5
    return torch.ops.podium.block_sparse_attention(q, k, v, row_ptr, col_idx, block_size, float(scale))


def token_mask(row_ptr: torch.Tensor, col_idx: torch.Tensor, q_len: int, kv_len: int,
               block_size: int) -> torch.Tensor:
    """CSR block mask → boolean token mask ``[B, (H,) q_len, kv_len]`` (True: the query sees the key)."""
    lead = row_ptr.shape[:-1]
    q_blocks = row_ptr.shape[-1] - 1
    kv_blocks = -(-kv_len // block_size)
    rows = row_ptr.reshape(-1, q_blocks + 1).long()
    cols = col_idx.reshape(rows.shape[0], -1).long()
    entry = torch.arange(cols.shape[1], device=cols.device)
    used = entry[None] < rows[:, -1:]  # entries past the last row pointer are padding
    row_of_entry = (entry[None, :, None] >= rows[:, None, 1:]).sum(-1)
    slices = torch.arange(rows.shape[0], device=rows.device)[:, None].expand_as(cols)
    blocks = torch.zeros(rows.shape[0], q_blocks + 1, kv_blocks, dtype=torch.bool, device=rows.device)
    blocks[slices[used], row_of_entry[used], cols[used]] = True
    tokens = blocks[:, :q_blocks].repeat_interleave(block_size, 1).repeat_interleave(block_size, 2)
    return tokens[:, :q_len, :kv_len].reshape(*lead, q_len, kv_len)


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                     scale: float | None = None) -> torch.Tensor:
    """Attention with a boolean token mask ``[B, (H,) q_len, kv_len]`` (:func:`token_mask`), torch's own
    autograd; a query row that keeps no key gives zeros, as the op does."""
    if mask.dim() == 3:  # one mask for every head
        mask = mask[:, None]
    kept = mask.any(-1, keepdim=True)
    # Rows with no kept key attend to everything (no NaN, in either pass) and are zeroed after.
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask | ~kept, scale=scale)
    return out * kept.to(out.dtype)


def _dense_masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, row_ptr: torch.Tensor,
                            col_idx: torch.Tensor, block_size: int, scale: float) -> torch.Tensor:
    return masked_attention(q, k, v, token_mask(row_ptr, col_idx, q.shape[2], k.shape[2], block_size), scale)


@torch.library.custom_op("podium::block_sparse_attention", mutates_args=())
def _block_sparse_attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, row_ptr: torch.Tensor,
                               col_idx: torch.Tensor, block_size: int, scale: float) -> torch.Tensor:
    return _dense_masked_attention(q, k, v, row_ptr, col_idx, block_size, scale)


@_block_sparse_attention_op.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, row_ptr: torch.Tensor, col_idx: torch.Tensor,
      block_size: int, scale: float) -> torch.Tensor:
    return q.new_empty(q.shape)


def _setup_backward(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
    q, k, v, row_ptr, col_idx, block_size, scale = inputs
    ctx.save_for_backward(q, k, v, row_ptr, col_idx)
    ctx.block_size, ctx.scale = block_size, scale


def _backward(ctx: Any, grad: torch.Tensor) -> tuple:
    q, k, v, row_ptr, col_idx = ctx.saved_tensors
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_() for t in (q, k, v)]
        out = _dense_masked_attention(*leaves, row_ptr, col_idx, ctx.block_size, ctx.scale)
        grads = torch.autograd.grad(out, leaves, grad)
    return (*grads, None, None, None, None)


_block_sparse_attention_op.register_autograd(_backward, setup_context=_setup_backward)


# ---------------------------------------------------------------------------------------------
# ONNX export
# ---------------------------------------------------------------------------------------------

def _register_schemas() -> None:
    """onnxscript needs a schema for every op it emits; onnx ships none for these two domains."""
    def formal(name: str, type_str: str, *, optional: bool = False) -> onnx.defs.OpSchema.FormalParameter:
        option = onnx.defs.OpSchema.FormalParameterOption.Optional if optional else \
            onnx.defs.OpSchema.FormalParameterOption.Single
        return onnx.defs.OpSchema.FormalParameter(name, type_str, param_option=option)

    floats = ["tensor(float)", "tensor(float16)", "tensor(bfloat16)"]
    attribute = onnx.defs.OpSchema.Attribute
    attr_type = onnx.defs.OpSchema.AttrType
    if not onnx.defs.has(OP_NAME, OP_DOMAIN):
        onnx.defs.register_schema(onnx.defs.OpSchema(
            OP_NAME, OP_DOMAIN, OP_VERSION,
            inputs=[formal("q", "T"), formal("k", "T"), formal("v", "T"), formal("row_ptr", "tensor(int32)"),
                    formal("col_idx", "tensor(int32)")],
            outputs=[formal("out", "T")],
            type_constraints=[("T", floats, "float32 on the CPU, float16 or bfloat16 on CUDA")],
            attributes=[attribute("block_size", attr_type.INT, "side of a mask block: 64 or 128", required=True),
                        attribute("scale", attr_type.FLOAT, "softmax scale (default 1/sqrt(head_dim))",
                                  required=False)]))
    if not onnx.defs.has("MultiHeadAttention", "com.microsoft"):
        onnx.defs.register_schema(onnx.defs.OpSchema(
            "MultiHeadAttention", "com.microsoft", 1,
            inputs=[formal("query", "T"), formal("key", "T"), formal("value", "T"),
                    formal("bias", "T", optional=True), formal("key_padding_mask", "M", optional=True),
                    formal("attention_bias", "T", optional=True)],
            outputs=[formal("output", "T")],
            type_constraints=[("T", floats, "float types"), ("M", ["tensor(int32)"], "mask")],
            attributes=[attribute("num_heads", attr_type.INT, "heads", required=True),
                        attribute("scale", attr_type.FLOAT, "softmax scale", required=False)]))


def _to_podium(q, k, v, row_ptr, col_idx, block_size: int, scale: float):
    podium = onnxscript_values.Opset(OP_DOMAIN, OP_VERSION)
    return podium.BlockSparseAttention(q, k, v, row_ptr, col_idx, block_size=block_size, scale=scale)


def _to_multi_head_attention(q, k, v, row_ptr, col_idx, block_size: int, scale: float):
    """Dense MultiHeadAttention with the CSR mask turned into an additive bias inside the graph."""
    microsoft = onnxscript_values.Opset("com.microsoft", 1)
    heads, head_dim = q.shape[1], q.shape[3]
    if not isinstance(heads, int) or not isinstance(head_dim, int):
        raise ValueError("exporting to MultiHeadAttention needs static heads and head_dim in q's shape")
    per_head = len(row_ptr.shape) == 3
    zero, one = op.Constant(value_int=0), op.Constant(value_int=1)
    block = op.Constant(value_int=block_size)

    # Flatten the mask slices: rows [S, R], cols [S, NNZ] with S = B (or B * H).
    rows = op.Cast(op.Reshape(row_ptr, op.Concat(op.Constant(value_ints=[-1]), op.Shape(row_ptr, start=-1),
                                                 axis=0)), to=onnx.TensorProto.INT64)
    # One padding entry (never used: it lies past the last row pointer) keeps NNZ above 0: with a layout that
    # keeps no block, Reshape could not infer S.
    padding = op.ConstantOfShape(op.Concat(op.Shape(col_idx, end=-1), op.Constant(value_ints=[1]), axis=0),
                                 value=onnx.helper.make_tensor("zero", onnx.TensorProto.INT32, [1], [0]))
    padded = op.Concat(col_idx, padding, axis=-1)
    cols = op.Cast(op.Reshape(padded, op.Concat(op.Constant(value_ints=[-1]), op.Shape(padded, start=-1),
                                                axis=0)), to=onnx.TensorProto.INT64)
    q_len = op.Squeeze(op.Shape(q, start=2, end=3))
    kv_len = op.Squeeze(op.Shape(k, start=2, end=3))
    q_blocks = op.Sub(op.Squeeze(op.Shape(rows, start=1, end=2)), one)
    kv_blocks = op.Div(op.Sub(op.Add(kv_len, block), one), block)

    # Entry j of a slice belongs to row r where rows[r] <= j < rows[r + 1] (r = q_blocks: padding).
    entry = op.Range(zero, op.Squeeze(op.Shape(cols, start=1, end=2)), one)
    row_ends = op.Slice(rows, op.Constant(value_ints=[1]), op.Constant(value_ints=[2**62]),
                        op.Constant(value_ints=[1]))
    past = op.LessOrEqual(op.Unsqueeze(row_ends, op.Constant(value_ints=[1])),
                          op.Unsqueeze(entry, op.Constant(value_ints=[0, 2])))
    row_of_entry = op.ReduceSum(op.Cast(past, to=onnx.TensorProto.INT64), op.Constant(value_ints=[2]), keepdims=0)
    row_hot = op.Equal(op.Unsqueeze(row_of_entry, op.Constant(value_ints=[2])), op.Range(zero, q_blocks, one))
    col_hot = op.Equal(op.Unsqueeze(cols, op.Constant(value_ints=[2])), op.Range(zero, kv_blocks, one))
    counts = op.MatMul(op.Transpose(op.Cast(row_hot, to=onnx.TensorProto.FLOAT), perm=[0, 2, 1]),
                       op.Cast(col_hot, to=onnx.TensorProto.FLOAT))
    kept_blocks = op.Greater(counts, op.Constant(value_float=0.0))  # [S, q_blocks, kv_blocks]

    # Blocks → tokens, cut to the sequence lengths (the last blocks may be partial).
    expanded = op.Expand(op.Unsqueeze(kept_blocks, op.Constant(value_ints=[2, 4])),
                         op.Concat(op.Constant(value_ints=[1, 1]), op.Reshape(block, op.Constant(value_ints=[1])),
                                   op.Constant(value_ints=[1]), op.Reshape(block, op.Constant(value_ints=[1])),
                                   axis=0))
    tokens = op.Reshape(expanded, op.Concat(op.Constant(value_ints=[0]),
                                            op.Reshape(op.Mul(q_blocks, block), op.Constant(value_ints=[1])),
                                            op.Reshape(op.Mul(kv_blocks, block), op.Constant(value_ints=[1])),
                                            axis=0))
    tokens = op.Slice(tokens, op.Constant(value_ints=[0, 0]),
                      op.Concat(op.Reshape(q_len, op.Constant(value_ints=[1])),
                                op.Reshape(kv_len, op.Constant(value_ints=[1])), axis=0),
                      op.Constant(value_ints=[1, 2]))
    if per_head:
        mask_shape = op.Concat(op.Constant(value_ints=[-1, heads]), op.Shape(tokens, start=1), axis=0)
    else:
        mask_shape = op.Concat(op.Constant(value_ints=[-1, 1]), op.Shape(tokens, start=1), axis=0)
    tokens = op.Reshape(tokens, mask_shape)  # [B, H or 1, q_len, kv_len]
    bias = op.Where(tokens, op.CastLike(op.Constant(value_float=0.0), q),
                    op.CastLike(op.Constant(value_float=_MASKED), q))
    row_kept = op.ReduceMax(op.Cast(tokens, to=onnx.TensorProto.INT32), op.Constant(value_ints=[3]), keepdims=1)

    query = op.Reshape(op.Transpose(q, perm=[0, 2, 1, 3]), op.Constant(value_ints=[0, 0, heads * head_dim]))
    out = microsoft.MultiHeadAttention(query, k, v, None, None, bias, num_heads=heads, scale=scale)
    out = op.Transpose(op.Reshape(out, op.Constant(value_ints=[0, 0, heads, head_dim])), perm=[0, 2, 1, 3])
    return op.Where(op.Cast(row_kept, to=onnx.TensorProto.BOOL), out, op.CastLike(op.Constant(value_float=0.0), q))


def translation_table(target: Target = "podium") -> dict:
    """The ``custom_translation_table`` for ``torch.onnx.export(..., dynamo=True)``."""
    _register_schemas()
    function = {"podium": _to_podium, "mha": _to_multi_head_attention}[target]
    return {torch.ops.podium.block_sparse_attention.default: function}


def export_onnx(model: torch.nn.Module, args: tuple, path: str | Path, *, target: Target = "podium",
                **export_options: Any) -> onnx.ModelProto:
    """Exports ``model(*args)`` to ``path`` with its block-sparse attention as ``target``; returns the model."""
    program = torch.onnx.export(model, args, dynamo=True, opset_version=ONNX_OPSET,
                                custom_translation_table=translation_table(target), **export_options)
    program.save(str(path))
    return onnx.load(str(path))
