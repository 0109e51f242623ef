"""Give keypoints a person's own proportions (face shape, eye size, shoulder span, ...).

The motion stage produces one body for everybody; real people differ. Applying an
identity's :class:`~training.synthetic.identity.Proportions` to a keypoint stream
before drawing makes both the picture and its keypoints that person's, so the
training pairs stay exact.
"""

from __future__ import annotations

import numpy as np

from inference import keypoints as kp
from training.synthetic.identity import Proportions
from training.synthetic.keypoint_ops import (
    HEAD_BODY_POINTS,
    face_axes,
    nominal_confidence,
    refresh_visibility,
    scale_along,
)

_F = kp.FACE.start
_NOSE_TIP = _F + 30
_JAW = np.arange(_F, _F + 17)
#: How strongly each jaw point moves out for a square jaw (the jaw corners most, chin and temples not).
_JAW_SQUARE_PROFILE = np.array([0, 0.1, 0.3, 0.6, 0.9, 1.0, 0.85, 0.4, 0, 0.4, 0.85, 1.0, 0.9, 0.6, 0.3, 0.1, 0])
_RIGHT_EYE = np.arange(_F + 36, _F + 42)
_LEFT_EYE = np.arange(_F + 42, _F + 48)
_LIPS = np.arange(_F + 48, _F + 68)
_LOWER_NOSE = np.arange(_F + 31, _F + 36)
_ARMS = ((kp.R_SHOULDER, kp.R_ELBOW, kp.R_WRIST, kp.RIGHT_HAND), (kp.L_SHOULDER, kp.L_ELBOW, kp.L_WRIST, kp.LEFT_HAND))


def apply_proportions(keypoints: np.ndarray, proportions: Proportions) -> np.ndarray:
    """``keypoints`` ``[..., 134, 3]`` reshaped to ``proportions``; confidences follow the frame edges.

    Returns a float32 array of the same shape.
    """
    src = np.asarray(keypoints, dtype=np.float64)
    nominal = nominal_confidence(src)
    out = src.copy()
    xy = out[..., :2]
    p = proportions
    right, down, width = face_axes(src)

    # face size about the nose tip (the head's body points move with it)
    head = np.concatenate([np.arange(kp.FACE.start, kp.FACE.stop), HEAD_BODY_POINTS])
    tip = src[..., _NOSE_TIP, :2]
    pts = scale_along(xy[..., head, :], tip, right, p.face_width)
    xy[..., head, :] = scale_along(pts, tip, down, p.face_height)
    width = width * p.face_width

    # square jaw: the jaw corners move outward from the face's midline
    rel = ((xy[..., _JAW, :] - tip[..., None, :]) * right[..., None, :]).sum(-1)
    push = np.sign(rel) * p.jaw_square * 0.06 * width[..., None] * _JAW_SQUARE_PROFILE
    xy[..., _JAW, :] += push[..., None] * right[..., None, :]

    # eyes: size about each eye's centre, spacing along the face's right axis
    for eye, side in ((_RIGHT_EYE, -1.0), (_LEFT_EYE, 1.0)):
        centre = xy[..., eye, :].mean(axis=-2)
        xy[..., eye, :] = centre[..., None, :] + (xy[..., eye, :] - centre[..., None, :]) * p.eye_scale
        xy[..., eye, :] += (side * p.eye_spacing * width)[..., None, None] * right[..., None, :]
    xy[..., kp.R_EYE, :] = xy[..., _RIGHT_EYE, :].mean(axis=-2)
    xy[..., kp.L_EYE, :] = xy[..., _LEFT_EYE, :].mean(axis=-2)

    # mouth width and nose length
    xy[..., _LIPS, :] = scale_along(xy[..., _LIPS, :], xy[..., _LIPS, :].mean(axis=-2), right, p.mouth_width)
    shift = (p.nose_length * width)[..., None] * down
    xy[..., _LOWER_NOSE, :] += shift[..., None, :]
    xy[..., _NOSE_TIP, :] += 0.5 * shift
    xy[..., kp.NOSE, :] = xy[..., _NOSE_TIP, :]

    # shoulders about the neck; each arm chain follows its shoulder, then arm length and hand size
    neck = xy[..., kp.NECK, :].copy()
    for shoulder, elbow, wrist, hand in _ARMS:
        hand_idx = np.arange(hand.start, hand.stop)
        old_sh, old_el, old_wr = xy[..., shoulder, :].copy(), xy[..., elbow, :].copy(), xy[..., wrist, :].copy()
        new_sh = neck + (old_sh - neck) * p.shoulder_width
        new_el = new_sh + (old_el - old_sh) * p.arm_length
        new_wr = new_el + (old_wr - old_el) * p.arm_length
        hand_root = xy[..., hand.start, :].copy()
        xy[..., hand_idx, :] = new_wr[..., None, :] + (hand_root - old_wr)[..., None, :] + (
            xy[..., hand_idx, :] - hand_root[..., None, :]) * p.hand_size
        xy[..., shoulder, :], xy[..., elbow, :], xy[..., wrist, :] = new_sh, new_el, new_wr
    for hip in (kp.R_HIP, kp.L_HIP):
        xy[..., hip, 0] = neck[..., 0] + (xy[..., hip, 0] - neck[..., 0]) * p.shoulder_width
    return refresh_visibility(out, nominal).astype(np.float32)
