"""Draws DWPose-134 keypoints as a pose map, in the DWPose / ControlNet style.

Body limbs are coloured ellipses and joints coloured dots, hands are
rainbow-coloured bones with blue joints, the face is white dots; every element's
brightness is scaled by its keypoints' confidence (MimicMotion's
confidence-aware pose guidance). The same image is the IASA student's pose
conditioning and the GUI's debug view.

A :class:`PoseMapStyle` adds what the DWPose style loses (the default,
:data:`DWPOSE`, draws exactly that style, and every pack before session 9 was
trained on it; a model's ``StudentConfig`` and its pack manifest's model say
which style it was trained on):

* ``limbs_leaving_frame``: a point outside the frame has confidence 0 but keeps
  its position (the motion rig and the data paths keep it). A limb or hand bone
  from a confident point to such a point is drawn too, cut by the frame's edge:
  the arm of a head-and-shoulders framing, whose elbow lies below the picture,
  then shows where it goes. DWPose draws only limbs between confident points.
* ``face_contours``: the lips and the eyes are drawn as thin closed contours (the
  outer lip, the inner lip around a filled mouth opening, each eye around a filled
  eye opening) instead of dots. At 256 pixels DWPose's lip dots (5 pixels wide,
  3 to 5 apart) run into one blob, in which an open "o" and a shut mouth look
  alike.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from inference.keypoints import (
    BODY_LIMBS,
    FACE,
    FACE_INNER_LIPS,
    FACE_LEFT_EYE,
    FACE_OUTER_LIPS,
    FACE_RIGHT_EYE,
    HAND_BONES,
    LEFT_HAND,
    RIGHT_HAND,
    UNDRIVEN,
)
from inference.types import KeypointFrame, VideoFrame

#: OpenPose's 18 body colours (RGB), one per joint and one per limb in drawing order.
_BODY_COLOURS = np.array(
    [
        [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0],
        [0, 255, 0], [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255],
        [0, 0, 255], [85, 0, 255], [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
    ],
    dtype=np.float32,
)
_HAND_COLOURS = np.array(
    [[c * 255 for c in colorsys.hsv_to_rgb(i / len(HAND_BONES), 1.0, 1.0)] for i in range(len(HAND_BONES))],
    dtype=np.float32,
)
#: Below this confidence a body limb is not drawn.
LIMB_MIN_CONFIDENCE = 0.3
_SHIFT = 4  # sub-pixel bits for anti-aliased cv2 drawing
_ONE = 1 << _SHIFT
_LIMBS = np.array(BODY_LIMBS)
_BONES = np.array(HAND_BONES)
#: Face contours (closed, iBUG-68 indices) with their line colour and the fill of their inside (None: no fill).
_CONTOURS: tuple[tuple[tuple[int, ...], tuple[float, float, float], tuple[float, float, float] | None], ...] = (
    (FACE_OUTER_LIPS, (255.0, 110.0, 110.0), None),
    (FACE_INNER_LIPS, (110.0, 255.0, 255.0), (150.0, 0.0, 90.0)),
    (FACE_RIGHT_EYE, (255.0, 255.0, 110.0), (0.0, 110.0, 150.0)),
    (FACE_LEFT_EYE, (255.0, 255.0, 110.0), (0.0, 110.0, 150.0)),
)
#: Which face points stay dots when the contours are drawn (the others are the contours' points).
_FACE_DOTS = np.ones(FACE.stop - FACE.start, dtype=bool)
_FACE_DOTS[[i for contour, _, _ in _CONTOURS for i in contour]] = False


@dataclass(frozen=True)
class PoseMapStyle:
    """What a pose map adds to the DWPose style (see the module's doc); all off is DWPose's own."""

    limbs_leaving_frame: bool = False
    face_contours: bool = False


#: The DWPose style: what every model before session 9 was trained on.
DWPOSE = PoseMapStyle()
#: Everything the pose map can show: the new models' style and the debug view's.
FULL = PoseMapStyle(limbs_leaving_frame=True, face_contours=True)


def draw_pose_map(keypoints: np.ndarray, size: tuple[int, int], out: np.ndarray | None = None, *,
                  style: PoseMapStyle = DWPOSE) -> np.ndarray:
    """Draw one frame's keypoints.

    Args:
        keypoints: float32 ``[134, 3]`` (x, y in 0..1 inside the frame, confidence).
        size: (width, height) of the image.
        out: optional uint8 ``[H, W, 3]`` buffer to draw into (cleared first).
        style: what to add to the DWPose style. With ``limbs_leaving_frame`` a limb or hand bone from a confident
            point to a point outside the frame is as bright as if both ends had the confident end's confidence;
            with ``face_contours`` a contour is as bright as its least confident point, and a contour with a point
            below 0.01 is left out (its points are not drawn as dots either).

    Returns:
        uint8 RGB ``[H, W, 3]`` pose map on black.
    """
    width, height = size
    if out is None:
        out = np.zeros((height, width, 3), dtype=np.uint8)
    else:
        out[...] = 0
    scale = min(width, height) / 512.0
    xy = keypoints[:, :2] * np.array([width, height], dtype=np.float32)
    conf = keypoints[:, 2].copy()
    conf[UNDRIVEN] = 0.0
    beyond = _beyond_frame(keypoints[:, :2]) if style.limbs_leaving_frame else np.zeros(len(conf), dtype=bool)
    beyond[UNDRIVEN] = False
    _draw_body(out, xy, conf, beyond, scale)
    for hand in (LEFT_HAND, RIGHT_HAND):
        _draw_hand(out, xy[hand], conf[hand], beyond[hand], scale)
    if style.face_contours:
        _draw_face(out, xy[FACE][_FACE_DOTS], conf[FACE][_FACE_DOTS], scale)
        _draw_face_contours(out, xy[FACE], conf[FACE], scale)
    else:
        _draw_face(out, xy[FACE], conf[FACE], scale)
    return out


def _beyond_frame(xy: np.ndarray) -> np.ndarray:
    """Which points ``[N, 2]`` (normalised) lie outside the frame: ``[N]`` bool."""
    return ((xy < 0.0) | (xy > 1.0)).any(axis=1)


def _leaving_weights(conf: np.ndarray, beyond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pair (a, b) of points that leaves the frame (one end unseen, confidence 0, and ``beyond`` the frame),
    the other end's confidence squared; 0 for every other pair. ``[len(a)]`` float32."""
    b_leaves = (conf[b] == 0) & beyond[b]
    a_leaves = (conf[a] == 0) & beyond[a]
    return np.where(b_leaves, conf[a] ** 2, np.where(a_leaves, conf[b] ** 2, np.float32(0))).astype(np.float32)


def _fixed(xy: np.ndarray) -> list[tuple[int, int]]:
    """Points ``[N, 2]`` → cv2's fixed-point integer coordinates (``_SHIFT`` sub-pixel bits), rounded half to even."""
    return [tuple(p) for p in np.rint(xy.astype(np.float64) * _ONE).astype(np.int64).tolist()]


# Each element's arithmetic is numpy's float32 (colours, centres, lengths) or Python's float64 (angles, face and hand
# dot brightness) exactly as when this drew element by element, so the maps are unchanged bit for bit; only the
# per-element numpy scalar work became whole-array work (it was most of the time of a frame).

def _draw_body(canvas: np.ndarray, xy: np.ndarray, conf: np.ndarray, beyond: np.ndarray, scale: float) -> None:
    stick = max(1, int(round(max(1.0, 4.0 * scale))))
    a, b = _LIMBS[:, 0], _LIMBS[:, 1]
    both = (conf[a] >= LIMB_MIN_CONFIDENCE) & (conf[b] >= LIMB_MIN_CONFIDENCE)
    leaving = _leaving_weights(conf, beyond, a, b)
    weights = np.where(both, conf[a] * conf[b], np.where(leaving >= LIMB_MIN_CONFIDENCE**2, leaving, np.float32(0)))
    drawn = np.flatnonzero(weights > 0).tolist()
    pa, pb = xy[a], xy[b]
    centres = np.rint(((pa + pb) / 2).astype(np.float64)).astype(np.int64).tolist()
    half_lengths = np.maximum(1, (np.hypot(*(pa - pb).T) / 2).astype(np.int64)).tolist()
    delta = (pa - pb).tolist()
    colours = (_BODY_COLOURS[:len(_LIMBS)] * weights[:, None]).tolist()
    polys = [cv2.ellipse2Poly(tuple(centres[i]), (half_lengths[i], stick),
                              int(round(math.degrees(math.atan2(delta[i][1], delta[i][0])))), 0, 360, 10)
             for i in drawn]
    if polys:  # the limbs are blended over the canvas inside their bounding box only (2 px of anti-aliasing margin)
        corners = np.concatenate(polys)
        height, width = canvas.shape[:2]
        x0, y0 = np.maximum(corners.min(axis=0) - 2, 0).tolist()
        x1, y1 = np.minimum(corners.max(axis=0) + 3, (width, height)).tolist()
        if x0 < x1 and y0 < y1:
            limbs = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)
            for i, poly in zip(drawn, polys, strict=True):
                cv2.fillConvexPoly(limbs, poly - (x0, y0), colours[i], lineType=cv2.LINE_AA)
            np.multiply(limbs, 0.6, out=limbs, casting="unsafe")
            region = canvas[y0:y1, x0:x1]
            np.maximum(region, limbs, out=region)
    radius = max(1, int(round(4 * scale))) * _ONE
    points = _fixed(xy[:18])
    colours = (_BODY_COLOURS * conf[:18, None]).tolist()
    for j in np.flatnonzero(conf[:18] > 0).tolist():
        cv2.circle(canvas, points[j], radius, colours[j], -1, cv2.LINE_AA, _SHIFT)


def _draw_hand(canvas: np.ndarray, xy: np.ndarray, conf: np.ndarray, beyond: np.ndarray, scale: float) -> None:
    thickness = max(1, int(round(2 * scale)))
    points = _fixed(xy)
    weights = conf[_BONES[:, 0]] * conf[_BONES[:, 1]]
    weights = np.where(weights > 0, weights, _leaving_weights(conf, beyond, _BONES[:, 0], _BONES[:, 1]))
    colours = (_HAND_COLOURS * weights[:, None]).tolist()
    for i in np.flatnonzero(weights > 0.01).tolist():
        a, b = HAND_BONES[i]
        cv2.line(canvas, points[a], points[b], colours[i], thickness, cv2.LINE_AA, _SHIFT)
    radius = max(1, int(round(4 * scale))) * _ONE
    blue = (255.0 * conf.astype(np.float64)).tolist()
    for j in np.flatnonzero(conf > 0.01).tolist():
        cv2.circle(canvas, points[j], radius, (0.0, 0.0, blue[j]), -1, cv2.LINE_AA, _SHIFT)


def _draw_face(canvas: np.ndarray, xy: np.ndarray, conf: np.ndarray, scale: float) -> None:
    radius = max(1, int(round(3 * scale))) * _ONE
    points = _fixed(xy)
    grey = (255.0 * conf.astype(np.float64)).tolist()
    for j in np.flatnonzero(conf > 0.01).tolist():
        cv2.circle(canvas, points[j], radius, (grey[j], grey[j], grey[j]), -1, cv2.LINE_AA, _SHIFT)


def _draw_face_contours(canvas: np.ndarray, xy: np.ndarray, conf: np.ndarray, scale: float) -> None:
    """The lips and eyes as closed anti-aliased contours, the mouth's and eyes' openings filled (over the dots)."""
    thickness = max(1, int(round(2 * scale)))
    for contour, line, fill in _CONTOURS:
        index = np.array(contour)
        weight = float(conf[index].min())
        if weight <= 0.01:
            continue
        polygon = np.rint(xy[index].astype(np.float64) * _ONE).astype(np.int32)
        if fill is not None:
            cv2.fillPoly(canvas, [polygon], tuple(c * weight for c in fill), cv2.LINE_AA, _SHIFT)
        cv2.polylines(canvas, [polygon], True, tuple(c * weight for c in line), thickness, cv2.LINE_AA, _SHIFT)


class PoseMapRenderer:
    """Renders keypoint frames as DWPose-style pose maps (CPU, per frame).

    Optionally blends the pose map over a dimmed copy of the reference portrait,
    which makes a useful debug view of how the motion sits on the portrait. It draws
    in the :data:`FULL` style unless told otherwise.
    """

    name = "pose-map"
    device = "CPU"
    chunk_size = 1

    def __init__(self, size: tuple[int, int] = (512, 512), *, overlay_reference: bool = False,
                 style: PoseMapStyle = FULL) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.overlay_reference = overlay_reference
        self.style = style
        self._backdrop: np.ndarray | None = None

    def set_reference(self, portrait: np.ndarray) -> None:
        if not self.overlay_reference:
            return
        resized = cv2.resize(portrait, self.size, interpolation=cv2.INTER_AREA)
        self._backdrop = (resized.astype(np.float32) * 0.35).astype(np.uint8)

    def default_portrait(self) -> None:
        """The pose map has no portrait of its own."""
        return None

    def render(self, frames: Sequence[KeypointFrame]) -> list[VideoFrame]:
        out = []
        for frame in frames:
            rgb = draw_pose_map(frame.keypoints, self.size, style=self.style)
            if self._backdrop is not None:
                np.maximum(rgb, self._backdrop, out=rgb)
            out.append(
                VideoFrame(rgb=rgb, index=frame.index, fps=frame.fps, audio_heard_at=frame.audio_heard_at,
                           meta={"renderer": self.name})
            )
        return out

    def reset(self) -> None:
        pass

    def close(self) -> None:
        self._backdrop = None


def availability() -> tuple[bool, str]:
    """The pose map needs only OpenCV, so it runs everywhere."""
    return True, "available"


def create(size: tuple[int, int], *, overlay_reference: bool = False, **_: object) -> PoseMapRenderer:
    return PoseMapRenderer(size, overlay_reference=overlay_reference)
