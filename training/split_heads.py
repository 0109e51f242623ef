"""q, k and v of a transformer block split into heads, q and k RMS-normalised (QK-RMSNorm); in torch and on export.

:func:`split_heads_norm` takes the block's fused projection ``qkv`` ``[S, N, 3 · heads · D]`` and returns q, k, v
``[S, heads, N, D]``. In torch (training, evaluation) it is plain differentiable torch. While exporting to ONNX it is
one node; :func:`translation_table` chooses which:

- ``"podium"``: ``ai.podium::SplitHeadsNorm`` (docs/ops.md), one kernel where ONNX Runtime would run a split, two
  RMSNorms over rows of ``D`` values and three transposes (its RMSNorm kernel spends one CTA on each row of 64).
- ``"mha"``: the same computation in standard ONNX ops, for the graphs that must load without the op library.
"""

from __future__ import annotations

import onnx
import torch
from onnxscript import opset18 as op
from onnxscript import values as onnxscript_values

from inference.ops import OP_DOMAIN, OP_VERSION, SPLIT_HEADS_OP_NAME

SINCE_VERSION = 2  # the ai.podium opset version that added SplitHeadsNorm


def split_heads_norm(qkv: torch.Tensor, q_weight: torch.Tensor, k_weight: torch.Tensor, heads: int,
                     epsilon: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``qkv`` ``[S, N, 3 · heads · D]`` → q, k, v ``[S, heads, N, D]``; q and k RMS-normalised over D and scaled by
    ``q_weight`` and ``k_weight`` ``[D]``."""
    if torch.onnx.is_in_onnx_export():
        return torch.ops.podium.split_heads_norm(qkv, q_weight, k_weight, heads, float(epsilon))
    return _split_heads_norm(qkv, q_weight, k_weight, heads, epsilon)


def _split_heads_norm(qkv: torch.Tensor, q_weight: torch.Tensor, k_weight: torch.Tensor, heads: int,
                      epsilon: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    sequences, tokens, width = qkv.shape
    head_dim = width // (3 * heads)
    q, k, v = qkv.reshape(sequences, tokens, 3, heads, head_dim).unbind(2)
    q = torch.nn.functional.rms_norm(q, (head_dim,), q_weight, epsilon)
    k = torch.nn.functional.rms_norm(k, (head_dim,), k_weight, epsilon)
    return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)


@torch.library.custom_op("podium::split_heads_norm", mutates_args=())
def _split_heads_norm_op(qkv: torch.Tensor, q_weight: torch.Tensor, k_weight: torch.Tensor, heads: int,
                         epsilon: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q, k, v = _split_heads_norm(qkv, q_weight, k_weight, heads, epsilon)
    return q.contiguous(), k.contiguous(), v.contiguous()  # a custom op's outputs may not alias its inputs


@_split_heads_norm_op.register_fake
def _(qkv: torch.Tensor, q_weight: torch.Tensor, k_weight: torch.Tensor, heads: int,
      epsilon: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    sequences, tokens, width = qkv.shape
    shape = (sequences, heads, tokens, width // (3 * heads))
    return qkv.new_empty(shape), qkv.new_empty(shape), qkv.new_empty(shape)


# ---------------------------------------------------------------------------------------------
# ONNX export
# ---------------------------------------------------------------------------------------------

def _register_schema() -> None:
    """onnxscript needs a schema for every op it emits; onnx ships none for the ai.podium domain."""
    if onnx.defs.has(SPLIT_HEADS_OP_NAME, OP_DOMAIN):
        return
    schema = onnx.defs.OpSchema
    single = schema.FormalParameterOption.Single
    onnx.defs.register_schema(schema(
        SPLIT_HEADS_OP_NAME, OP_DOMAIN, SINCE_VERSION,
        inputs=[schema.FormalParameter(name, "T", param_option=single) for name in ("qkv", "q_weight", "k_weight")],
        outputs=[schema.FormalParameter(name, "T", param_option=single) for name in ("q", "k", "v")],
        type_constraints=[("T", ["tensor(float)", "tensor(float16)", "tensor(bfloat16)"],
                           "float32 on the CPU, float16 or bfloat16 on CUDA")],
        attributes=[schema.Attribute("heads", schema.AttrType.INT, "attention heads", required=True),
                    schema.Attribute("epsilon", schema.AttrType.FLOAT, "added to the mean square (default 1e-6)",
                                     required=False)]))


def _to_podium(qkv, q_weight, k_weight, heads: int, epsilon: float):  # noqa: ANN001, ANN202 - onnxscript values
    podium = onnxscript_values.Opset(OP_DOMAIN, OP_VERSION)
    return podium.SplitHeadsNorm(qkv, q_weight, k_weight, heads=heads, epsilon=epsilon, _num_outputs=3)


def _to_standard_ops(qkv, q_weight, k_weight, heads: int, epsilon: float):  # noqa: ANN001, ANN202
    """Reshape, split, RMSNorm in float32 (the pattern ONNX Runtime fuses into SimplifiedLayerNormalization),
    transpose."""
    parts = op.Reshape(qkv, op.Constant(value_ints=[0, 0, 3, heads, -1]))
    q, k, v = op.Split(parts, axis=2, num_outputs=3)
    axis = op.Constant(value_ints=[2])

    def heads_first(x):  # noqa: ANN001, ANN202
        return op.Transpose(op.Squeeze(x, axis), perm=[0, 2, 1, 3])

    def rms_norm(x, weight):  # noqa: ANN001, ANN202
        wide = op.Cast(x, to=onnx.TensorProto.FLOAT)
        mean_square = op.ReduceMean(op.Pow(wide, op.Constant(value_float=2.0)), op.Constant(value_ints=[-1]),
                                    keepdims=1)
        normalised = op.Div(wide, op.Sqrt(op.Add(mean_square, op.Constant(value_float=epsilon))))
        return op.CastLike(op.Mul(normalised, op.Cast(weight, to=onnx.TensorProto.FLOAT)), x)

    return heads_first(rms_norm(q, q_weight)), heads_first(rms_norm(k, k_weight)), heads_first(v)


def translation_table(target: str = "podium") -> dict:
    """``custom_translation_table`` entry for ``torch.onnx.export(..., dynamo=True)``: ``"podium"`` or ``"mha"``
    (the graphs without the op library)."""
    _register_schema()
    function = _to_podium if target == "podium" else _to_standard_ops
    return {torch.ops.podium.split_heads_norm.default: function}
