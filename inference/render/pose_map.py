"""Draws DWPose-134 keypoints as a pose map, in the DWPose / ControlNet style.

Body limbs are coloured ellipses and joints coloured dots, hands are
rainbow-coloured bones with blue joints, the face is white dots; every element's
brightness is scaled by its keypoints' confidence (MimicMotion's
confidence-aware pose guidance). The same image is the IASA student's pose
conditioning and the GUI's debug view.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence

import cv2
import numpy as np

from inference.keypoints import BODY_LIMBS, FACE, HAND_BONES, LEFT_HAND, RIGHT_HAND, UNDRIVEN
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


def draw_pose_map(keypoints: np.ndarray, size: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """Draw one frame's keypoints.

    Args:
        keypoints: float32 ``[134, 3]`` (x, y in 0..1, confidence).
        size: (width, height) of the image.
        out: optional uint8 ``[H, W, 3]`` buffer to draw into (cleared first).

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
    _draw_body(out, xy, conf, scale)
    for hand in (LEFT_HAND, RIGHT_HAND):
        _draw_hand(out, xy[hand], conf[hand], scale)
    _draw_face(out, xy[FACE], conf[FACE], scale)
    return out


def _fixed(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]) * _ONE)), int(round(float(p[1]) * _ONE))


def _draw_body(canvas: np.ndarray, xy: np.ndarray, conf: np.ndarray, scale: float) -> None:
    stick = max(1.0, 4.0 * scale)
    limbs = np.zeros_like(canvas)
    for i, (a, b) in enumerate(BODY_LIMBS):
        ca, cb = conf[a], conf[b]
        if ca < LIMB_MIN_CONFIDENCE or cb < LIMB_MIN_CONFIDENCE:
            continue
        pa, pb = xy[a], xy[b]
        centre = (pa + pb) / 2
        length = float(np.hypot(*(pa - pb)))
        angle = math.degrees(math.atan2(float(pa[1] - pb[1]), float(pa[0] - pb[0])))
        poly = cv2.ellipse2Poly(
            (int(round(centre[0])), int(round(centre[1]))),
            (max(1, int(length / 2)), max(1, int(round(stick)))),
            int(round(angle)),
            0,
            360,
            10,
        )
        colour = _BODY_COLOURS[i] * float(ca * cb)
        cv2.fillConvexPoly(limbs, poly, colour.tolist(), lineType=cv2.LINE_AA)
    np.multiply(limbs, 0.6, out=limbs, casting="unsafe")
    np.maximum(canvas, limbs, out=canvas)
    radius = max(1, int(round(4 * scale))) * _ONE
    for j in range(18):
        if conf[j] <= 0:
            continue
        colour = _BODY_COLOURS[j] * float(conf[j])
        cv2.circle(canvas, _fixed(xy[j]), radius, colour.tolist(), -1, cv2.LINE_AA, _SHIFT)


def _draw_hand(canvas: np.ndarray, xy: np.ndarray, conf: np.ndarray, scale: float) -> None:
    thickness = max(1, int(round(2 * scale)))
    for i, (a, b) in enumerate(HAND_BONES):
        w = float(conf[a] * conf[b])
        if w <= 0.01:
            continue
        cv2.line(canvas, _fixed(xy[a]), _fixed(xy[b]), (_HAND_COLOURS[i] * w).tolist(), thickness, cv2.LINE_AA, _SHIFT)
    radius = max(1, int(round(4 * scale))) * _ONE
    for j in range(21):
        if conf[j] <= 0.01:
            continue
        cv2.circle(canvas, _fixed(xy[j]), radius, (0.0, 0.0, 255.0 * float(conf[j])), -1, cv2.LINE_AA, _SHIFT)


def _draw_face(canvas: np.ndarray, xy: np.ndarray, conf: np.ndarray, scale: float) -> None:
    radius = max(1, int(round(3 * scale))) * _ONE
    for j in range(len(xy)):
        if conf[j] <= 0.01:
            continue
        v = 255.0 * float(conf[j])
        cv2.circle(canvas, _fixed(xy[j]), radius, (v, v, v), -1, cv2.LINE_AA, _SHIFT)


class PoseMapRenderer:
    """Renders keypoint frames as DWPose-style pose maps (CPU, per frame).

    Optionally blends the pose map over a dimmed copy of the reference portrait,
    which makes a useful debug view of how the motion sits on the portrait.
    """

    name = "pose-map"
    device = "CPU"
    chunk_size = 1

    def __init__(self, size: tuple[int, int] = (512, 512), *, overlay_reference: bool = False) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.overlay_reference = overlay_reference
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
            rgb = draw_pose_map(frame.keypoints, self.size)
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
