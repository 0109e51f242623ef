"""A parametric presenter rig that poses DWPose-134 keypoints.

The rig holds a canonical face (iBUG-68 in face units), an upper body and two
hands, and turns a small set of interpretable controls (:class:`RigControls`:
jaw opening, lip shape, blink, brows, head rotation, shoulder lift, arm and hand
poses) into a keypoint frame at a given framing. Motion generators set the
controls; they never place keypoints by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from inference import keypoints as kp


def _face_template() -> np.ndarray:
    """Neutral frontal iBUG-68 face in face units: x right, y down, origin at the nose tip, width ≈ 1."""
    pts = np.zeros((68, 2), dtype=np.float64)
    for k in range(17):  # jaw, image-left (subject's right) to image-right
        t = k / 16
        s = math.sin(math.pi * t)
        pts[k] = (-0.47 * math.cos(math.pi * t) * (1 - 0.22 * s**2), -0.12 + 0.62 * s**1.3)
    for k in range(5):  # brows
        t = k / 4
        arch = 0.045 * math.sin(math.pi * t)
        pts[17 + k] = (-0.38 + 0.29 * t, -0.34 - arch)
        pts[22 + k] = (0.09 + 0.29 * t, -0.34 - 0.045 * math.sin(math.pi * (1 - t)))
    for k in range(4):  # nose bridge
        pts[27 + k] = (0.0, -0.26 + 0.087 * k)
    for k in range(5):  # nostrils
        pts[31 + k] = (-0.09 + 0.045 * k, 0.07 + 0.025 * (1 - abs(k - 2) / 2))

    def eye(cx: float, inner_on_right: bool) -> np.ndarray:
        w, h = 0.075, 0.03
        # order: outer corner, top-outer, top-inner, inner corner, bottom-inner, bottom-outer
        sgn = 1.0 if inner_on_right else -1.0
        return np.array(
            [
                (cx - sgn * w, 0.0), (cx - sgn * w * 0.35, -h), (cx + sgn * w * 0.35, -h),
                (cx + sgn * w, 0.0), (cx + sgn * w * 0.35, h * 0.8), (cx - sgn * w * 0.35, h * 0.8),
            ]
        )

    pts[36:42] = eye(-0.19, inner_on_right=True) + (0, -0.17)
    left = eye(0.19, inner_on_right=False) + (0, -0.17)
    # iBUG order for the left eye starts at its inner corner: inner, top-inner, top-outer, outer, bottom-outer, bottom-inner
    pts[42:48] = left[[3, 2, 1, 0, 5, 4]]
    # outer lips: 48 right corner, 49-53 upper lip to left corner 54, 55-59 lower lip back
    mx, my, mw = 0.0, 0.27, 0.16
    upper = [(-mw, 0.0), (-0.62 * mw, -0.035), (-0.22 * mw, -0.045), (0.0, -0.038), (0.22 * mw, -0.045), (0.62 * mw, -0.035), (mw, 0.0)]
    lower = [(0.62 * mw, 0.04), (0.22 * mw, 0.055), (0.0, 0.057), (-0.22 * mw, 0.055), (-0.62 * mw, 0.04)]
    pts[48:55] = np.array(upper) + (mx, my)
    pts[55:60] = np.array(lower) + (mx, my)
    inner_upper = [(-0.78 * mw, 0.0), (-0.3 * mw, -0.012), (0.0, -0.012), (0.3 * mw, -0.012), (0.78 * mw, 0.0)]
    inner_lower = [(0.3 * mw, 0.012), (0.0, 0.012), (-0.3 * mw, 0.012)]
    pts[60:65] = np.array(inner_upper) + (mx, my)
    pts[65:68] = np.array(inner_lower) + (mx, my)
    return pts


FACE_TEMPLATE = _face_template()
#: Face points that follow the jaw when the mouth opens, with how much (lower lip fully, chin strongly).
_JAW_WEIGHT = np.zeros(68)
for _k in range(17):
    _JAW_WEIGHT[_k] = max(0.0, math.sin(math.pi * _k / 16)) ** 2
_JAW_WEIGHT[55:60] = 1.0
_JAW_WEIGHT[65:68] = 0.95
_JAW_WEIGHT[[48, 54, 60, 64]] = 0.5


def _hand_template() -> np.ndarray:
    """A relaxed right hand, 21 points, in hand units (wrist at origin, fingers pointing up, length ≈ 1)."""
    pts = np.zeros((21, 2))
    bases = {1: (-0.22, -0.15), 5: (-0.16, -0.45), 9: (-0.03, -0.48), 13: (0.09, -0.45), 17: (0.19, -0.40)}
    dirs = {1: (-0.55, -0.55), 5: (-0.08, -1.0), 9: (0.0, -1.0), 13: (0.08, -1.0), 17: (0.18, -1.0)}
    lengths = {1: (0.18, 0.15, 0.12, 0.10), 5: (0.20, 0.12, 0.09, 0.08), 9: (0.22, 0.14, 0.10, 0.08),
               13: (0.20, 0.13, 0.09, 0.07), 17: (0.16, 0.10, 0.07, 0.06)}
    for base, start in bases.items():
        d = np.array(dirs[base]) / np.linalg.norm(dirs[base])
        p = np.array(start)
        pts[base] = p
        for j, seg in enumerate(lengths[base][1:], start=1):
            p = p + d * seg
            pts[base + j] = p
    return pts


HAND_TEMPLATE = _hand_template()


@dataclass
class RigControls:
    """Interpretable pose controls; every field has a neutral default of 0 (or the named rest value).

    Angles are radians, distances in face widths unless stated.
    """

    jaw_open: float = 0.0  # 0 closed .. 1 wide open
    lip_width: float = 0.0  # -1 rounded (OO) .. +1 spread (EE)
    lip_press: float = 0.0  # 0..1 lips pressed together (M, B, P)
    smile: float = 0.0  # 0..1 corners up
    blink: float = 0.0  # 0 open .. 1 closed
    brow_raise: float = 0.0  # -1 frown .. 1 raised
    gaze: tuple[float, float] = (0.0, 0.0)  # eye direction, -1..1 (unused by keypoints beyond eye shape)
    head_yaw: float = 0.0
    head_pitch: float = 0.0
    head_roll: float = 0.0
    head_offset: tuple[float, float] = (0.0, 0.0)  # head translation in face widths
    shoulder_lift: float = 0.0  # breathing / shrug, face widths
    torso_lean: float = 0.0  # sideways lean, radians
    #: per arm (right, left): shoulder angle from hanging (rad, + outward/forward), elbow bend (rad)
    arm_raise: tuple[float, float] = (0.0, 0.0)
    elbow_bend: tuple[float, float] = (0.0, 0.0)
    #: per hand (right, left): finger curl 0 open .. 1 fist, spread -1..1, wrist rotation (rad)
    finger_curl: tuple[float, float] = (0.3, 0.3)
    finger_spread: tuple[float, float] = (0.0, 0.0)
    wrist_angle: tuple[float, float] = (0.0, 0.0)
    #: individual finger curls added on top of ``finger_curl`` (thumb..little), per hand
    finger_extra: tuple[tuple[float, ...], tuple[float, ...]] = field(
        default_factory=lambda: ((0.0,) * 5, (0.0,) * 5)
    )


@dataclass(frozen=True)
class Framing:
    """Where the presenter sits in the normalised frame."""

    face_center: tuple[float, float]
    face_width: float

    @staticmethod
    def named(name: str) -> Framing:
        if name == "head-and-shoulders":
            return Framing(face_center=(0.5, 0.36), face_width=0.30)
        if name == "half-body":
            return Framing(face_center=(0.5, 0.26), face_width=0.19)
        raise ValueError(f"unknown framing {name!r}; use 'head-and-shoulders' or 'half-body'")


def _rotate(pts: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return pts @ np.array([[c, s], [-s, c]])


def pose_keypoints(controls: RigControls, framing: Framing) -> np.ndarray:
    """Turn rig controls into a DWPose-134 frame ``[134, 3]`` float32."""
    out = np.zeros((kp.NUM_KEYPOINTS, 3), dtype=np.float32)
    fw = framing.face_width
    fc = np.array(framing.face_center, dtype=np.float64)

    # --- face -------------------------------------------------------------------------
    face = FACE_TEMPLATE.copy()
    jaw = max(0.0, controls.jaw_open)
    face[:, 1] += _JAW_WEIGHT * jaw * 0.16
    mouth = slice(48, 68)
    mouth_center = face[mouth].mean(axis=0)
    width_scale = 1.0 + 0.18 * controls.lip_width - 0.12 * jaw
    face[mouth, 0] = mouth_center[0] + (face[mouth, 0] - mouth_center[0]) * width_scale
    press = max(0.0, min(1.0, controls.lip_press))
    face[61:64, 1] += 0.01 * press
    face[65:68, 1] -= 0.01 * press
    smile = controls.smile
    for corner in (48, 54, 60, 64):
        face[corner, 1] -= 0.03 * smile
    blink = max(0.0, min(1.0, controls.blink))
    for top, bottom in ((37, 41), (38, 40), (43, 47), (44, 46)):
        mid = 0.35 * face[top, 1] + 0.65 * face[bottom, 1]
        face[top, 1] += (mid - face[top, 1]) * blink
        face[bottom, 1] += (mid - face[bottom, 1]) * blink
    face[17:27, 1] -= 0.05 * controls.brow_raise
    # head rotation: yaw squashes x and shifts the nose, pitch moves features vertically, roll rotates
    depth = np.where(np.arange(68) < 17, -0.15, 0.1)
    depth[27:36] = 0.25
    face[:, 0] = face[:, 0] * math.cos(controls.head_yaw) + depth * math.sin(controls.head_yaw)
    face[:, 1] = face[:, 1] * math.cos(controls.head_pitch) + depth * math.sin(controls.head_pitch)
    neck_pivot = np.array([0.0, 0.9])
    face = _rotate(face - neck_pivot, controls.head_roll) + neck_pivot
    face += np.array(controls.head_offset)
    face_xy = fc + face * fw
    out[kp.FACE, :2] = face_xy
    out[kp.FACE, 2] = 0.95

    # --- body ---------------------------------------------------------------------------
    body = out[kp.BODY]
    body[kp.NOSE, :2] = face_xy[30]
    body[kp.R_EYE, :2] = face_xy[36:42].mean(axis=0)
    body[kp.L_EYE, :2] = face_xy[42:48].mean(axis=0)
    body[kp.R_EAR, :2] = face_xy[1] + np.array([-0.03, -0.02]) * fw
    body[kp.L_EAR, :2] = face_xy[15] + np.array([0.03, -0.02]) * fw
    neck = fc + np.array([0.0, 1.25]) * fw + np.array(controls.head_offset) * fw * 0.3
    shoulder_half = 1.05 * fw
    lift = controls.shoulder_lift * fw
    lean = controls.torso_lean
    r_sh = neck + _rotate(np.array([[-shoulder_half, 0.18 * fw]]), lean)[0] - (0, lift)
    l_sh = neck + _rotate(np.array([[shoulder_half, 0.18 * fw]]), lean)[0] - (0, lift)
    body[kp.NECK, :2] = neck
    body[kp.R_SHOULDER, :2] = r_sh
    body[kp.L_SHOULDER, :2] = l_sh
    hip_y = neck[1] + 3.3 * fw
    body[kp.R_HIP, :2] = (neck[0] - 0.75 * fw, hip_y)
    body[kp.L_HIP, :2] = (neck[0] + 0.75 * fw, hip_y)
    upper_arm, forearm = 1.45 * fw, 1.3 * fw
    hands = []
    for side, (sh, e_i, w_i) in enumerate(((r_sh, kp.R_ELBOW, kp.R_WRIST), (l_sh, kp.L_ELBOW, kp.L_WRIST))):
        outward = -1.0 if side == 0 else 1.0
        a = controls.arm_raise[side]
        upper_dir = np.array([outward * math.sin(0.12 + a * 0.5), math.cos(0.12 + a * 0.5)])
        elbow = sh + upper_dir * upper_arm
        bend = controls.elbow_bend[side]
        # the forearm swings in front of the body: towards the midline and upward as the elbow bends
        fore_angle = 0.12 + a * 0.5 + bend
        fore_dir = np.array([-outward * math.sin(fore_angle - 0.12) * 0.85 + outward * 0.1, math.cos(fore_angle)])
        fore_dir /= np.linalg.norm(fore_dir)
        wrist = elbow + fore_dir * forearm
        body[e_i, :2] = elbow
        body[w_i, :2] = wrist
        hands.append((wrist, fore_dir, side))
    body[:, 2] = 0.95
    out[kp.UNDRIVEN, 2] = 0.0

    # --- hands --------------------------------------------------------------------------
    for wrist, fore_dir, side in hands:
        pts = _pose_hand(controls, side)
        angle = math.atan2(fore_dir[0], -fore_dir[1]) + controls.wrist_angle[side]
        if side == 1:
            pts[:, 0] *= -1  # the left hand is the mirror image
        pts = _rotate(pts, -angle) * (0.85 * fw)
        block = kp.RIGHT_HAND if side == 0 else kp.LEFT_HAND
        out[block, :2] = wrist + pts
        out[block, 2] = 0.9

    inside = (out[:, 0] >= -0.02) & (out[:, 0] <= 1.02) & (out[:, 1] >= -0.02) & (out[:, 1] <= 1.02)
    out[~inside, 2] = 0.0
    return out


def _pose_hand(controls: RigControls, side: int) -> np.ndarray:
    pts = HAND_TEMPLATE.copy()
    curl_base = controls.finger_curl[side]
    spread = controls.finger_spread[side]
    extra = controls.finger_extra[side]
    for f, base in enumerate((1, 5, 9, 13, 17)):
        curl = max(0.0, min(1.0, curl_base + extra[f]))
        splay = (f - 2) * 0.08 * spread
        root = pts[base].copy()
        seg_lengths = np.linalg.norm(np.diff(pts[base : base + 4], axis=0), axis=1)
        direction = math.atan2(pts[base + 1, 0] - root[0], -(pts[base + 1, 1] - root[1])) + splay
        p = root
        bend_per_joint = curl * (1.1 if f else 0.6)
        for j, seg in enumerate(seg_lengths, start=1):
            direction += bend_per_joint * (1 if f == 0 else -1) * 0.9
            # curling folds the finger towards the palm (foreshortened in 2-D)
            fore = math.cos(bend_per_joint * j * 0.5)
            p = p + np.array([math.sin(direction), -math.cos(direction)]) * seg * max(0.25, fore)
            pts[base + j] = p
    return pts
