"""Small motion primitives shared by the motion generators: springs and smooth random drift.

Both step once per video frame with an explicit ``dt``, keep a few floats of
state, and draw random numbers only from the generator they are given, so a
fixed seed reproduces the same motion exactly.
"""

from __future__ import annotations

import math

import numpy as np


class Spring:
    """A critically damped spring: follows its target smoothly, without overshoot or snapping.

    Args:
        value: initial value (a float or an array; arrays are updated in place).
        frequency: how quickly it follows, in Hz (about 1 / settling time).
    """

    def __init__(self, value: float | np.ndarray, frequency: float) -> None:
        self.value = np.array(value, dtype=np.float64)
        self.velocity = np.zeros_like(self.value)
        self.frequency = float(frequency)

    def step(self, target: float | np.ndarray, dt: float, frequency: float | None = None) -> np.ndarray:
        """Advance by ``dt`` seconds towards ``target``; returns the new value (the spring's own array)."""
        omega = 2.0 * math.pi * (self.frequency if frequency is None else frequency)
        # exact solution of x'' = -2ω x' - ω² (x - target) over dt (stable for any dt)
        delta = self.value - target
        exp = math.exp(-omega * dt)
        tmp = (self.velocity + omega * delta) * dt
        self.velocity = (self.velocity - omega * tmp) * exp
        self.value = target + (delta + tmp) * exp
        return self.value


class Drift:
    """Smooth random drift: an Ornstein-Uhlenbeck process with unit stationary deviation.

    It starts at rest (0), never repeats and never freezes; ``timescale`` (seconds) sets how slowly it wanders.

    Args:
        rng: the random generator it draws from.
        timescale: correlation time in seconds.
        size: number of independent channels.
    """

    def __init__(self, rng: np.random.Generator, timescale: float, size: int = 1) -> None:
        self.rng = rng
        self.timescale = float(timescale)
        self.value = np.zeros(size)
        self._smooth = np.zeros(size)

    def step(self, dt: float) -> np.ndarray:
        """Advance by ``dt`` seconds; returns the current values ``[size]`` (about -1..1, unbounded)."""
        a = math.exp(-dt / self.timescale)
        self.value = a * self.value + math.sqrt(1.0 - a * a) * self.rng.standard_normal(self.value.shape)
        # a second low-pass makes the path smooth (no per-frame jitter)
        b = math.exp(-dt / (0.35 * self.timescale))
        self._smooth = b * self._smooth + (1.0 - b) * self.value
        return self._smooth * 1.6


def seeded_generators(seed: int, count: int) -> list[np.random.Generator]:
    """``count`` independent random generators derived from ``seed`` (one per motion module)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(count)]


def reseed(generators: list[np.random.Generator], seed: int) -> None:
    """Restart ``generators`` (in place, so every holder sees it) as :func:`seeded_generators` would make them."""
    for rng, child in zip(generators, np.random.SeedSequence(seed).spawn(len(generators)), strict=True):
        rng.bit_generator.state = np.random.PCG64(child).state
