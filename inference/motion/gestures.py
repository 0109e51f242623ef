"""Arms and hands: a gesture vocabulary and a planner that times it to the speech.

The planner follows the classic structure of co-speech gesture (preparation,
stroke, hold, retraction):

* speech onsets and stressed syllables may start a gesture from the
  vocabulary (one- or two-handed, chosen at random with no immediate repeats);
* within a gesture, stressed syllables give *beats* (a quick down-stroke of the
  forearm and hand that lands on the syllable), and now and then a stroke into
  a new gesture;
* a pause after a phrase holds the gesture briefly, then the hands retract to
  one of several rest poses (hands in front, lower, together);
* in long silences the rest pose shifts now and then, with a little drift.

Every arm moves on critically damped springs in joint space (natural arcs, no
snapping) and finger shapes blend continuously. :func:`guard_limbs` then makes
sure no hand crosses the body's midline or leaves a half-body frame.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, replace

import numpy as np

from inference import keypoints as kp
from inference.motion.dynamics import Drift, Spring
from inference.motion.hand_shapes import HAND_SHAPES
from inference.motion.prosody import ProsodyEvent
from inference.motion.rig import ArmControls, Framing, RigControls, pose_keypoints


@dataclass(frozen=True)
class ArmPose:
    """A target for one arm: joint angles (see :class:`inference.motion.rig.ArmControls`) and a hand shape."""

    spread: float
    lift: float
    twist: float
    elbow: float
    palm_turn: float
    wrist_flex: float
    shape: str

    def vector(self) -> np.ndarray:
        """The six joint values as a float64 ``[6]`` array."""
        return np.array([self.spread, self.lift, self.twist, self.elbow, self.palm_turn, self.wrist_flex])


@dataclass(frozen=True)
class Gesture:
    """One entry of the vocabulary.

    Attributes:
        name: what it is called (for logs and tests).
        lead: pose of the gesturing hand.
        other: pose of the other hand for two-handed gestures; None lets it rest.
        beat: size of the beat strokes made while holding it, 0..1.
    """

    name: str
    lead: ArmPose
    other: ArmPose | None = None
    beat: float = 1.0

    @property
    def two_handed(self) -> bool:
        return self.other is not None


def _both(name: str, pose: ArmPose, beat: float = 1.0) -> Gesture:
    return Gesture(name, pose, pose, beat)


GESTURES: tuple[Gesture, ...] = (
    Gesture("offer", ArmPose(0.28, 0.06, 0.32, 1.81, -0.6, -0.2, "open")),
    Gesture("present-side", ArmPose(0.44, 0.0, -0.38, 1.86, 0.6, -0.4, "open"), beat=0.7),
    Gesture("point", ArmPose(0.25, 0.06, 0.32, 1.99, 0.4, -0.1, "point")),
    Gesture("pinch", ArmPose(0.19, 0.0, 0.37, 2.03, -0.2, -0.5, "pinch")),
    Gesture("count", ArmPose(0.25, 0.0, -0.02, 2.4, -0.4, -0.6, "two"), beat=0.6),
    Gesture("fist-beat", ArmPose(0.19, 0.0, 0.42, 1.86, 0.1, 0.0, "loose-fist"), beat=1.3),
    Gesture("cup", ArmPose(0.28, 0.06, 0.27, 1.85, -0.8, -0.3, "cup")),
    Gesture("chop", ArmPose(0.25, 0.06, 0.27, 1.92, 0.0, -0.1, "flat"), beat=1.2),
    _both("both-open", ArmPose(0.40, 0.06, -0.13, 1.73, -0.4, -0.3, "spread")),
    _both("box", ArmPose(0.28, 0.06, 0.45, 1.92, 0.0, -0.3, "flat")),
    _both("steeple", ArmPose(0.19, 0.0, 0.69, 2.02, -0.2, -0.9, "open"), beat=0.5),
    _both("weigh", ArmPose(0.30, 0.06, 0.20, 1.75, -0.9, -0.2, "cup")),
)

REST_POSES: tuple[tuple[str, ArmPose], ...] = (
    ("hands-front", ArmPose(0.10, -0.13, 0.31, 1.57, 0.45, 0.35, "rest")),
    ("hands-together", ArmPose(0.08, -0.10, 0.40, 1.58, 0.35, 0.3, "rest")),
    ("hands-loose", ArmPose(0.13, -0.10, 0.28, 1.51, 0.2, 0.25, "cup")),
)
#: Rest pose of head-and-shoulders framing: the hands stay below the frame (a hand entering a close-up frame
#: would be as large as the face and cover it), and gesture energy shows as shoulder beats instead.
_LOW_REST = ArmPose(0.08, 0.0, 0.3, 1.1, 0.5, 0.35, "relaxed")
#: The side coordinate ("out", face widths) a wrist must keep from the midline.
MIN_WRIST_OUT = 0.22
_MARGIN = 0.01


@dataclass(frozen=True)
class GestureSettings:
    """The style knobs the planner reads (see :class:`inference.motion.style.MotionStyle`)."""

    amount: float  # gesture_amount 0..1
    idle_energy: float  # 0..1
    handedness: str  # "right", "left" or "both"
    framing: str


class _ArmState:
    """Springs and finger shape of one arm."""

    def __init__(self, pose: ArmPose) -> None:
        self.spring = Spring(pose.vector(), frequency=1.4)
        self.shape = HAND_SHAPES[pose.shape]
        self.target = pose
        self.beats: list[tuple[float, float]] = []  # (apex time, amplitude)


class GesturePlanner:
    """Chooses and times gestures from prosodic events; produces both arms' controls every frame.

    Args:
        rng: random generator of this module (a fixed seed gives the same gestures).
        settings: initial style knobs (change them with :meth:`configure`).
    """

    def __init__(self, rng: np.random.Generator, settings: GestureSettings) -> None:
        self.rng = rng
        self.settings = settings
        self._rest_name, rest = self._rest_pose(first=True)
        self._arms = [_ArmState(rest), _ArmState(rest)]
        self._drift = Drift(rng, timescale=3.0, size=4)
        self.gesture: Gesture | None = None
        self.lead_side = 0
        self._recent: list[str] = []
        self._beats_in_gesture = 0
        self._retract_at: float | None = None
        self._next_rest_shift = float(rng.uniform(8.0, 15.0))
        self._shoulder_beats: list[tuple[float, float]] = []
        self.history: collections.deque[str] = collections.deque(maxlen=64)  # the latest gestures started

    def configure(self, settings: GestureSettings) -> None:
        """Change the style knobs (takes effect on the next frame)."""
        framing_changed = settings.framing != self.settings.framing
        self.settings = settings
        if framing_changed or (settings.amount <= 0.0 and self.gesture is not None):
            self._retract(0.0)

    # -- events ----------------------------------------------------------------------------------------
    def on_event(self, event: ProsodyEvent, now: float, t_event: float) -> None:
        """React to ``event`` (at ``t_event`` seconds); ``now`` is the time of the next frame."""
        amount = self.settings.amount
        if event.kind == "phrase_start":
            self._retract_at = None
            if self.gesture is None and self.rng.random() < 0.35 * amount * self._framing_factor():
                self._start_gesture(now)
        elif event.kind == "phrase_end":
            if self.gesture is not None:
                self._retract_at = t_event + float(self.rng.uniform(0.5, 1.2))
        elif event.kind == "accent":
            self._retract_at = None
            self._shoulder_beats.append((t_event, event.strength * amount))
            if self.gesture is None:
                if self.rng.random() < amount * (0.35 + 0.45 * event.strength) * self._framing_factor():
                    self._start_gesture(now)
                    self._beat(t_event, event.strength * 0.6)
            elif self._beats_in_gesture >= 2 and self.rng.random() < 0.22 + 0.05 * self._beats_in_gesture:
                self._start_gesture(now)
            else:
                self._beat(t_event, event.strength)

    def _framing_factor(self) -> float:
        return 0.0 if self.settings.framing == "head-and-shoulders" else 1.0

    def _start_gesture(self, now: float) -> None:
        handedness = self.settings.handedness
        weights = []
        for g in GESTURES:
            w = 1.0
            if g.name in self._recent:
                w = 0.0 if g.name == self._recent[-1] else 0.3
            if g.two_handed:
                w *= 1.6 if handedness == "both" else 0.45
            weights.append(w)
        p = np.array(weights) / sum(weights)
        gesture = GESTURES[int(self.rng.choice(len(GESTURES), p=p))]
        if handedness == "both":
            self.lead_side = int(self.rng.integers(0, 2))
        else:
            self.lead_side = 0 if handedness == "right" else 1
        self.gesture = gesture
        self._beats_in_gesture = 0
        self._retract_at = None
        self._recent = [*self._recent[-2:], gesture.name]
        self.history.append(gesture.name)
        lead, other = self._arms[self.lead_side], self._arms[1 - self.lead_side]
        lead.target = gesture.lead
        other.target = gesture.other if gesture.other is not None else self._rest_pose()[1]

    def _beat(self, t_event: float, strength: float) -> None:
        if self.gesture is None:
            return
        self._beats_in_gesture += 1
        amp = strength * self.gesture.beat * (0.4 + 0.6 * self.settings.amount)
        self._arms[self.lead_side].beats.append((t_event, amp))
        if self.gesture.two_handed:
            self._arms[1 - self.lead_side].beats.append((t_event, amp * 0.9))

    def _retract(self, now: float) -> None:
        self.gesture = None
        self._retract_at = None
        self._rest_name, rest = self._rest_pose()
        for arm in self._arms:
            arm.target = rest

    def _rest_pose(self, first: bool = False) -> tuple[str, ArmPose]:
        if self.settings.framing == "head-and-shoulders":
            return "hands-low", _LOW_REST
        if first:
            return REST_POSES[0]
        return REST_POSES[int(self.rng.integers(0, len(REST_POSES)))]

    # -- per frame -------------------------------------------------------------------------------------
    def arms(self, t: float, dt: float, speaking: bool) -> tuple[ArmControls, ArmControls]:
        """Both arms' controls for the frame at ``t`` seconds (right arm first)."""
        if self._retract_at is not None and t >= self._retract_at and not speaking:
            self._retract(t)
        if self.gesture is None and not speaking and t >= self._next_rest_shift:
            self._rest_name, rest = self._rest_pose()
            for arm in self._arms:
                arm.target = rest
            self._next_rest_shift = t + float(self.rng.uniform(7.0, 14.0)) * (1.5 - self.settings.idle_energy)
        drift = self._drift.step(dt)
        idle = 0.3 + 0.7 * self.settings.idle_energy
        out = []
        for side, arm in enumerate(self._arms):
            target = arm.target.vector()
            gesturing = self.gesture is not None and (side == self.lead_side or self.gesture.two_handed)
            if gesturing:
                rest = self._rest_pose(first=True)[1].vector()
                target = rest + (target - rest) * (0.55 + 0.45 * self.settings.amount)
            target = target + np.array([0.02, 0.03, 0.04, 0.06, 0.05, 0.05]) * idle * drift[side * 2] \
                + np.array([0.0, 0.0, 0.0, 0.04, 0.0, 0.05]) * idle * drift[side * 2 + 1]
            freq = 1.5 if gesturing else 0.8
            value = arm.spring.step(target, dt, frequency=freq).copy()
            value += self._beat_offset(arm, t)
            arm.shape = arm.shape.blend(HAND_SHAPES[arm.target.shape], 1.0 - math.exp(-dt * 7.0))
            out.append(ArmControls(*value.tolist(), shape=arm.shape))
        return out[0], out[1]

    def shoulder_beat(self, t: float) -> float:
        """Shoulder lift of the beats around ``t`` (face widths): small emphasis visible in any framing."""
        self._shoulder_beats = [(apex, amp) for apex, amp in self._shoulder_beats if t - apex < 0.4]
        lift = 0.0
        for apex, amp in self._shoulder_beats:
            x = (t - apex + 0.1) / 0.4
            if 0.0 <= x <= 1.0:
                lift += 0.05 * amp * math.sin(math.pi * x) ** 2
        return lift

    @staticmethod
    def _beat_offset(arm: _ArmState, t: float) -> np.ndarray:
        """Elbow drop and wrist flick of the beats around ``t``: down fast to the apex, back up slower."""
        offset = np.zeros(6)
        keep = []
        for apex, amp in arm.beats:
            x = t - apex
            if x < -0.15 or x > 0.35:
                if x <= 0.35:
                    keep.append((apex, amp))
                continue
            keep.append((apex, amp))
            shape = math.sin(0.5 * math.pi * (x + 0.15) / 0.15) ** 2 if x < 0 else math.cos(0.5 * math.pi * x / 0.35) ** 2
            offset[3] -= 0.28 * amp * shape  # the forearm drops
            offset[5] += 0.3 * amp * shape  # the hand flicks down
            offset[1] -= 0.05 * amp * shape
        arm.beats = keep
        return offset


def guard_limbs(controls: RigControls, framing: Framing, framing_name: str,
                rest: ArmControls) -> tuple[RigControls, np.ndarray]:
    """Pose the rig, keeping each wrist on its own side of the body and, in half-body framing, the hands in frame.

    A wrist that comes closer than ``MIN_WRIST_OUT`` face widths to the midline has its forearm turned back
    out; an arm whose hand leaves the frame is pulled towards ``rest`` until it fits. Most frames need neither,
    and cost one posing.

    Returns:
        the corrected controls and their keypoints (float32 ``[134, 3]``).
    """
    fixed = controls
    keypoints = pose_keypoints(fixed, framing)
    for _ in range(8):
        neck_x = float(keypoints[kp.NECK, 0])
        margin = MIN_WRIST_OUT * framing.face_width
        crossing = [side for side, wrist, sign in ((0, kp.R_WRIST, -1.0), (1, kp.L_WRIST, 1.0))
                    if sign * (float(keypoints[wrist, 0]) - neck_x) < margin]
        outside = [] if framing_name != "half-body" else [
            side for side, block in ((0, kp.RIGHT_HAND), (1, kp.LEFT_HAND))
            if (keypoints[block, :2] < _MARGIN).any() or (keypoints[block, :2] > 1.0 - _MARGIN).any()]
        if not crossing and not outside:
            break
        arms = list(fixed.arms)
        for side in crossing:
            arms[side] = replace(arms[side], twist=arms[side].twist - 0.15)
        for side in outside:
            arms[side] = _toward(arms[side], rest, 0.3)
        fixed = replace(fixed, arms=(arms[0], arms[1]))
        keypoints = pose_keypoints(fixed, framing)
    return fixed, keypoints


def _toward(arm: ArmControls, rest: ArmControls, t: float) -> ArmControls:
    def mix(a: float, b: float) -> float:
        return a + (b - a) * t

    return ArmControls(mix(arm.spread, rest.spread), mix(arm.lift, rest.lift), mix(arm.twist, rest.twist),
                       mix(arm.elbow, rest.elbow), mix(arm.palm_turn, rest.palm_turn),
                       mix(arm.wrist_flex, rest.wrist_flex), shape=arm.shape.blend(rest.shape, t))

