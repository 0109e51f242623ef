"""Single-node ONNX models of the op and of ONNX Runtime's dense attention, for tests, benchmarks
and self-checks. Needs the ``onnx`` package.

``block_sparse_attention_model``: inputs q, k, v ``[B, H, N, D]``, row_ptr, col_idx → out
``[B, H, q_len, D]``. ``multi_head_attention_model``: ONNX Runtime's fused, dense
``com.microsoft.MultiHeadAttention`` (q and the output ``[B, q_len, H*D]``, k and v ``[B, H, N, D]``),
the baseline the op is measured against. ``split_heads_norm_model``: one ``SplitHeadsNorm``, qkv
``[B, N, 3·H·D]`` and the two RMSNorm weights ``[D]`` → q, k, v ``[B, H, N, D]``. ``repeats`` > 1 puts that many independent nodes on the
same inputs in one graph, so that a timed run amortises ONNX Runtime's per-run overhead.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from inference.ops import OP_DOMAIN, OP_NAME, OP_VERSION, SPLIT_HEADS_OP_NAME

_ELEMENT_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): TensorProto.FLOAT16}
ONNX_OPSET = 18


def element_type(dtype: np.dtype | str) -> int:
    """The ONNX element type of a numpy dtype name, or "bfloat16"."""
    if str(dtype) == "bfloat16":
        return TensorProto.BFLOAT16
    return _ELEMENT_TYPES[np.dtype(dtype)]


def block_sparse_attention_model(dtype: np.dtype | str, block_size: int, *, scale: float | None = None,
                                 per_head_mask: bool = False, repeats: int = 1) -> onnx.ModelProto:
    """One ``BlockSparseAttention`` node (or ``repeats`` independent ones, outputs out0, out1, ...)."""
    elem = element_type(dtype)
    mask_lead = ["B", "H"] if per_head_mask else ["B"]
    inputs = [
        helper.make_tensor_value_info("q", elem, ["B", "H", "Nq", "D"]),
        helper.make_tensor_value_info("k", elem, ["B", "H", "Nk", "D"]),
        helper.make_tensor_value_info("v", elem, ["B", "H", "Nk", "D"]),
        helper.make_tensor_value_info("row_ptr", TensorProto.INT32, [*mask_lead, "R"]),
        helper.make_tensor_value_info("col_idx", TensorProto.INT32, [*mask_lead, "NNZ"]),
    ]
    attributes: dict[str, object] = {"block_size": block_size}
    if scale is not None:
        attributes["scale"] = float(scale)
    names = ["out"] if repeats == 1 else [f"out{i}" for i in range(repeats)]
    nodes = [helper.make_node(OP_NAME, ["q", "k", "v", "row_ptr", "col_idx"], [name], domain=OP_DOMAIN,
                              name=f"attention_{i}", **attributes) for i, name in enumerate(names)]
    outputs = [helper.make_tensor_value_info(name, elem, ["B", "H", "Nq", "D"]) for name in names]
    graph = helper.make_graph(nodes, "block_sparse_attention", inputs, outputs)
    return _model(graph, [helper.make_opsetid(OP_DOMAIN, OP_VERSION)])


def multi_head_attention_model(dtype: np.dtype | str, heads: int, head_dim: int, *,
                               repeats: int = 1) -> onnx.ModelProto:
    """Dense ``com.microsoft.MultiHeadAttention``: q ``[B, Nq, H*D]``, k and v ``[B, H, Nk, D]`` → ``[B, Nq, H*D]``."""
    elem = element_type(dtype)
    inputs = [
        helper.make_tensor_value_info("q", elem, ["B", "Nq", heads * head_dim]),
        helper.make_tensor_value_info("k", elem, ["B", heads, "Nk", head_dim]),
        helper.make_tensor_value_info("v", elem, ["B", heads, "Nk", head_dim]),
    ]
    names = ["out"] if repeats == 1 else [f"out{i}" for i in range(repeats)]
    nodes = [helper.make_node("MultiHeadAttention", ["q", "k", "v"], [name], domain="com.microsoft",
                              num_heads=heads, name=f"attention_{i}") for i, name in enumerate(names)]
    outputs = [helper.make_tensor_value_info(name, elem, ["B", "Nq", heads * head_dim]) for name in names]
    graph = helper.make_graph(nodes, "multi_head_attention", inputs, outputs)
    return _model(graph, [helper.make_opsetid("com.microsoft", 1)])


def split_heads_norm_model(dtype: np.dtype | str, heads: int, *, epsilon: float | None = None) -> onnx.ModelProto:
    """One ``SplitHeadsNorm`` node: inputs qkv, q_weight, k_weight; outputs q, k, v."""
    elem = element_type(dtype)
    inputs = [helper.make_tensor_value_info("qkv", elem, ["B", "N", "W"]),
              helper.make_tensor_value_info("q_weight", elem, ["D"]),
              helper.make_tensor_value_info("k_weight", elem, ["D"])]
    attributes: dict[str, object] = {"heads": heads}
    if epsilon is not None:
        attributes["epsilon"] = float(epsilon)
    node = helper.make_node(SPLIT_HEADS_OP_NAME, ["qkv", "q_weight", "k_weight"], ["q", "k", "v"], domain=OP_DOMAIN,
                            name="split_heads", **attributes)
    outputs = [helper.make_tensor_value_info(name, elem, ["B", heads, "N", "D"]) for name in ("q", "k", "v")]
    graph = helper.make_graph([node], "split_heads_norm", inputs, outputs)
    return _model(graph, [helper.make_opsetid(OP_DOMAIN, OP_VERSION)])


def _model(graph: onnx.GraphProto, extra_opsets: list[onnx.OperatorSetIdProto]) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET), *extra_opsets])
    model.ir_version = 10
    return model
