"""The device copier: its handwritten model is a valid ONNX model, and its copies are exact, into
poisoned destinations, whatever the element type and shape (CPU EP; on CUDA the same model runs)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from inference.render.student.device_copy import IR_VERSION, OPSET, Copy, DeviceCopier, copy_model


def test_the_handwritten_model_is_the_one_onnx_would_write():
    width = 3
    nodes = [helper.make_node("Identity", [f"x{i}"], [f"y{i}"], name=f"copy{i}") for i in range(width)]
    graph = helper.make_graph(nodes, "device_copy",
                              [helper.make_tensor_value_info(f"x{i}", TensorProto.UINT8, [f"n{i}"]) for i in range(width)],
                              [helper.make_tensor_value_info(f"y{i}", TensorProto.UINT8, [f"n{i}"]) for i in range(width)])
    expected = helper.make_model(graph, producer_name="podium", opset_imports=[helper.make_opsetid("", OPSET)],
                                 ir_version=IR_VERSION)
    assert copy_model(width) == expected.SerializeToString()
    onnx.checker.check_model(onnx.load_from_string(copy_model(width)), full_check=True)
    with pytest.raises(ValueError, match="at least one node"):
        copy_model(0)


def on_device(array: np.ndarray) -> ort.OrtValue:
    return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array))


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64])
@pytest.mark.parametrize("shape", [(1000,), (2, 3, 5, 7)])
def test_copies_are_exact_and_touch_nothing_else(dtype, shape):
    rng = np.random.default_rng(0)
    copier = DeviceCopier("cpu", width=2)
    sources = [on_device((rng.standard_normal(shape) * 1000).astype(dtype)) for _ in range(3)]
    poison = np.iinfo(np.int64).min if dtype == np.int64 else np.nan
    # Each destination sits inside a poisoned buffer with one element of margin on each side.
    count = int(np.prod(shape))
    buffers = [on_device(np.full(count + 2, poison, dtype=dtype)) for _ in range(3)]
    itemsize = np.dtype(dtype).itemsize
    copier.copy([Copy(source.data_ptr(), buffer.data_ptr() + itemsize, count * itemsize)
                 for source, buffer in zip(sources, buffers, strict=True)])  # 3 copies: two runs of width 2
    for source, buffer in zip(sources, buffers, strict=True):
        out = buffer.numpy()
        assert out[1:-1].tobytes() == source.numpy().tobytes()
        assert np.array_equal(out[[0, -1]], np.full(2, poison, dtype=dtype), equal_nan=True)


def test_fewer_copies_than_nodes_and_none_at_all():
    copier = DeviceCopier("cpu", width=4)
    source, destination = on_device(np.arange(10, dtype=np.uint8)), on_device(np.zeros(10, np.uint8))
    copier.copy([])
    assert not destination.numpy().any()
    copier.copy([Copy(source.data_ptr(), destination.data_ptr(), 10)])
    assert destination.numpy().tolist() == list(range(10))
