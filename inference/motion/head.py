"""Head, brows and gaze driven by prosody.

* Stressed syllables give small nods (down, or up on a strong pitch rise) and
  brief brow raises on pitch accents.
* Each phrase starts from a new, slightly turned or tilted head pose; a phrase
  end gives a slower settling nod and brings the head back towards the camera.
* Slow random drift keeps the head alive in pauses; the eyes look at the camera
  almost all the time (they counter-turn with the head), with an occasional
  glance away in pauses.

Amplitudes scale with the style knobs ``head_motion``, ``expressiveness`` and
``idle_energy`` (each 0..1), read every frame, so a style change shows within
a fraction of a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from inference.motion.dynamics import Drift, Spring
from inference.motion.prosody import ProsodyEvent


@dataclass
class _Pulse:
    """A smooth bump: ``amplitude`` over ``duration`` seconds from ``start``."""

    start: float
    duration: float
    amplitude: float

    def value(self, t: float) -> float:
        x = (t - self.start) / self.duration
        return self.amplitude * math.sin(math.pi * x) ** 2 if 0.0 <= x <= 1.0 else 0.0


@dataclass(frozen=True)
class HeadState:
    """What the head module sets on the rig for one frame (radians, face widths, 0..1)."""

    yaw: float
    pitch: float
    roll: float
    offset: tuple[float, float]
    brow_raise: float
    brow_frown: float
    gaze: tuple[float, float]
    smile: float


class HeadMotion:
    """Per-frame head, brow and gaze state from prosodic events.

    Args:
        rng: random generator of this module (a fixed seed gives the same motion).
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._drift = Drift(rng, timescale=2.5, size=5)
        self._pose = Spring(np.zeros(3), frequency=0.7)  # yaw, pitch, roll of the phrase
        self._pose_target = np.zeros(3)
        self._nods: list[_Pulse] = []
        self._brows: list[_Pulse] = []
        self._frowns: list[_Pulse] = []
        self._glance = np.zeros(2)
        self._glance_until = -1.0
        self._next_glance = float(rng.uniform(2.0, 6.0))
        self._gaze = Spring(np.zeros(2), frequency=4.0)

    def on_event(self, event: ProsodyEvent, now: float, t_event: float) -> None:
        """React to ``event`` happening at ``t_event`` seconds; ``now`` is the time of the next frame."""
        start = max(now, t_event - 0.12)
        if event.kind == "accent":
            if event.pitch_rise > 2.5 and self.rng.random() < 0.5:
                amp = -0.5 * event.strength  # a lift of the chin on a high accent
            else:
                amp = event.strength * float(self.rng.uniform(0.6, 1.0))
            self._nods.append(_Pulse(start, float(self.rng.uniform(0.28, 0.4)), amp))
            if event.pitch_rise > 1.0:
                self._brows.append(_Pulse(start, 0.45, min(1.0, 0.4 + 0.2 * event.pitch_rise)))
            elif event.strength > 0.85 and self.rng.random() < 0.3:
                self._frowns.append(_Pulse(start, 0.5, 0.6))
        elif event.kind == "phrase_start":
            self._pose_target = np.array([
                float(self.rng.uniform(-1.0, 1.0)),  # yaw
                float(self.rng.uniform(-0.4, 0.4)),  # pitch
                float(self.rng.uniform(-1.0, 1.0)),  # roll
            ])
        elif event.kind == "phrase_end":
            self._nods.append(_Pulse(start, 0.6, 0.7))
            self._pose_target = self._pose_target * 0.3
        for pulses in (self._nods, self._brows, self._frowns):
            while pulses and pulses[0].start + pulses[0].duration < now - 1.0:
                pulses.pop(0)

    def state(self, t: float, dt: float, speaking: bool, loudness: float, head_motion: float,
              expressiveness: float, idle_energy: float) -> HeadState:
        """The head state for the frame at ``t`` seconds (``dt`` since the previous frame)."""
        drift = self._drift.step(dt)
        pose = self._pose.step(self._pose_target, dt)
        idle = 0.25 + 0.75 * idle_energy
        nod = sum(p.value(t) for p in self._nods)
        yaw = 0.10 * head_motion * pose[0] + 0.04 * idle * drift[0]
        pitch = (0.035 * head_motion * pose[1] + 0.025 * idle * drift[1]
                 + (0.025 + 0.07 * head_motion) * nod + (0.02 * head_motion * loudness if speaking else 0.0))
        roll = 0.05 * head_motion * pose[2] + 0.02 * idle * drift[2]
        offset = (0.025 * idle * drift[3] + 0.25 * yaw, 0.012 * idle * drift[4] + 0.2 * max(0.0, pitch))
        brows = sum(p.value(t) for p in self._brows)
        frown = sum(p.value(t) for p in self._frowns)
        brow_raise = min(1.0, (0.3 + 0.7 * expressiveness) * brows) + 0.05 * idle * drift[4]
        brow_frown = min(1.0, (0.2 + 0.6 * expressiveness) * frown)
        # the eyes stay on the camera: they turn against the head, plus rare glances in pauses
        if not speaking and t >= self._next_glance and t > self._glance_until:
            self._glance = np.array([float(self.rng.uniform(-0.9, 0.9)), float(self.rng.uniform(-0.5, 0.3))])
            self._glance_until = t + float(self.rng.uniform(0.4, 1.1))
            self._next_glance = self._glance_until + float(self.rng.uniform(3.0, 9.0)) * (1.4 - idle_energy)
        glance = self._glance * idle if t < self._glance_until else np.zeros(2)
        gaze = self._gaze.step(np.array([-3.0 * yaw, -2.0 * pitch]) + glance, dt)
        smile = max(0.0, 0.08 + 0.12 * expressiveness + 0.06 * drift[2] * expressiveness)
        return HeadState(yaw=float(yaw), pitch=float(pitch), roll=float(roll), offset=(float(offset[0]),
                         float(offset[1])), brow_raise=float(brow_raise), brow_frown=float(brow_frown),
                         gaze=(float(gaze[0]), float(gaze[1])), smile=float(smile))
