"""Copies between buffers on the execution provider's device, with ONNX Runtime alone (no torch, no cupy).

ONNX Runtime's Python API can fill a device buffer from the host (``OrtValue.update_inplace``) but has no
device-to-device copy. :class:`DeviceCopier` makes one from a tiny model of ``width`` independent
``Identity`` nodes (``x{i} → y{i}``, uint8, one symbolic dimension each), run with IO binding: each input
is bound by pointer to a source and each output by pointer to its destination, so every node copies one
byte range (``Identity`` copies whenever its output is not its input: ``memcpy`` on the CPU,
``cudaMemcpyAsync`` on the session's stream on CUDA). Copying bytes makes one session serve every element
type and shape. Several copies go in one run; a run with fewer copies than nodes gives the idle nodes zero
bytes to copy. Graph optimisations are off, so no ``Identity`` is ever optimised away.

The runtime has no ``onnx`` package, so the model's protobuf bytes are written here by hand
(:func:`copy_model`; ``tests/student/test_device_copy.py`` checks them with ``onnx.checker``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from inference.errors import DeviceError

OPSET = 13  # Identity-13: every tensor element type, on the CPU and the CUDA execution providers
IR_VERSION = 7  # the first IR version that opset 13 may use
_UINT8 = 2  # onnx.TensorProto.UINT8
_VARINT, _BYTES = 0, 2  # protobuf wire types


class Copy(NamedTuple):
    """One byte range to copy: device pointers and a size in bytes."""

    source: int
    destination: int
    nbytes: int


# -- the model, as protobuf bytes ---------------------------------------------------------------------

def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: int | str | bytes) -> bytes:
    """One protobuf field: an int as a varint, a str or bytes as a length-delimited field."""
    if isinstance(value, int):
        return _varint(number << 3 | _VARINT) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | _BYTES) + _varint(len(data)) + data


def _uint8_vector(name: str, length: str) -> bytes:
    """ValueInfoProto: ``name``, a uint8 tensor of one symbolic dimension ``length``."""
    shape = _field(1, _field(2, length))  # TensorShapeProto.dim { dim_param }
    tensor = _field(1, _UINT8) + _field(2, shape)  # TypeProto.Tensor { elem_type, shape }
    return _field(1, name) + _field(2, _field(1, tensor))  # ValueInfoProto { name, type { tensor_type } }


def copy_model(width: int) -> bytes:
    """A serialized ModelProto of ``width`` independent ``Identity`` nodes: uint8 ``x{i} [n{i}]`` → ``y{i}``."""
    if width < 1:
        raise ValueError(f"a copy model needs at least one node, got width {width}")
    graph = b"".join(_field(1, _field(1, f"x{i}") + _field(2, f"y{i}") + _field(3, f"copy{i}") + _field(4, "Identity"))
                     for i in range(width))  # GraphProto.node { input, output, name, op_type }
    graph += _field(2, "device_copy")  # GraphProto.name
    graph += b"".join(_field(11, _uint8_vector(f"x{i}", f"n{i}")) for i in range(width))  # GraphProto.input
    graph += b"".join(_field(12, _uint8_vector(f"y{i}", f"n{i}")) for i in range(width))  # GraphProto.output
    opset = _field(1, "") + _field(2, OPSET)  # OperatorSetIdProto { domain (default), version }
    # ModelProto { ir_version, producer_name, graph, opset_import }
    return _field(1, IR_VERSION) + _field(2, "podium") + _field(7, graph) + _field(8, opset)


# -- the copier ---------------------------------------------------------------------------------------

class DeviceCopier:
    """Copies byte ranges between buffers of one device, ``width`` of them per ONNX Runtime run.

    Args:
        provider: "cuda" or "cpu" (pointers are then CUDA device pointers or host pointers).
        width: copies per run (a call with more takes several runs).
        device_id: the CUDA device.

    Raises:
        DeviceError: ONNX Runtime cannot create the copy session on ``provider`` (with what to do).
    """

    def __init__(self, provider: str, *, width: int = 1, device_id: int = 0) -> None:
        import onnxruntime as ort

        self.device = "cuda" if provider == "cuda" else "cpu"
        self.device_id = device_id
        self.width = width
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        providers = ([("CUDAExecutionProvider", {"device_id": device_id})] if provider == "cuda"
                     else ["CPUExecutionProvider"])
        try:
            self.session = ort.InferenceSession(copy_model(width), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise DeviceError(f"ONNX Runtime cannot run device copies on {provider.upper()} ({exc}); check that "
                              f"its {provider.upper()} execution provider works (`main.py doctor`)") from exc
        self._binding = self.session.io_binding()
        # Idle nodes copy zero bytes between these one-byte buffers (a bound pointer must be valid).
        self._idle = [ort.OrtValue.ortvalue_from_shape_and_type([1], np.uint8, self.device, device_id)
                      for _ in range(2)]

    def copy(self, copies: Sequence[Copy]) -> None:
        """Copies every range, in ``ceil(len(copies) / width)`` runs; returns once the copies are done.
        Ranges must not overlap one another's destinations (nodes of one run have no order)."""
        for start in range(0, len(copies), self.width):
            batch = copies[start:start + self.width]
            idle = Copy(self._idle[0].data_ptr(), self._idle[1].data_ptr(), 0)
            for i, (source, destination, nbytes) in enumerate([*batch, *[idle] * (self.width - len(batch))]):
                self._binding.bind_input(f"x{i}", self.device, self.device_id, np.uint8, [nbytes], source)
                self._binding.bind_output(f"y{i}", self.device, self.device_id, np.uint8, [nbytes], destination)
            self.session.run_with_iobinding(self._binding)
