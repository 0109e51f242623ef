"""Idle life: blinks at natural random intervals and breathing.

Both run on every frame, in speech and in silence, so the presenter never
freezes; both use only their own random generator, so a fixed seed repeats
them exactly.
"""

from __future__ import annotations

import math

import numpy as np

#: Blink profile: eyelids close in 70 ms, stay shut 30 ms, open in 140 ms.
_CLOSE_S, _SHUT_S, _OPEN_S = 0.07, 0.03, 0.14


class Blinker:
    """Blinks with gamma-distributed gaps (about every 3 s while talking, 4 s at rest), sometimes twice.

    Call :meth:`phrase_end` at the end of a phrase: people often blink there.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._blink_start = -10.0
        self._next = float(rng.uniform(0.8, 2.5))
        self._double_pending = False

    def phrase_end(self, t: float) -> None:
        """A phrase ended at ``t`` seconds: blink soon if the last blink is not recent."""
        if t - self._blink_start > 1.2 and self.rng.random() < 0.6:
            self._next = min(self._next, t + float(self.rng.uniform(0.05, 0.25)))

    def value(self, t: float, speaking: bool, liveliness: float) -> float:
        """Eyelid closure at ``t`` seconds: 0 open .. 1 shut."""
        if t >= self._next and t - self._blink_start > _CLOSE_S + _SHUT_S + _OPEN_S:
            self._blink_start = t
            if self._double_pending:
                self._double_pending = False
            elif self.rng.random() < 0.12:
                self._double_pending = True
            if self._double_pending:
                self._next = t + float(self.rng.uniform(0.28, 0.4))
            else:
                mean = (2.8 if speaking else 4.0) * (1.15 - 0.3 * liveliness)
                self._next = t + float(self.rng.gamma(3.0, mean / 3.0))
        x = t - self._blink_start
        if x < 0:
            return 0.0
        if x < _CLOSE_S:
            return math.sin(0.5 * math.pi * x / _CLOSE_S) ** 2
        if x < _CLOSE_S + _SHUT_S:
            return 1.0
        x -= _CLOSE_S + _SHUT_S
        if x < _OPEN_S:
            return math.cos(0.5 * math.pi * x / _OPEN_S) ** 2
        return 0.0


class Breather:
    """Breathing as a shoulder lift: slow cycles at rest, a quick inhale in the pause after a phrase."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._phase = float(rng.uniform(0, 2 * math.pi))
        self._period = float(rng.uniform(3.5, 5.0))
        self._inhale_start = -10.0
        self.level = 0.0

    def phrase_end(self, t: float) -> None:
        """Take a breath in the pause that starts at ``t``."""
        if t - self._inhale_start > 1.5:
            self._inhale_start = t + 0.1

    def value(self, t: float, dt: float, speaking: bool) -> float:
        """Chest rise at ``t`` seconds, 0..1."""
        self._phase += 2 * math.pi * dt / self._period
        if self._phase > 2 * math.pi:
            self._phase -= 2 * math.pi
            self._period = float(self.rng.uniform(3.5, 5.0))
        cycle = 0.5 - 0.5 * math.cos(self._phase)
        x = t - self._inhale_start
        inhale = math.sin(math.pi * min(1.0, x / 0.9)) if 0 <= x < 0.9 else 0.0
        target = (0.35 if speaking else 1.0) * cycle + inhale
        self.level += (min(1.0, target) - self.level) * min(1.0, dt * 6.0)
        return self.level
