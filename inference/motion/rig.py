"""A parametric presenter rig that poses DWPose-134 keypoints.

The rig holds a canonical 3-D face (iBUG-68, with depth), an upper body with
two-bone arms and two 21-point hands, and turns interpretable controls
(:class:`RigControls`: jaw, lip shape, blink, brows, head rotation, torso,
wrist targets, palm turn, finger shapes) into one keypoint frame for a
:class:`Framing`. Motion generators set the controls; they never place
keypoints by hand.

Units and axes. The face lives in *face widths* (the distance between iBUG jaw
points 0 and 16), origin at the nose tip, x to the image right, y down, z
towards the camera. The body uses the same unit, origin at the neck keypoint
(the midpoint of the shoulders). Arm targets are given *per side* in
``(out, down, forward)`` coordinates, ``out`` pointing away from the midline,
so one gesture description serves both arms (the right arm is the mirror image).

Keypoints whose position falls outside the frame get confidence 0 but keep
their true position (clamped to -1..2), so a renderer can still draw a limb
that leaves the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from inference import keypoints as kp
from inference.motion.hand_shapes import HAND_SHAPES, HandShape, hand_points

# --- face ------------------------------------------------------------------------------------------
#: Right half of the jaw line (points 0..8, subject's right = image left) and its depth; 9..16 mirror it.
_JAW_HALF = [(-0.500, -0.300, -0.62), (-0.494, -0.160, -0.56), (-0.478, -0.025, -0.50), (-0.452, 0.110, -0.42),
             (-0.408, 0.240, -0.33), (-0.342, 0.355, -0.23), (-0.258, 0.455, -0.14), (-0.140, 0.530, -0.07),
             (0.000, 0.560, -0.04)]
_RIGHT_BROW = [(-0.400, -0.410, -0.34), (-0.330, -0.460, -0.26), (-0.250, -0.475, -0.21), (-0.165, -0.465, -0.18),
               (-0.085, -0.440, -0.17)]
_NOSE_BRIDGE = [(0.0, -0.36, -0.20), (0.0, -0.24, -0.13), (0.0, -0.12, -0.06), (0.0, 0.0, 0.0)]
_NOSTRILS = [(-0.105, 0.045, -0.13), (-0.052, 0.065, -0.08), (0.0, 0.075, -0.06), (0.052, 0.065, -0.08),
             (0.105, 0.045, -0.13)]
#: Right eye: outer corner, top-outer, top-inner, inner corner, bottom-inner, bottom-outer.
_RIGHT_EYE = [(-0.315, -0.308, -0.30), (-0.255, -0.348, -0.25), (-0.175, -0.350, -0.24), (-0.115, -0.315, -0.25),
              (-0.175, -0.288, -0.25), (-0.255, -0.286, -0.26)]
#: Outer lips 48..59: right corner, upper lip to the left corner (54), lower lip back.
_OUTER_LIPS = [(-0.180, 0.235, -0.18), (-0.115, 0.190, -0.11), (-0.045, 0.170, -0.07), (0.0, 0.178, -0.06),
               (0.045, 0.170, -0.07), (0.115, 0.190, -0.11), (0.180, 0.235, -0.18), (0.115, 0.282, -0.11),
               (0.050, 0.307, -0.08), (0.0, 0.312, -0.07), (-0.050, 0.307, -0.08), (-0.115, 0.282, -0.11)]
#: Inner lips 60..67: right corner, upper inner lip, left corner, lower inner lip back.
_INNER_LIPS = [(-0.155, 0.235, -0.16), (-0.060, 0.232, -0.09), (0.0, 0.234, -0.08), (0.060, 0.232, -0.09),
               (0.155, 0.235, -0.16), (0.060, 0.238, -0.09), (0.0, 0.240, -0.08), (-0.060, 0.238, -0.09)]


def _mirror(points: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    return [(-x, y, z) for x, y, z in points]


def _face_template() -> np.ndarray:
    """Neutral frontal iBUG-68 face ``[68, 3]`` in face widths (x right, y down, z to camera, nose tip at 0)."""
    jaw = _JAW_HALF + _mirror(_JAW_HALF[:8])[::-1]
    right_eye = _RIGHT_EYE
    # the left eye starts at its inner corner: inner, top-inner, top-outer, outer, bottom-outer, bottom-inner
    left_eye = _mirror([right_eye[i] for i in (3, 2, 1, 0, 5, 4)])
    pts = jaw + _RIGHT_BROW + _mirror(_RIGHT_BROW)[::-1] + _NOSE_BRIDGE + _NOSTRILS + right_eye + left_eye
    pts += _OUTER_LIPS + _INNER_LIPS
    return np.array(pts, dtype=np.float64)


FACE_TEMPLATE = _face_template()
#: Where the head turns, in face coordinates (between the ears, below the eyes).
HEAD_PIVOT = np.array([0.0, 0.15, -0.75])
#: Ear positions (body keypoints 16, 17) in face coordinates.
_EARS = np.array([(-0.53, -0.20, -0.62), (0.53, -0.20, -0.62)])


def _jaw_weights() -> np.ndarray:
    """How much each face point follows the jaw as the mouth opens (0 fixed .. 1 moves with the chin)."""
    w = np.zeros(68)
    hinge, chin = -0.15, FACE_TEMPLATE[8, 1]
    for k in range(17):
        t = min(1.0, max(0.0, (FACE_TEMPLATE[k, 1] - hinge) / (chin - hinge)))
        w[k] = t * t * (3 - 2 * t)
    w[55:60] = 0.96
    w[65:68] = 0.92
    w[[48, 54, 60, 64]] = 0.45
    w[[49, 53, 59, 55]] = np.array([0.06, 0.06, 0.9, 0.9])
    return w


_JAW_WEIGHT = _jaw_weights()
_MOUTH = slice(48, 68)
_CORNERS = [48, 54, 60, 64]

# --- body ------------------------------------------------------------------------------------------
#: Nose tip relative to the neck keypoint, face widths.
NOSE_ABOVE_NECK = 1.08
SHOULDER_HALF_WIDTH = 1.25
HIP_HALF_WIDTH = 0.8
HIP_BELOW_NECK = 3.4
UPPER_ARM = 2.0
FOREARM = 1.75
#: Camera distance in face widths, for the mild perspective of hands that come forward.
_CAMERA_DISTANCE = 12.0

#: The confidence of an in-frame point, by part (what a tracker reports for a clearly visible face, body, hand).
FACE_CONFIDENCE = 0.95
BODY_CONFIDENCE = 0.95
HAND_CONFIDENCE = 0.9


@dataclass
class ArmControls:
    """One arm as joint angles (radians), the same for both sides (the right arm mirrors the left).

    Attributes:
        spread: shoulder abduction, 0 (upper arm hangs) .. 1.2 (out to the side).
        lift: shoulder flexion, -0.3 (elbow back) .. 1.3 (upper arm raised forward).
        twist: humeral rotation, -0.6 (forearm swings outwards) .. 1.2 (forearm swings across the body).
        elbow: elbow flexion, 0 (straight) .. 2.4 (fully bent).
        palm_turn: -1 (palm up) .. 0 (palm faces the midline) .. 1 (palm down).
        wrist_flex: + bends the hand towards the palm, - back, -1.2 .. 1.2.
        shape: finger pose (see :data:`inference.motion.hand_shapes.HAND_SHAPES`).
    """

    spread: float = 0.10
    lift: float = -0.13
    twist: float = 0.31
    elbow: float = 1.57
    palm_turn: float = 0.45
    wrist_flex: float = 0.35
    shape: HandShape = field(default_factory=lambda: HAND_SHAPES["rest"])


@dataclass
class RigControls:
    """Interpretable pose controls; the defaults are a neutral, resting presenter.

    Angles are radians, distances face widths, other values have the ranges given.
    """

    jaw_open: float = 0.0  # 0 closed .. 1 wide open
    lip_width: float = 0.0  # -1 narrow (rounded) .. +1 spread (EE)
    lip_round: float = 0.0  # 0 .. 1 pursed, protruded (OO, W)
    lip_press: float = 0.0  # 0 .. 1 lips pressed together (M, B, P)
    lip_tuck: float = 0.0  # 0 .. 1 lower lip under the upper teeth (F, V)
    smile: float = 0.0  # 0 .. 1 corners up and out
    blink: float = 0.0  # 0 open .. 1 closed
    brow_raise: float = 0.0  # -1 lowered .. 1 raised
    brow_frown: float = 0.0  # 0 .. 1 inner brows down and together
    gaze: tuple[float, float] = (0.0, 0.0)  # eye direction, -1..1 (x right, y down)
    head_yaw: float = 0.0  # + turns the face to the image right
    head_pitch: float = 0.0  # + nods down
    head_roll: float = 0.0  # + tilts the top of the head to the image right
    head_offset: tuple[float, float] = (0.0, 0.0)  # head translation relative to the body
    shoulder_lift: float = 0.0  # breathing / shrug, face widths up
    torso_lean: float = 0.0  # sideways lean about the hips, radians (+ to the image right)
    torso_twist: float = 0.0  # rotation about the vertical axis, radians (+ the left shoulder comes forward)
    body_offset: tuple[float, float] = (0.0, 0.0)  # whole-body translation (weight shifts), face widths
    #: right arm, left arm (the subject's own sides: the right arm is on the image's left)
    arms: tuple[ArmControls, ArmControls] = field(default_factory=lambda: (ArmControls(), ArmControls()))


@dataclass(frozen=True)
class Framing:
    """Where the presenter sits in the normalised frame.

    Attributes:
        face_center: the nose tip of the neutral pose, normalised (x, y).
        face_width: one face width as a fraction of the frame width (and height: frames are drawn square).
    """

    face_center: tuple[float, float]
    face_width: float

    @staticmethod
    def named(name: str) -> Framing:
        """The framing called ``name``: "head-and-shoulders" or "half-body"."""
        if name == "head-and-shoulders":
            return Framing(face_center=(0.5, 0.42), face_width=0.28)
        if name == "half-body":
            return Framing(face_center=(0.5, 0.22), face_width=0.16)
        raise ValueError(f"unknown framing {name!r}; use 'head-and-shoulders' or 'half-body'")

    @property
    def neck(self) -> tuple[float, float]:
        """The neck keypoint of the neutral pose, normalised."""
        return self.face_center[0], self.face_center[1] + NOSE_ABOVE_NECK * self.face_width


def _clip(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else float(v)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (np.cross is slow for single vectors)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """3x3 rotation (applied to row vectors as ``p @ R.T``): roll ∘ pitch ∘ yaw, in image axes (y down)."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])  # + moves the nose (z>0) to +x
    r_pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])  # + moves the nose down
    r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])  # + moves the top of the head to +x
    return r_roll @ r_pitch @ r_yaw


def posed_face(c: RigControls) -> np.ndarray:
    """The 68 face points after expression (jaw, lips, eyes, brows), before head rotation; ``[68, 3]``."""
    face = FACE_TEMPLATE.copy()
    jaw = _clip(c.jaw_open, 0.0, 1.0)
    press = _clip(c.lip_press, 0.0, 1.0)
    tuck = _clip(c.lip_tuck, 0.0, 1.0)
    rnd = _clip(c.lip_round, 0.0, 1.0)
    width = _clip(c.lip_width, -1.0, 1.0)
    smile = _clip(c.smile, 0.0, 1.0)

    # lip shape first (in the closed-mouth frame), then the jaw carries the lower lip down
    mouth = face[_MOUTH]
    rel = mouth[:, 0] / 0.18  # -1 at the right corner .. 1 at the left corner
    mouth[:, 0] += 0.05 * width * rel + 0.025 * smile * rel
    mouth[:, 0] *= 1.0 - 0.32 * rnd
    mouth[12:, 0] *= 1.0 - 0.25 * rnd  # the inner opening narrows further into an O
    mouth[:, 2] += 0.06 * rnd
    # pursed lips bulge: upper lip up, lower lip down a little
    mouth[1:6, 1] -= 0.012 * rnd
    mouth[7:12, 1] += 0.012 * rnd
    for corner in (0, 6, 12, 16):
        mouth[corner, 1] -= 0.03 * smile + 0.008 * width
    # pressed lips roll inwards and look thinner
    mouth[1:6, 1] += 0.014 * press
    mouth[7:12, 1] -= 0.014 * press
    # F/V: the lower lip rises under the upper teeth, the upper lip lifts a little
    mouth[1:6, 1] -= 0.012 * tuck
    mouth[7:12, 1] -= 0.03 * tuck
    face[_MOUTH] = mouth

    drop = 0.21 * jaw * (1.0 - 0.85 * tuck)
    face[:, 1] += _JAW_WEIGHT * drop
    face[:, 2] -= _JAW_WEIGHT * drop * 0.3
    face[_CORNERS, 0] *= 1.0 - 0.12 * jaw  # the corners come in as the jaw drops
    # inner lips: the gap between them is the mouth opening; pressing or tucking closes it
    seal = max(press, tuck)
    for upper, lower in ((61, 67), (62, 66), (63, 65)):
        mid = 0.5 * (face[upper, 1] + face[lower, 1])
        face[upper, 1] += (mid - face[upper, 1]) * seal
        face[lower, 1] += (mid - face[lower, 1]) * seal

    blink = _clip(c.blink, 0.0, 1.0)
    for top, bottom in ((37, 41), (38, 40), (43, 47), (44, 46)):
        closed = face[bottom, 1] - 0.008
        face[top, 1] += (closed - face[top, 1]) * blink
        face[bottom, 1] -= 0.006 * blink
    raise_ = _clip(c.brow_raise, -1.0, 1.0)
    frown = _clip(c.brow_frown, 0.0, 1.0)
    face[17:27, 1] -= 0.05 * raise_
    face[[19, 20, 21, 22, 23, 24], 1] -= 0.012 * max(0.0, raise_)  # a raised brow arches
    for inner, sign in ((20, 1), (21, 1), (22, -1), (23, -1)):
        face[inner, 1] += 0.03 * frown * (1.0 if inner in (21, 22) else 0.6)
        face[inner, 0] += sign * 0.018 * frown
    return face


def _torso_transform(c: RigControls) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation of the torso (lean about the hips, twist about the spine, weight shift)."""
    lean, twist = _clip(c.torso_lean, -0.3, 0.3), _clip(c.torso_twist, -0.4, 0.4)
    cl, sl = math.cos(lean), math.sin(lean)
    ct, st = math.cos(twist), math.sin(twist)
    r_lean = np.array([[cl, -sl, 0], [sl, cl, 0], [0, 0, 1]])
    r_twist = np.array([[ct, 0, st], [0, 1, 0], [-st, 0, ct]])
    rot = r_lean @ r_twist
    hips = np.array([0.0, HIP_BELOW_NECK, 0.0])
    offset = hips - rot @ hips + np.array([c.body_offset[0], c.body_offset[1], 0.0])
    return rot, offset


#: Joint limits of :class:`ArmControls` (radians).
ARM_LIMITS = {"spread": (0.0, 1.2), "lift": (-0.3, 1.3), "twist": (-0.6, 1.2), "elbow": (0.0, 2.4)}


def arm_chain(arm: ArmControls, shoulder: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward kinematics of one arm in side coordinates (out, down, forward), face widths.

    Returns:
        elbow ``[3]``, wrist ``[3]`` and the hand frame ``[3, 3]`` (rows u, v, w; see
        :mod:`inference.motion.hand_shapes`).
    """
    spread = _clip(arm.spread, *ARM_LIMITS["spread"])
    lift = _clip(arm.lift, *ARM_LIMITS["lift"])
    twist = _clip(arm.twist, *ARM_LIMITS["twist"])
    bend = _clip(arm.elbow, *ARM_LIMITS["elbow"])
    upper = np.array([math.sin(spread), math.cos(spread) * math.cos(lift), math.cos(spread) * math.sin(lift)])
    upper /= np.linalg.norm(upper)
    forward = np.array([0.0, 0.0, 1.0]) if abs(upper[2]) < 0.95 else np.array([0.0, -1.0, 0.0])
    b0 = forward - upper * float(forward @ upper)
    b0 /= np.linalg.norm(b0)
    out_axis = _cross(upper, b0)
    bend_dir = b0 * math.cos(twist) - out_axis * math.sin(twist)  # internal rotation swings it to the midline
    axis = _cross(upper, bend_dir)
    fore = math.cos(bend) * upper + math.sin(bend) * bend_dir
    elbow = shoulder + UPPER_ARM * upper
    wrist = elbow + FOREARM * fore
    n0 = -axis  # palm towards the midline when the forearm is not turned
    theta = -_clip(arm.palm_turn, -1.2, 1.2) * math.pi / 2
    palm = n0 * math.cos(theta) + _cross(fore, n0) * math.sin(theta)
    phi = _clip(arm.wrist_flex, -1.2, 1.2)
    v = math.cos(phi) * fore + math.sin(phi) * palm
    w = math.cos(phi) * palm - math.sin(phi) * fore
    return elbow, wrist, np.stack([_cross(v, w), v, w])


def pose_keypoints(controls: RigControls, framing: Framing) -> np.ndarray:
    """Turn rig controls into a DWPose-134 frame: float32 ``[134, 3]`` (x, y normalised, confidence)."""
    c = controls
    out = np.zeros((kp.NUM_KEYPOINTS, 3), dtype=np.float32)
    fw = framing.face_width
    neck_xy = np.array(framing.neck, dtype=np.float64)
    rot, offset = _torso_transform(c)

    def to_frame(p: np.ndarray) -> np.ndarray:
        """Body coordinates [n, 3] → normalised frame xy [n, 2], with mild perspective for depth."""
        q = p @ rot.T + offset
        scale = _CAMERA_DISTANCE / (_CAMERA_DISTANCE - np.clip(q[:, 2:3], -3.0, 6.0))
        return neck_xy + q[:, :2] * scale * fw

    # --- face and head ------------------------------------------------------------------------------
    face = posed_face(c)
    head_rot = _rotation(_clip(c.head_yaw, -0.8, 0.8), _clip(c.head_pitch, -0.6, 0.6), _clip(c.head_roll, -0.5, 0.5))
    face = (face - HEAD_PIVOT) @ head_rot.T + HEAD_PIVOT
    ears = (_EARS - HEAD_PIVOT) @ head_rot.T + HEAD_PIVOT
    neck_top = (np.array([[0.0, 0.0, 0.0]]) @ rot.T + offset)[0]
    head_origin = neck_xy + (neck_top[:2] + np.array([0.0, -NOSE_ABOVE_NECK]) + np.array(c.head_offset)) * fw
    face_xy = head_origin + face[:, :2] * fw
    out[kp.FACE, :2] = face_xy
    out[kp.FACE, 2] = FACE_CONFIDENCE

    body = out[kp.BODY]
    body[kp.NOSE, :2] = face_xy[30]
    gaze = np.array([_clip(c.gaze[0], -1, 1) * 0.03, _clip(c.gaze[1], -1, 1) * 0.015]) * fw
    body[kp.R_EYE, :2] = face_xy[36:42].mean(axis=0) + gaze
    body[kp.L_EYE, :2] = face_xy[42:48].mean(axis=0) + gaze
    body[kp.R_EAR, :2] = head_origin + ears[0, :2] * fw
    body[kp.L_EAR, :2] = head_origin + ears[1, :2] * fw

    # --- torso and arms -----------------------------------------------------------------------------
    lift = _clip(c.shoulder_lift, -0.3, 0.5)
    torso = np.array([
        [0.0, -lift, 0.0],
        [-SHOULDER_HALF_WIDTH, -lift, 0.0],
        [SHOULDER_HALF_WIDTH, -lift, 0.0],
        [-HIP_HALF_WIDTH, HIP_BELOW_NECK, 0.0],
        [HIP_HALF_WIDTH, HIP_BELOW_NECK, 0.0],
    ])
    torso_xy = to_frame(torso)
    body[kp.NECK, :2] = torso_xy[0]
    body[kp.R_SHOULDER, :2] = torso_xy[1]
    body[kp.L_SHOULDER, :2] = torso_xy[2]
    body[kp.R_HIP, :2] = torso_xy[3]
    body[kp.L_HIP, :2] = torso_xy[4]

    for side, arm in enumerate(c.arms):
        mirror = -1.0 if side == 0 else 1.0  # side coordinates are the left arm's; the right arm mirrors x
        shoulder = np.array([SHOULDER_HALF_WIDTH, -lift, 0.0])
        elbow, wrist, frame = arm_chain(arm, shoulder)
        hand = wrist + hand_points(arm.shape) @ frame
        chain = np.vstack([elbow, wrist, hand])
        chain[:, 0] *= mirror
        xy = to_frame(chain)
        e_i, w_i = (kp.R_ELBOW, kp.R_WRIST) if side == 0 else (kp.L_ELBOW, kp.L_WRIST)
        body[e_i, :2] = xy[0]
        body[w_i, :2] = xy[1]
        block = kp.RIGHT_HAND if side == 0 else kp.LEFT_HAND
        out[block, :2] = xy[2:]
        out[block, 2] = HAND_CONFIDENCE
    body[:, 2] = BODY_CONFIDENCE
    out[kp.UNDRIVEN, :] = 0.0

    inside = (out[:, 0] >= 0.0) & (out[:, 0] <= 1.0) & (out[:, 1] >= 0.0) & (out[:, 1] <= 1.0)
    out[~inside, 2] = 0.0
    np.clip(out[:, :2], -1.0, 2.0, out=out[:, :2])
    return out
