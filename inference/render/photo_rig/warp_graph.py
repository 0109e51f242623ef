"""The photo rig's per-frame warp as one ONNX Runtime graph, for a GPU.

:class:`GraphWarper` does what :class:`~inference.render.photo_rig.warp.PortraitWarper` does, with the
whole-frame steps in one graph that runs on ONNX Runtime's CUDA execution provider:

1. the forward displacement: the control values times the fields (one matrix product over dense fields);
2. its inversion on the grid (five bilinear samples of the field, zero outside it, as ``cv2.remap`` with a
   constant border), upsampled to pixels (linear, half-pixel centres, as ``cv2.resize``);
3. the same for the mouth's lower layer (the field plus the jaw's jump), taken where the CPU marked the
   pixels below the opened seam (:meth:`PortraitWarper.lower_layer_window`, uploaded as a mask);
4. one bilinear sample of the premultiplied person layer (edges repeated, as ``cv2.remap`` with a
   replicated border), laid over the background plate and rounded to 8 bits.

The CPU keeps the steps that touch small windows: where the mouth opens, the blinking eyelids (the graph
also returns the backward map and the field in frames with a blink, for :meth:`PortraitWarper.eye_patch`),
and the mouth interior. Sampling is in float32 where ``cv2.remap`` uses 1/32-pixel weights, so frames differ
from the CPU path's by a level or two at sharp edges.
"""

from __future__ import annotations

import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from inference.render.photo_rig.deformation import CELL, FIELD_CONTROLS, GRID_OFFSET
from inference.render.photo_rig.warp import INVERSION_STEPS, MouthOpening, PortraitWarper, composite

#: The graph's opset (GridSample from 16, its "bilinear" mode name until 19).
OPSET = 17


class GraphWarper:
    """Moves one framed portrait by control values with an ONNX Runtime graph (see the module docstring).

    Args:
        warper: the portrait's CPU warper: its data and its window steps are shared.
        providers: ONNX Runtime execution providers, in order.
        only: refuse to run any node on another provider than the first (no silent CPU fallback).

    Raises:
        RuntimeError: ONNX Runtime could not create the session (with ``only``, also when a node cannot run on
            the first provider).
    """

    def __init__(self, warper: PortraitWarper, providers: list[str], only: bool = False) -> None:
        import onnxruntime as ort

        self.cpu = warper
        self.size = warper.size
        self.deformation = warper.deformation
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if only:
            options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        try:
            self.session = ort.InferenceSession(build_warp_graph(warper).SerializeToString(), options,
                                                providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise RuntimeError(f"ONNX Runtime could not build the photo rig's warp graph: {exc}") from exc
        width, height = self.size
        self._lower = np.zeros((height, width), np.uint8)
        #: seconds spent in each step of the last :meth:`warp`
        self.timings: dict[str, float] = {}

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def warp(self, field_values: np.ndarray, blinks: tuple[float, float]) -> tuple[np.ndarray, MouthOpening]:
        """The portrait moved by ``field_values`` (``[len(FIELD_CONTROLS)]``) with eyelids closed by ``blinks``.

        Returns:
            uint8 ``[H, W, 3]`` frame and where the mouth opened, as :meth:`PortraitWarper.warp`.
        """
        t0 = time.perf_counter()
        opening = self.cpu.mouth_opening(field_values)
        window = self.cpu.lower_layer_window(field_values, opening)
        if window is not None:
            self._lower[window.rows, window.cols] = window.below
        closing = [(eye, float(amount)) for eye, amount in zip(self.deformation.eyes, blinks, strict=True)
                   if amount > 0.01]
        t1 = time.perf_counter()
        names = ["frame", "backward", "field"] if closing else ["frame"]
        outputs = self.session.run(names, {"values": np.asarray(field_values, np.float32), "lower": self._lower})
        if window is not None:
            self._lower[window.rows, window.cols] = 0
        frame = outputs[0]
        t2 = time.perf_counter()
        for eye, amount in closing:
            patch = self.cpu.eye_patch(outputs[1], eye, amount, outputs[2])
            if patch is not None:
                frame[patch.rows, patch.cols] = composite(patch.rgba, self.cpu.background[patch.rows, patch.cols])
        t3 = time.perf_counter()
        self.timings = {"map": t1 - t0, "graph": t2 - t1, "eyes": t3 - t2}
        return frame, opening


def build_warp_graph(warper: PortraitWarper) -> onnx.ModelProto:
    """The graph of one portrait: inputs ``values`` float32 ``[len(FIELD_CONTROLS)]`` and ``lower`` uint8
    ``[H, W]`` (1 where the lower layer is used); outputs ``frame`` uint8 ``[H, W, 3]``, ``backward`` float32
    ``[H, W, 2]`` (source pixel of every output pixel) and ``field`` float32 ``[rows, cols, 2]`` (the forward
    displacement on the grid)."""
    deformation = warper.deformation
    width, height = warper.size
    rows, cols = deformation.grid_shape
    count = len(FIELD_CONTROLS)
    fields = np.zeros((count, rows, cols, 2), np.float32)
    for k, patch in enumerate(deformation.fields):
        if patch is not None:
            fields[k, patch.rows, patch.cols] = patch.values
    jump = np.zeros((rows, cols, 2), np.float32)
    jump[deformation.mouth.jump.rows, deformation.mouth.jump.cols] = deformation.mouth.jump.values
    # pixel positions -> GridSample's [-1, 1] (align_corners): on the grid, and on the frame
    grid_scale = np.array([2.0 / (CELL * max(cols - 1, 1)), 2.0 / (CELL * max(rows - 1, 1))], np.float32)
    grid_shift = (-GRID_OFFSET * grid_scale - 1.0).astype(np.float32)
    frame_scale = np.array([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], np.float32)
    source = warper.source.astype(np.float32).transpose(2, 0, 1)[None]
    background = warper.background.astype(np.float32).transpose(2, 0, 1)[None]

    constants = {
        "fields": fields.reshape(count, -1),
        "jump": jump.reshape(1, -1),
        "jaw_index": np.array([FIELD_CONTROLS.index("jaw")], np.int64),
        "targets": warper.grid[None].astype(np.float32),
        "pixels": warper.pixels.astype(np.float32),
        "grid_scale": grid_scale,
        "grid_shift": grid_shift,
        "frame_scale": frame_scale,
        "minus_one": np.array([-1.0], np.float32),
        "source": np.ascontiguousarray(source),
        "background": np.ascontiguousarray(background),
        "opacity": np.array([1.0 / 255.0], np.float32),
        "one": np.array([1.0], np.float32),
        "zero": np.array(0.0, np.float32),
        "full": np.array(255.0, np.float32),
        "values_shape": np.array([1, count], np.int64),
        "field_shape": np.array([rows, cols, 2], np.int64),
        "field_nhwc": np.array([1, rows, cols, 2], np.int64),
        "upsampled": np.array([1, 2, rows * CELL, cols * CELL], np.int64),
        "crop_start": np.array([0, 0], np.int64),
        "crop_end": np.array([height, width], np.int64),
        "crop_axes": np.array([2, 3], np.int64),
        "rgb_start": np.array([0], np.int64),
        "rgb_end": np.array([3], np.int64),
        "alpha_end": np.array([4], np.int64),
        "channel_axis": np.array([1], np.int64),
        "axis_0": np.array([0], np.int64),
        "axis_2": np.array([2], np.int64),
    }
    nodes: list[onnx.NodeProto] = []

    def node(op: str, inputs: list[str], output: str, **attributes: object) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def backward_map(field_flat: str, name: str) -> str:
        """Fixed-point inversion of a forward field on the grid, upsampled to a per-pixel backward map."""
        field = node("Transpose", [node("Reshape", [field_flat, "field_nhwc"], f"{name}_nhwc")], f"{name}_nchw",
                     perm=[0, 3, 1, 2])
        source_xy = "targets"
        for step in range(INVERSION_STEPS):
            at = node("Add", [node("Mul", [source_xy, "grid_scale"], f"{name}_s{step}"), "grid_shift"],
                      f"{name}_at{step}")
            moved = node("GridSample", [field, at], f"{name}_d{step}", mode="bilinear", padding_mode="zeros",
                         align_corners=1)
            source_xy = node("Sub", ["targets", node("Transpose", [moved], f"{name}_dt{step}", perm=[0, 2, 3, 1])],
                             f"{name}_src{step}")
        coarse = node("Transpose", [node("Sub", [source_xy, "targets"], f"{name}_coarse")], f"{name}_coarse_nchw",
                      perm=[0, 3, 1, 2])
        fine = node("Resize", [coarse, "", "", "upsampled"], f"{name}_fine", mode="linear",
                    coordinate_transformation_mode="half_pixel")
        cropped = node("Slice", [fine, "crop_start", "crop_end", "crop_axes"], f"{name}_crop")
        per_pixel = node("Squeeze", [node("Transpose", [cropped], f"{name}_hw", perm=[0, 2, 3, 1]), "axis_0"],
                         f"{name}_hw2")
        return node("Add", [per_pixel, "pixels"], f"{name}_backward")

    values = node("Reshape", ["values", "values_shape"], "values_row")
    field_flat = node("MatMul", [values, "fields"], "field_flat")
    node("Reshape", [field_flat, "field_shape"], "field")
    jaw = node("Gather", ["values", "jaw_index"], "jaw")
    lower_flat = node("Add", [field_flat, node("Mul", ["jump", jaw], "jaw_jump")], "lower_flat")
    upper = backward_map(field_flat, "upper")
    lower = backward_map(lower_flat, "lower")
    choose = node("Unsqueeze", [node("Cast", ["lower"], "lower_bool", to=TensorProto.BOOL), "axis_2"], "choose")
    node("Where", [choose, lower, upper], "backward")
    at = node("Unsqueeze", [node("Add", [node("Mul", ["backward", "frame_scale"], "scaled"), "minus_one"], "at"),
                            "axis_0"], "at4")
    person = node("GridSample", ["source", at], "person", mode="bilinear", padding_mode="border", align_corners=1)
    rgb = node("Slice", [person, "rgb_start", "rgb_end", "channel_axis"], "person_rgb")
    alpha = node("Slice", [person, "rgb_end", "alpha_end", "channel_axis"], "person_alpha")
    uncovered = node("Sub", ["one", node("Mul", [alpha, "opacity"], "alpha_unit")], "uncovered")
    laid = node("Add", [rgb, node("Mul", ["background", uncovered], "shown")], "laid")
    rounded = node("Clip", [node("Round", [laid], "rounded_raw"), "zero", "full"], "rounded")
    pixels = node("Transpose", [node("Squeeze", [rounded, "axis_0"], "frame_chw")], "frame_hwc", perm=[1, 2, 0])
    node("Cast", [pixels], "frame", to=TensorProto.UINT8)

    graph = helper.make_graph(
        nodes, "photo_rig_warp",
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, [count]),
         helper.make_tensor_value_info("lower", TensorProto.UINT8, [height, width])],
        [helper.make_tensor_value_info("frame", TensorProto.UINT8, [height, width, 3]),
         helper.make_tensor_value_info("backward", TensorProto.FLOAT, [height, width, 2]),
         helper.make_tensor_value_info("field", TensorProto.FLOAT, [rows, cols, 2])],
        [numpy_helper.from_array(np.asarray(value), name) for name, value in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="podium")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
