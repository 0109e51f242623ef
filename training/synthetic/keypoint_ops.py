"""Geometric edits of DWPose-134 keypoints shared by proportions and pose perturbations.

Every function works on arrays ``[..., 134, 3]`` (any number of leading frame
axes), float32 or float64, x and y normalised to the frame, and returns a new
array; inputs are never modified.
"""

from __future__ import annotations

import numpy as np

from inference import keypoints as kp
from inference.motion.rig import BODY_CONFIDENCE, FACE_CONFIDENCE, HAND_CONFIDENCE

#: Points outside this range of normalised coordinates are invisible (DWPose convention).
VISIBLE_RANGE = (-0.02, 1.02)

#: Body points that belong to the head (they move with the face).
HEAD_BODY_POINTS = np.array([kp.NOSE, kp.R_EYE, kp.L_EYE, kp.R_EAR, kp.L_EAR], dtype=np.int64)
#: Every point that moves with the head: the 68 face points and the head's body points.
HEAD_POINTS = np.concatenate([np.arange(kp.FACE.start, kp.FACE.stop), HEAD_BODY_POINTS])

_GROUPS = (
    np.setdiff1d(np.arange(kp.BODY.start, kp.BODY.stop), kp.UNDRIVEN),
    np.arange(kp.FACE.start, kp.FACE.stop),
    np.arange(kp.LEFT_HAND.start, kp.LEFT_HAND.stop),
    np.arange(kp.RIGHT_HAND.start, kp.RIGHT_HAND.stop),
)
_GROUP_CONFIDENCE = (BODY_CONFIDENCE, FACE_CONFIDENCE, HAND_CONFIDENCE, HAND_CONFIDENCE)


def nominal_confidence(keypoints: np.ndarray) -> np.ndarray:
    """The confidence each point carries when it is in frame: ``[134]`` float32.

    For each group (driven body, face, left hand, right hand) this is the highest
    confidence the group shows anywhere in ``keypoints`` ``[..., 134, 3]``, or, for a
    group never in frame there (the hands of a head-and-shoulders stream), the motion
    rig's confidence for it: a hand that a perturbation or the camera brings into the
    frame is drawn, so its pose must show it. Undriven points (legs, feet) get 0.
    """
    conf = np.asarray(keypoints)[..., 2].reshape(-1, kp.NUM_KEYPOINTS)
    out = np.zeros(kp.NUM_KEYPOINTS, dtype=np.float32)
    for group, default in zip(_GROUPS, _GROUP_CONFIDENCE, strict=True):
        seen = conf[:, group].max() if conf.size else 0.0
        out[group] = seen if seen > 0 else default
    return out


def refresh_visibility(keypoints: np.ndarray, nominal: np.ndarray) -> np.ndarray:
    """Set each point's confidence to ``nominal`` ``[134]`` inside the frame and to 0 outside it."""
    out = np.array(keypoints, copy=True)
    xy = out[..., :2]
    inside = ((xy >= VISIBLE_RANGE[0]) & (xy <= VISIBLE_RANGE[1])).all(axis=-1)
    out[..., 2] = np.where(inside, np.asarray(nominal, dtype=out.dtype), 0.0)
    return out


def face_axes(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: the face's unit right axis (jaw point 0 → 16), unit down axis, and its width.

    Returns arrays ``[..., 2]``, ``[..., 2]`` and ``[...]`` (width in normalised units).
    """
    xy = np.asarray(keypoints)[..., :2]
    span = xy[..., kp.face_index(16), :] - xy[..., kp.face_index(0), :]
    width = np.maximum(np.linalg.norm(span, axis=-1), 1e-6)
    right = span / width[..., None]
    down = np.stack([-right[..., 1], right[..., 0]], axis=-1)
    return right, down, width


def scale_along(points: np.ndarray, centre: np.ndarray, axis: np.ndarray, factor: np.ndarray | float) -> np.ndarray:
    """Scale ``points`` ``[..., n, 2]`` about ``centre`` ``[..., 2]`` along unit ``axis`` ``[..., 2]`` only."""
    rel = points - centre[..., None, :]
    along = (rel * axis[..., None, :]).sum(axis=-1, keepdims=True)
    f = np.asarray(factor)[..., None, None] if np.ndim(factor) else factor
    return points + (f - 1.0) * along * axis[..., None, :]


def rotate_about(points: np.ndarray, centre: np.ndarray, angle: np.ndarray | float) -> np.ndarray:
    """Rotate ``points`` ``[..., n, 2]`` about ``centre`` ``[..., 2]`` by ``angle`` (radians, image coordinates)."""
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a)[..., None], np.sin(a)[..., None]
    rel = points - centre[..., None, :]
    x, y = rel[..., 0], rel[..., 1]
    return np.stack([c * x - s * y, s * x + c * y], axis=-1) + centre[..., None, :]
