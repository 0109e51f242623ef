"""Pose-space perturbations of keypoint streams: head turns, arm gestures, finger poses, mouth shapes.

The motion stage moves lips, lids and head as speech drives them, but it
visits only part of the pose space. :func:`perturb_stream` adds smooth, random,
time-varying changes on top of a stream, in keypoint space (DWPose-134 only, no
rig internals), so the renderer sees every head angle, arm raise and finger
pose the student may meet:

* head: yaw, pitch and roll about a pivot behind the jaw (face points lifted to
  3-D with a generic depth per iBUG point);
* arms: gestures that swing the upper arm out and raise the forearm across the
  body, with the hand carried along;
* hands: finger curl and spread, wrist bend and roll (palm, edge or back of the
  hand to the camera);
* mouth and brows: extra jaw opening, smiles, lip width, brow raises;
* camera: a per-clip zoom and shift (:func:`apply_camera`).

All changes follow keyframe tracks eased with smoothstep, so motion stays smooth
between frames. Everything is deterministic from the ``numpy`` generator given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from inference import keypoints as kp
from training.synthetic.keypoint_ops import (
    HEAD_POINTS,
    face_axes,
    nominal_confidence,
    refresh_visibility,
    rotate_about,
)

_F = kp.FACE.start


def _face_depth() -> np.ndarray:
    """Generic depth (towards the camera, face widths) of each head point relative to the nose tip."""
    d = np.zeros(68)
    d[0:17] = -0.62 + 0.4 * np.sin(np.pi * np.arange(17) / 16)
    d[17:27] = -0.22
    d[[17, 26]] = -0.3
    d[27:31] = (-0.2, -0.13, -0.06, 0.0)
    d[31:36] = (-0.13, -0.08, -0.06, -0.08, -0.13)
    d[36:48] = -0.26
    d[48:60] = -0.08
    d[[48, 54]] = -0.16
    d[60:68] = -0.09
    d[[60, 64]] = -0.12
    body = np.array([0.0, -0.26, -0.26, -0.62, -0.62])  # nose, eyes, ears (order of HEAD_BODY_POINTS)
    return np.concatenate([d, body])


_HEAD_DEPTH = _face_depth()  # aligned with HEAD_POINTS
#: Face points that follow an extra jaw opening, with how much (lower lip and chin fully, cheeks partly).
_JAW_FOLLOW = np.zeros(68)
_JAW_FOLLOW[0:17] = np.clip(np.sin(np.pi * np.arange(17) / 16), 0, 1) ** 3
_JAW_FOLLOW[55:60] = 1.0
_JAW_FOLLOW[65:68] = 1.0
_JAW_FOLLOW[[48, 54, 60, 64]] = 0.45
_CORNERS = np.array([48, 54, 60, 64]) + _F
_LIPS = np.arange(48, 68) + _F
_BROWS = np.arange(17, 27) + _F
#: Finger chains (base joint → tip) of a 21-point hand, thumb first.
_FINGERS = np.array([(1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20)])
#: Bend of each joint (base, middle, end) at full extra curl, radians; the thumb bends less.
_FLEX = np.array([[0.5, 0.6, 0.5], [1.2, 1.5, 1.0], [1.2, 1.5, 1.0], [1.2, 1.5, 1.0], [1.2, 1.5, 1.0]])
_ARMS = ((-1.0, kp.R_SHOULDER, kp.R_ELBOW, kp.R_WRIST, kp.RIGHT_HAND),
         (1.0, kp.L_SHOULDER, kp.L_ELBOW, kp.L_WRIST, kp.LEFT_HAND))


@dataclass(frozen=True)
class PerturbRanges:
    """How far perturbations may go (radians unless stated); ``strength`` in :func:`perturb_stream` scales them.

    Attributes:
        head_yaw, head_pitch, head_roll: largest extra head rotation.
        gesture_rate: chance that an arm gestures during a keyframe interval.
        arm_out: largest outward swing of the upper arm from hanging.
        forearm_up: largest forearm elevation from hanging (π/2 = across the body, more = raised).
        finger_curl: largest extra curl (fraction of a full bend), in both directions.
        finger_spread: largest extra fanning of the fingers.
        wrist_bend: largest wrist bend.
        hand_flip_rate: chance a keyframe turns the hand over (back of the hand to the camera).
        jaw_open: largest extra jaw opening, in face widths.
        smile: largest corner lift, in face widths.
        lip_width: largest relative change of the mouth's width.
        brow_raise: largest brow lift, in face widths.
        hold_seconds: mean time between keyframes.
    """

    head_yaw: float = 0.5
    head_pitch: float = 0.25
    head_roll: float = 0.2
    gesture_rate: float = 0.6
    arm_out: float = 1.0
    forearm_up: float = 2.4
    finger_curl: float = 0.9
    finger_spread: float = 0.25
    wrist_bend: float = 0.5
    hand_flip_rate: float = 0.25
    jaw_open: float = 0.12
    smile: float = 0.035
    lip_width: float = 0.15
    brow_raise: float = 0.035
    hold_seconds: float = 0.8


def keyframe_track(rng: np.random.Generator, n_frames: int, fps: float, lo: float, hi: float,
                   hold_seconds: float, start: float | None = None) -> np.ndarray:
    """A smooth random track ``[n_frames]``: values drawn in ``lo..hi`` at random keyframes, eased between."""
    if n_frames <= 0:
        return np.zeros(0)
    times = [0.0]
    while times[-1] * fps < n_frames:
        times.append(times[-1] + hold_seconds * rng.uniform(0.5, 1.5))
    values = rng.uniform(lo, hi, len(times))
    if start is not None:
        values[0] = start
    t = np.arange(n_frames) / fps
    seg = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    a = (t - np.take(times, seg)) / (np.take(times, seg + 1) - np.take(times, seg))
    ease = a * a * (3 - 2 * a)
    return values[seg] + (values[seg + 1] - values[seg]) * ease


def _gate_track(rng: np.random.Generator, n_frames: int, fps: float, rate: float, hold: float) -> np.ndarray:
    """A smooth 0..1 envelope that is on for about ``rate`` of the keyframe intervals."""
    on = keyframe_track(rng, n_frames, fps, 0.0, 1.0, hold)
    return np.clip((on - (1.0 - rate)) / 0.15, 0.0, 1.0)


def _rotate_head(xy: np.ndarray, width: np.ndarray, yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> None:
    """Rotate the head points of ``xy`` ``[T, 134, 2]`` in place (orthographic, generic depths)."""
    tip = xy[:, _F + 30, :]
    pivot_xy = tip + np.array([0.0, 0.2]) * width[:, None]
    rel = (xy[:, HEAD_POINTS, :] - pivot_xy[:, None, :]) / width[:, None, None]
    z = (_HEAD_DEPTH + 0.75)[None, :].repeat(len(xy), axis=0)
    x, y = rel[..., 0], rel[..., 1]
    cy, sy = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x, z = x * cy + z * sy, -x * sy + z * cy
    cp, sp = np.cos(pitch)[:, None], np.sin(pitch)[:, None]
    y, z = y * cp + z * sp, -y * sp + z * cp
    cr, sr = np.cos(roll)[:, None], np.sin(roll)[:, None]
    x, y = x * cr - y * sr, x * sr + y * cr
    xy[:, HEAD_POINTS, :] = pivot_xy[:, None, :] + np.stack([x, y], axis=-1) * width[:, None, None]


def _angle_from_down(v: np.ndarray) -> np.ndarray:
    """Angle of vectors ``[..., 2]`` from straight down, positive towards the image's right."""
    return np.arctan2(v[..., 0], v[..., 1])


def _pose_arms(xy: np.ndarray, rng: np.random.Generator, fps: float, r: PerturbRanges, strength: float) -> None:
    """Swing arms into gestures, in place, carrying each hand with its forearm."""
    n = len(xy)
    for side, shoulder, elbow, wrist, hand in _ARMS:
        gate = _gate_track(rng, n, fps, r.gesture_rate, r.hold_seconds * 1.5) * strength
        out_target = keyframe_track(rng, n, fps, 0.05, r.arm_out, r.hold_seconds)
        up_target = keyframe_track(rng, n, fps, 0.6, r.forearm_up, r.hold_seconds)
        foreshorten = keyframe_track(rng, n, fps, 0.0, 0.5, r.hold_seconds)
        s, e, w = xy[:, shoulder], xy[:, elbow], xy[:, wrist]
        upper, fore = e - s, w - e
        # angles measured from hanging straight down, positive away from the body's midline (outward)
        up_ang = _angle_from_down(upper) * side
        fore_ang = _angle_from_down(fore) * -side  # forearm raises towards the midline
        new_up = up_ang + gate * (out_target - up_ang)
        new_fore = fore_ang + gate * (up_target - fore_ang)
        d_up = (new_up - up_ang) * side
        d_fore = (new_fore - fore_ang) * -side
        # d_up, d_fore: turns towards the image's right; rotate_about turns that way for negative angles
        new_e = rotate_about(upper[:, None, :], np.zeros_like(s), -d_up)[:, 0] + s
        fore_len_scale = 1.0 - gate * foreshorten * 0.5
        # the forearm target is absolute (from hanging), so it turns by d_fore alone; the hand turns with it
        fore_rot = rotate_about(fore[:, None, :], np.zeros_like(s), -d_fore)[:, 0] * fore_len_scale[:, None]
        new_w = new_e + fore_rot
        idx = np.arange(hand.start, hand.stop)
        rel = xy[:, idx, :] - w[:, None, :]
        xy[:, idx, :] = rotate_about(rel, np.zeros_like(s), -d_fore) + new_w[:, None, :]
        xy[:, elbow], xy[:, wrist] = new_e, new_w


def _pose_hands(xy: np.ndarray, rng: np.random.Generator, fps: float, r: PerturbRanges, strength: float) -> None:
    """Curl, spread, bend and roll the fingers of both hands, in place."""
    n = len(xy)
    for block in (kp.RIGHT_HAND, kp.LEFT_HAND):
        idx = np.arange(block.start, block.stop)
        pts = xy[:, idx, :]  # [T, 21, 2]
        curl = np.stack([keyframe_track(rng, n, fps, -r.finger_curl, r.finger_curl, r.hold_seconds)
                         for _ in range(5)], axis=1) * strength  # [T, 5]
        common = keyframe_track(rng, n, fps, -r.finger_curl, r.finger_curl, r.hold_seconds) * strength
        curl = np.clip(curl * 0.5 + common[:, None], -1.0, 1.0)
        spread = keyframe_track(rng, n, fps, -r.finger_spread, r.finger_spread, r.hold_seconds) * strength
        bend = keyframe_track(rng, n, fps, -r.wrist_bend, r.wrist_bend, r.hold_seconds) * strength
        flip = keyframe_track(rng, n, fps, 0.0, 1.0, r.hold_seconds * 2)
        roll = np.where(flip < r.hand_flip_rate * strength, -1.0, 1.0) * keyframe_track(
            rng, n, fps, 0.55, 1.0, r.hold_seconds)
        wrist = pts[:, 0, :]
        axis = pts[:, 9, :] - wrist
        length = np.maximum(np.linalg.norm(axis, axis=-1), 1e-6)
        a = axis / length[:, None]
        normal = np.stack([-a[:, 1], a[:, 0]], axis=-1)
        # how edge-on the palm is: 1 edge-on (fingers bend in the picture), 0 palm-on (they foreshorten)
        palm_width = np.linalg.norm(pts[:, 5, :] - pts[:, 17, :], axis=-1)
        edge_on = np.clip(1.0 - palm_width / (0.55 * length), 0.0, 1.0)
        towards = np.sign(((pts[:, 4, :] - wrist) * normal).sum(-1) + 1e-9)  # the palm side, from the thumb
        for f, chain in enumerate(_FINGERS):
            base = pts[:, chain[0], :]
            # spread: rotate the whole finger about its base joint
            fan = (f - 2) * spread * (1.0 - edge_on)
            pts[:, chain, :] = rotate_about(pts[:, chain, :], base, fan)
            for j in range(3):
                joint = pts[:, chain[j], :]
                beta = curl[:, f] * _FLEX[f, j]
                rest = pts[:, chain[j + 1:], :] - joint[:, None, :]
                along = (rest * a[:, None, :]).sum(-1, keepdims=True) * a[:, None, :]
                shrink = 1.0 - (1.0 - np.cos(np.clip(beta, -1.5, 1.5)))[:, None, None] * (1.0 - edge_on)[:, None, None]
                rest = rest - along + along * shrink
                rest = rotate_about(rest, np.zeros_like(joint), beta * edge_on * towards * 0.8)
                pts[:, chain[j + 1:], :] = joint[:, None, :] + rest
        # wrist bend (in the picture) and roll (squash across the hand's axis; negative shows the other side)
        pts = rotate_about(pts, wrist, bend)
        rel = pts - wrist[:, None, :]
        along = (rel * a[:, None, :]).sum(-1, keepdims=True) * a[:, None, :]
        pts = wrist[:, None, :] + along + (rel - along) * roll[:, None, None]
        xy[:, idx, :] = pts


def _pose_face(xy: np.ndarray, width: np.ndarray, down: np.ndarray, right: np.ndarray,
               rng: np.random.Generator, fps: float, r: PerturbRanges, strength: float) -> None:
    """Extra jaw opening, smiles, lip width and brow raises, in place."""
    n = len(xy)
    jaw = np.clip(keyframe_track(rng, n, fps, -r.jaw_open, r.jaw_open, r.hold_seconds * 0.5), 0, None) * strength
    smile = keyframe_track(rng, n, fps, -0.3 * r.smile, r.smile, r.hold_seconds) * strength
    lip_w = 1.0 + keyframe_track(rng, n, fps, -r.lip_width, r.lip_width, r.hold_seconds) * strength
    brow = keyframe_track(rng, n, fps, -0.5 * r.brow_raise, r.brow_raise, r.hold_seconds) * strength
    face = np.arange(_F, _F + 68)
    xy[:, face, :] += (_JAW_FOLLOW[None, :, None] * (jaw * width)[:, None, None]) * down[:, None, :]
    centre = xy[:, _LIPS, :].mean(axis=1)
    rel = xy[:, _LIPS, :] - centre[:, None, :]
    along = (rel * right[:, None, :]).sum(-1, keepdims=True) * right[:, None, :]
    xy[:, _LIPS, :] = centre[:, None, :] + rel - along + along * lip_w[:, None, None]
    xy[:, _CORNERS, :] -= ((smile * width)[:, None, None]) * down[:, None, :]
    xy[:, _BROWS, :] -= ((brow * width)[:, None, None]) * down[:, None, :]


def perturb_stream(keypoints: np.ndarray, rng: np.random.Generator, fps: float = 25.0, strength: float = 1.0,
                   ranges: PerturbRanges = PerturbRanges()) -> np.ndarray:
    """A perturbed copy of a keypoint stream.

    Args:
        keypoints: ``[T, 134, 3]`` DWPose-134 frames (x, y normalised; confidence).
        rng: the random generator (the same state gives the same perturbation).
        fps: frame rate of the stream (tracks are timed in seconds).
        strength: 0 (unchanged) .. 1 (full ranges); values above 1 go further.
        ranges: the ranges at strength 1.

    Returns:
        float32 ``[T, 134, 3]``; points that leave the frame get confidence 0, points that enter it get
        their group's confidence.
    """
    src = np.asarray(keypoints, dtype=np.float64)
    if src.ndim != 3 or src.shape[1:] != (kp.NUM_KEYPOINTS, 3):
        raise ValueError(f"keypoints must have shape (T, 134, 3), got {src.shape}")
    nominal = nominal_confidence(src)
    out = src.copy()
    n = len(out)
    if n == 0 or strength <= 0:
        return out.astype(np.float32)
    xy = out[..., :2]
    r = ranges
    hold = r.hold_seconds
    right, down, width = face_axes(src)
    _pose_face(xy, width, down, right, rng, fps, r, strength)
    yaw = keyframe_track(rng, n, fps, -r.head_yaw, r.head_yaw, hold * 1.5) * strength
    pitch = keyframe_track(rng, n, fps, -r.head_pitch, r.head_pitch, hold * 1.5) * strength
    roll = keyframe_track(rng, n, fps, -r.head_roll, r.head_roll, hold * 1.5) * strength
    _rotate_head(xy, width, yaw, pitch, roll)
    _pose_arms(xy, rng, fps, r, strength)
    _pose_hands(xy, rng, fps, r, strength)
    return refresh_visibility(out, nominal).astype(np.float32)


def apply_camera(keypoints: np.ndarray, zoom: float, shift: tuple[float, float]) -> np.ndarray:
    """Keypoints ``[..., 134, 3]`` seen by a camera zoomed by ``zoom`` about the frame centre and moved by ``shift``.

    ``shift`` is in frame units (+x moves the presenter right). Confidences follow the frame edges.
    """
    src = np.asarray(keypoints, dtype=np.float64)
    nominal = nominal_confidence(src)
    out = src.copy()
    out[..., :2] = (out[..., :2] - 0.5) * zoom + 0.5 + np.asarray(shift, dtype=np.float64)
    return refresh_visibility(out, nominal).astype(np.float32)


def random_camera(rng: np.random.Generator, strength: float = 1.0) -> tuple[float, tuple[float, float]]:
    """A random per-clip camera: zoom in 0.85..1.15 and a shift of up to 0.05 frame widths (at strength 1)."""
    zoom = math.exp(rng.uniform(-0.16, 0.14) * strength)
    shift = (float(rng.uniform(-0.05, 0.05) * strength), float(rng.uniform(-0.04, 0.05) * strength))
    return zoom, shift
