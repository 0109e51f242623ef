"""The photo rig's animation controls, and how they are read from a DWPose-134 keypoint stream.

The controls describe the motion of a face and shoulders independently of who drives them: distances are
in eye distances (the distance between the eye centres), angles in radians, all relative to a neutral
pose. :class:`KeypointReader` measures them on any keypoint stream (the motion rig, a webcam pose
tracker): normalised by the stream's own face size, relative to a neutral it keeps estimating
(mouth: the most closed recent opening; eyes: the most open; the rest, each lip's thickness included: a slow
running mean, which speech's rounded lips do not push up the way a fullest-recent neutral would).
Head, brows and shoulders are lightly smoothed with a one-euro filter so a jittery tracker does not make the
portrait shake; the mouth and eyes are passed through without delay.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, fields

import numpy as np

from inference import keypoints as kp

#: A full F/V tuck: the lower lip shows this much thinner, eye distances (the motion rig's tuck of 1).
TUCK_FULL = 0.05
#: A lower lip this much thinner than its mean (eye distances) is not yet read as a tuck (tracker noise, speech).
TUCK_DEAD_ZONE = 0.01
#: Minimum mean confidence of the face points for them to be read.
MIN_FACE_CONFIDENCE = 0.3
MIN_BODY_CONFIDENCE = 0.3


@dataclass(frozen=True)
class PortraitControls:
    """One frame of animation for a portrait; all zero is the portrait as photographed.

    Distances are in eye distances (ED), image axes x right / y down unless stated.

    Attributes:
        jaw: extra opening of the lips, ED (≥ 0; 0.3 is a wide-open vowel).
        lip_press: lips pressed thinner (both lips together), ED (≥ 0).
        lip_tuck: the lower lip drawn up under the upper teeth (F, V): how much thinner it shows, ED (≥ 0).
        lip_width: change of mouth width, ED (negative: rounded "oo", positive: spread "ee").
        smile: lift of the mouth corners, ED.
        blink_right, blink_left: eyelid closure 0 (open) .. 1 (closed), the subject's right and left eye.
        brow_right, brow_left: brow raise, ED (negative: frown).
        yaw: head turn, radians (positive: the nose moves to the image's right).
        pitch: head nod, radians (positive: the nose moves down).
        roll: head tilt in the image plane, radians (positive: clockwise on screen).
        head_x, head_y: head translation, ED.
        shoulder_right_x, shoulder_right_y, shoulder_left_x, shoulder_left_y: shoulder translation, ED.
    """

    jaw: float = 0.0
    lip_press: float = 0.0
    lip_tuck: float = 0.0
    lip_width: float = 0.0
    smile: float = 0.0
    blink_right: float = 0.0
    blink_left: float = 0.0
    brow_right: float = 0.0
    brow_left: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    head_x: float = 0.0
    head_y: float = 0.0
    shoulder_right_x: float = 0.0
    shoulder_right_y: float = 0.0
    shoulder_left_x: float = 0.0
    shoulder_left_y: float = 0.0

    def vector(self) -> np.ndarray:
        """The controls as float32 ``[len(CONTROL_NAMES)]`` in :data:`CONTROL_NAMES` order."""
        return np.array(astuple(self), dtype=np.float32)

    @staticmethod
    def from_vector(values: np.ndarray) -> PortraitControls:
        return PortraitControls(*(float(v) for v in values))


CONTROL_NAMES: tuple[str, ...] = tuple(f.name for f in fields(PortraitControls))

#: Safe range of every control: beyond it a 2-D warp of a photo stops looking like a face.
CONTROL_LIMITS: dict[str, tuple[float, float]] = {
    "jaw": (0.0, 0.45), "lip_press": (0.0, 0.08), "lip_tuck": (0.0, TUCK_FULL), "lip_width": (-0.3, 0.3), "smile": (-0.08, 0.15),
    "blink_right": (0.0, 1.0), "blink_left": (0.0, 1.0), "brow_right": (-0.12, 0.18), "brow_left": (-0.12, 0.18),
    "yaw": (-0.35, 0.35), "pitch": (-0.25, 0.25), "roll": (-0.25, 0.25), "head_x": (-0.6, 0.6),
    "head_y": (-0.6, 0.6), "shoulder_right_x": (-0.4, 0.4), "shoulder_right_y": (-0.4, 0.4),
    "shoulder_left_x": (-0.4, 0.4), "shoulder_left_y": (-0.4, 0.4),
}
_LOW = np.array([CONTROL_LIMITS[n][0] for n in CONTROL_NAMES], dtype=np.float32)
_HIGH = np.array([CONTROL_LIMITS[n][1] for n in CONTROL_NAMES], dtype=np.float32)


def clamp_controls(values: np.ndarray) -> np.ndarray:
    """``values`` ``[len(CONTROL_NAMES)]`` clipped to :data:`CONTROL_LIMITS`."""
    return np.clip(values, _LOW, _HIGH)


# How the nose tip moves for a head turn, in the measured units (human proportions, as in the motion rig's
# 3-D face): the jaw line's ends sit by the ears, about 0.6 face widths behind the nose tip, so a turn
# shifts the nose tip from their midpoint by 0.62·tan(yaw) of their distance; the eye corners sit about
# 0.6 eye distances behind it, so a nod moves it by 0.6·sin(pitch) eye distances relative to the eyes.
_YAW_GAIN = 0.62
_PITCH_GAIN = 0.6

# Smoothing per control group: (one-euro minimum cutoff in Hz, speed coefficient); None passes the values
# through. The mouth and the eyes are not smoothed: any filter would make the lips lag the voice (keeping
# them steady is the motion source's job); head, brows and body are, so a jittery tracker does not shake them.
_FILTERS: dict[str, tuple[float, float] | None] = {
    "mouth": None, "eyes": None, "brows": (3.0, 1.0), "head": (2.0, 1.5), "body": (1.5, 1.0),
}
_GROUP = {
    "jaw": "mouth", "lip_press": "mouth", "lip_tuck": "mouth", "lip_width": "mouth", "smile": "mouth", "blink_right": "eyes",
    "blink_left": "eyes", "brow_right": "brows", "brow_left": "brows", "yaw": "head", "pitch": "head",
    "roll": "head", "head_x": "head", "head_y": "head", "shoulder_right_x": "body", "shoulder_right_y": "body",
    "shoulder_left_x": "body", "shoulder_left_y": "body",
}


class _OneEuro:
    """One-euro filter over a vector (Casiez et al. 2012): smooth when still, little lag when moving."""

    def __init__(self, min_cutoff: np.ndarray, beta: np.ndarray, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.value: np.ndarray | None = None
        self.speed = np.zeros_like(min_cutoff)

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
        tau = 1.0 / (2 * math.pi * np.asarray(cutoff))
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, dt: float) -> np.ndarray:
        if self.value is None:
            self.value = x.copy()
            return x
        speed = (x - self.value) / dt
        self.speed += self._alpha(self.d_cutoff, dt) * (speed - self.speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self.speed)
        self.value = self.value + self._alpha(cutoff, dt) * (x - self.value)
        return self.value


class _Neutral:
    """A running neutral for one measurement.

    ``floor``: falls at once, rises slowly (the most closed recent mouth); ``ceiling``: the reverse (the most
    open recent eyes); ``mean``: an exponential moving average. ``tau`` is the slow time constant in seconds.
    """

    def __init__(self, kind: str, tau: float) -> None:
        self.kind, self.tau = kind, tau
        self.value: float | None = None

    def __call__(self, x: float, dt: float) -> float:
        if self.value is None:
            self.value = x
            return x
        a = 1.0 - math.exp(-dt / self.tau)
        if self.kind == "floor":
            self.value = x if x < self.value else self.value + a * (x - self.value)
        elif self.kind == "ceiling":
            self.value = x if x > self.value else self.value + a * (x - self.value)
        else:
            self.value += a * (x - self.value)
        return self.value


def _face(keypoints: np.ndarray, i: int) -> np.ndarray:
    return keypoints[kp.face_index(i), :2]


class KeypointReader:
    """Reads :class:`PortraitControls` from DWPose-134 frames.

    Args:
        size: (width, height) of the frame the keypoints are normalised to (for square pixels).

    Call :meth:`read` once per frame, in order; :meth:`reset` starts a new stream.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        self.scale_xy = np.array(size, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        self._eye_distance = _Neutral("mean", 1.0)
        self._neutral = {
            "gap": _Neutral("floor", 4.0), "upper_lip": _Neutral("mean", 6.0),
            "lower_lip": _Neutral("mean", 6.0), "width": _Neutral("mean", 6.0),
            "corner": _Neutral("mean", 6.0),
            "eye_r": _Neutral("ceiling", 6.0), "eye_l": _Neutral("ceiling", 6.0),
            "brow_r": _Neutral("mean", 8.0), "brow_l": _Neutral("mean", 8.0), "nose": _Neutral("mean", 10.0),
            "centre_x": _Neutral("mean", 8.0), "centre_y": _Neutral("mean", 8.0),
            "sr_x": _Neutral("mean", 8.0), "sr_y": _Neutral("mean", 8.0),
            "sl_x": _Neutral("mean", 8.0), "sl_y": _Neutral("mean", 8.0),
        }
        settings = [_FILTERS[_GROUP[n]] for n in CONTROL_NAMES]
        self._smoothed = np.array([f is not None for f in settings])
        cut = np.array([f[0] if f is not None else 1.0 for f in settings])
        beta = np.array([f[1] if f is not None else 0.0 for f in settings])
        self._filter = _OneEuro(cut, beta)
        self._last = np.zeros(len(CONTROL_NAMES), dtype=np.float64)

    def read(self, keypoints: np.ndarray, dt: float) -> PortraitControls:
        """Controls for one ``[134, 3]`` keypoint frame; ``dt`` is the time since the previous frame (s)."""
        pts = keypoints.astype(np.float64).copy()
        pts[:, :2] *= self.scale_xy
        raw = self._last * math.exp(-dt / 0.3)  # a part that cannot be seen relaxes towards neutral
        if pts[kp.FACE, 2].mean() >= MIN_FACE_CONFIDENCE:
            self._read_face(pts, dt, raw)
        self._read_body(pts, dt, raw)
        self._last = raw
        smooth = np.where(self._smoothed, self._filter(raw, dt), raw)
        return PortraitControls.from_vector(clamp_controls(smooth.astype(np.float32)))

    def _read_face(self, pts: np.ndarray, dt: float, out: np.ndarray) -> None:
        n = self._neutral
        right_eye = (_face(pts, 36) + _face(pts, 39)) / 2
        left_eye = (_face(pts, 42) + _face(pts, 45)) / 2
        axis = left_eye - right_eye
        distance = float(np.hypot(*axis))
        if distance < 1e-3:
            return
        unit = self._eye_distance(distance, dt)
        ex = axis / distance
        ey = np.array([-ex[1], ex[0]])
        centre = (right_eye + left_eye) / 2

        def local(i: int) -> np.ndarray:
            d = _face(pts, i) - centre
            return np.array([d @ ex, d @ ey]) / unit

        gap = float(np.mean([local(lo)[1] - local(up)[1] for up, lo in ((61, 67), (62, 66), (63, 65))]))
        neutral_gap = n["gap"](gap, dt)
        upper_lip = float(local(62)[1] - local(51)[1])  # each lip's thickness
        lower_lip = float(local(57)[1] - local(66)[1])
        width = float(local(54)[0] - local(48)[0])
        corner = float(local(62)[1] - (local(48)[1] + local(54)[1]) / 2 + 0.5 * max(0.0, gap - neutral_gap))
        eye_r = float(np.mean([local(41)[1] - local(37)[1], local(40)[1] - local(38)[1]]))
        eye_l = float(np.mean([local(47)[1] - local(43)[1], local(46)[1] - local(44)[1]]))
        brow_r = float(np.mean([local(i)[1] for i in range(17, 22)]))
        brow_l = float(np.mean([local(i)[1] for i in range(22, 27)]))
        jaw_r, jaw_l, nose = local(0), local(16), local(30)
        face_width = max(1e-3, float(jaw_l[0] - jaw_r[0]))
        turn = (nose[0] - (jaw_r[0] + jaw_l[0]) / 2) / face_width

        out[CONTROL_NAMES.index("jaw")] = max(0.0, gap - neutral_gap)
        # pressed lips both get thinner; a tucked lower lip gets thinner while the upper lip lifts. Each lip is
        # measured against its mean: rounded lips are fuller than at rest and would raise a fullest-recent neutral
        # (which read every mouth at rest during speech as pressed), and tracker jitter would too.
        upper_thinner = n["upper_lip"](upper_lip, dt) - upper_lip
        lower_thinner = n["lower_lip"](lower_lip, dt) - lower_lip
        tuck = max(0.0, lower_thinner - max(upper_thinner, 0.0) - TUCK_DEAD_ZONE)
        out[CONTROL_NAMES.index("lip_tuck")] = tuck
        out[CONTROL_NAMES.index("lip_press")] = max(0.0, upper_thinner + lower_thinner - tuck)
        out[CONTROL_NAMES.index("lip_width")] = width - n["width"](width, dt)
        out[CONTROL_NAMES.index("smile")] = corner - n["corner"](corner, dt)
        for name, value, key in (("blink_right", eye_r, "eye_r"), ("blink_left", eye_l, "eye_l")):
            open_ = n[key](value, dt)
            out[CONTROL_NAMES.index(name)] = min(1.0, max(0.0, 1.0 - value / max(open_, 1e-6)) / 0.85)
        out[CONTROL_NAMES.index("brow_right")] = -(brow_r - n["brow_r"](brow_r, dt))
        out[CONTROL_NAMES.index("brow_left")] = -(brow_l - n["brow_l"](brow_l, dt))
        out[CONTROL_NAMES.index("yaw")] = math.atan(turn / _YAW_GAIN)
        pitch = (float(nose[1]) - n["nose"](float(nose[1]), dt)) / _PITCH_GAIN
        out[CONTROL_NAMES.index("pitch")] = math.asin(max(-1.0, min(1.0, pitch)))
        out[CONTROL_NAMES.index("roll")] = math.atan2(float(axis[1]), float(axis[0]))
        out[CONTROL_NAMES.index("head_x")] = (centre[0] - n["centre_x"](float(centre[0]), dt)) / unit
        out[CONTROL_NAMES.index("head_y")] = (centre[1] - n["centre_y"](float(centre[1]), dt)) / unit

    def _read_body(self, pts: np.ndarray, dt: float, out: np.ndarray) -> None:
        unit = self._eye_distance.value
        if unit is None:
            return
        n = self._neutral
        for index, prefix, key in ((kp.R_SHOULDER, "shoulder_right", "sr"), (kp.L_SHOULDER, "shoulder_left", "sl")):
            if pts[index, 2] < MIN_BODY_CONFIDENCE:
                continue
            x, y = float(pts[index, 0]), float(pts[index, 1])
            out[CONTROL_NAMES.index(f"{prefix}_x")] = (x - n[f"{key}_x"](x, dt)) / unit
            out[CONTROL_NAMES.index(f"{prefix}_y")] = (y - n[f"{key}_y"](y, dt)) / unit
