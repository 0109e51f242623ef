"""SplitHeadsNorm under ONNX Runtime's CPU execution provider, against the float64 reference.

Fresh random inputs every run (the seed is printed); the three outputs are bound as buffers full of NaN, so an
element the kernel forgets to write shows. Tolerance (float32 kernel vs float64 reference):
|out - ref| <= 1e-5 + 1e-5 |ref| per element; v is copied exactly.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper
from op_cases import without_input_shapes

from inference import ops
from inference.ops import graphs
from inference.ops.reference import reference_split_heads_norm

RTOL, ATOL = 1e-5, 1e-5


def session(model) -> ort.InferenceSession:
    options = ort.SessionOptions()
    ops.register(options)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, qkv: np.ndarray, q_weight: np.ndarray, k_weight: np.ndarray,
        heads: int) -> list[np.ndarray]:
    batch, tokens, width = qkv.shape
    shape = (batch, heads, tokens, width // (3 * heads))
    outputs = [np.full(shape, np.nan, dtype=np.float32) for _ in range(3)]
    binding = sess.io_binding()
    for name, value in (("qkv", qkv), ("q_weight", q_weight), ("k_weight", k_weight)):
        binding.bind_cpu_input(name, value)
    for name, out in zip(("q", "k", "v"), outputs, strict=True):
        binding.bind_ortvalue_output(name, ort.OrtValue.ortvalue_from_numpy(out))  # wraps `out`, no copy
    sess.run_with_iobinding(binding)
    return outputs


def inputs(rng: np.random.Generator, batch: int, tokens: int, heads: int, head_dim: int):
    scale = np.exp(rng.uniform(-3, 3))  # RMSNorm must not care about the inputs' scale
    qkv = (rng.standard_normal((batch, tokens, 3 * heads * head_dim)) * scale).astype(np.float32)
    q_weight, k_weight = (rng.uniform(-2, 2, head_dim).astype(np.float32) for _ in range(2))
    return qkv, q_weight, k_weight


@pytest.mark.parametrize(("batch", "tokens", "heads", "head_dim"),
                         [(1, 1, 1, 1), (2, 37, 3, 64), (1, 300, 7, 64), (3, 5, 2, 128), (2, 17, 4, 24)])
def test_matches_the_float64_reference(op_library, rng: np.random.Generator, batch: int, tokens: int, heads: int,
                                       head_dim: int) -> None:
    qkv, q_weight, k_weight = inputs(rng, batch, tokens, heads, head_dim)
    outputs = run(session(graphs.split_heads_norm_model(np.float32, heads)), qkv, q_weight, k_weight, heads)
    expected = reference_split_heads_norm(qkv, q_weight, k_weight, heads)
    for name, out, ref in zip("qkv", outputs, expected, strict=True):
        assert np.isfinite(out).all(), f"{name}: some elements were not written"
        np.testing.assert_allclose(out, ref, rtol=RTOL, atol=ATOL, err_msg=name)
    assert np.array_equal(outputs[2], expected[2].astype(np.float32)), "v must be copied exactly"


def test_epsilon_attribute_is_used(op_library, rng: np.random.Generator) -> None:
    qkv, q_weight, k_weight = inputs(rng, 1, 9, 2, 16)
    qkv *= 1e-3  # mean squares of 1e-6: epsilon 0.5 dominates them
    outputs = run(session(graphs.split_heads_norm_model(np.float32, 2, epsilon=0.5)), qkv, q_weight, k_weight, 2)
    expected = reference_split_heads_norm(qkv, q_weight, k_weight, 2, epsilon=0.5)
    for out, ref in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(out, ref, rtol=RTOL, atol=1e-8)


def test_zero_tokens_give_empty_outputs(op_library) -> None:
    qkv = np.zeros((2, 0, 3 * 2 * 8), dtype=np.float32)
    weight = np.ones(8, dtype=np.float32)
    outputs = session(graphs.split_heads_norm_model(np.float32, 2)).run(None, {"qkv": qkv, "q_weight": weight,
                                                                             "k_weight": weight})
    assert [o.shape for o in outputs] == [(2, 2, 0, 8)] * 3


def test_output_shapes_are_inferred(op_library) -> None:
    """ONNX Runtime learns the outputs' shapes when the session is created (the optimizer needs them)."""
    model = graphs.split_heads_norm_model(np.float32, 4)
    for value in model.graph.input:  # fixed input shapes: batch 2, 10 tokens, head_dim 16
        dims = {"qkv": [2, 10, 192], "q_weight": [16], "k_weight": [16]}[value.name]
        value.type.tensor_type.shape.CopyFrom(helper.make_tensor_type_proto(1, dims).tensor_type.shape)
    del model.graph.output[:]
    model.graph.output.extend(helper.make_tensor_value_info(name, 1, None) for name in ("q", "k", "v"))
    outputs = session(model).get_outputs()
    assert [o.shape for o in outputs] == [[2, 4, 10, 16]] * 3


@pytest.mark.parametrize(("heads", "epsilon", "message"), [
    (0, None, "attribute heads is 0; it must be the number of attention heads"),
    (2, -1.0, "attribute epsilon is -1; it must be a positive finite number"),
    (2, float("nan"), "attribute epsilon is nan"),
])
def test_bad_attributes_fail_the_session_with_a_message(op_library, heads: int, epsilon: float | None,
                                                        message: str) -> None:
    with pytest.raises(Exception, match=message):
        session(graphs.split_heads_norm_model(np.float32, heads, epsilon=epsilon))


def test_missing_heads_attribute_is_named(op_library) -> None:
    model = graphs.split_heads_norm_model(np.float32, 2)
    del model.graph.node[0].attribute[:]
    with pytest.raises(Exception, match="SplitHeadsNorm: the node has no int attribute heads"):
        session(model)


@pytest.mark.parametrize(("qkv_shape", "weight_shape", "message"), [
    ((2, 5), (8,), r"qkv must have rank 3 \[batch, tokens, 3 \* heads \* head_dim\], got shape \[2, 5\]"),
    ((1, 4, 50), (8,), r"the last dimension of qkv \[1, 4, 50\] must be 3 \* heads \* head_dim"),
    ((1, 4, 48), (7,), r"q_weight and k_weight must have shape \[8\] \(head_dim\), got \[7\]"),
])
def test_wrong_shapes_are_refused_with_a_message(op_library, qkv_shape, weight_shape, message: str) -> None:
    sess = session(without_input_shapes(graphs.split_heads_norm_model(np.float32, 2)))
    qkv = np.zeros(qkv_shape, dtype=np.float32)
    weight = np.ones(weight_shape, dtype=np.float32)
    with pytest.raises(Exception, match=message):
        sess.run(None, {"qkv": qkv, "q_weight": weight, "k_weight": weight})
