"""Few-step flow-matching sampling of the student: the timestep schedule and each step's update.

Convention (shared by training and runtime): a noisy latent at time ``t`` is
``z_t = t · x + (1 - t) · ε`` with ``t = 0`` pure noise and ``t = 1`` clean; the network predicts the
clean latent ``x̂`` (x-prediction). One step goes from ``t`` to ``t_next`` as
``z_next = a · x̂ + b · z_t + c · ε_new``, and the coefficients say which sampler:

* ``"euler"``: the deterministic flow ODE, ``z_next = z_t + (t_next - t) · (x̂ - z_t) / (1 - t)``;
* ``"renoise"``: the few-step (DMD / CausVid) sampler, ``z_next = t_next · x̂ + (1 - t_next) · ε_new``.

The student graph applies the update itself, so the latent never leaves the GPU between steps.
"""

from __future__ import annotations

import numpy as np

SAMPLERS = ("euler", "renoise")
#: The time at which clean frames are re-encoded into the key/value cache.
CLEAN_TIME = 1.0


def validate_timesteps(timesteps: tuple[float, ...] | list[float]) -> tuple[float, ...]:
    """Checks a student schedule: 1-4 increasing times in ``[0, 1)``, the first one 0 (pure noise)."""
    times = tuple(float(t) for t in timesteps)
    if not 1 <= len(times) <= 4:
        raise ValueError(f"a student takes 1 to 4 steps, got {len(times)} timesteps {list(times)}")
    if times[0] != 0.0 or any(not 0.0 <= t < 1.0 for t in times) or any(b <= a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError(f"timesteps must start at 0 and increase inside [0, 1), got {list(times)}")
    return times


def step_coefficients(t: float, t_next: float, sampler: str) -> np.ndarray:
    """``(a, b, c)`` of ``z_next = a · x̂ + b · z_t + c · ε``, float32 ``[3]``.

    Args:
        t: current time in ``[0, 1)``.
        t_next: next time in ``(t, 1]``; 1 gives ``z_next = x̂``.
        sampler: one of :data:`SAMPLERS`.
    """
    if sampler == "euler":
        a = (t_next - t) / (1.0 - t)
        coefficients = (a, 1.0 - a, 0.0)
    elif sampler == "renoise":
        coefficients = (t_next, 0.0, 1.0 - t_next)
    else:
        raise ValueError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
    return np.array(coefficients, dtype=np.float32)


def schedule(timesteps: tuple[float, ...], sampler: str) -> list[tuple[float, np.ndarray]]:
    """Each step's time and update coefficients; the last step goes to ``t = 1`` (its ``z_next`` is ``x̂``)."""
    times = validate_timesteps(timesteps)
    ends = (*times[1:], 1.0)
    return [(t, step_coefficients(t, t_next, sampler)) for t, t_next in zip(times, ends, strict=True)]


def chunk_noise(rng: np.random.Generator, steps: int, shape: tuple[int, ...]) -> list[np.ndarray]:
    """The noise one chunk consumes, float32: the starting latent, then one draw for each step's update
    but the last (which lands on ``x̂``). Drawn in this order by the runtime and by training's reference
    stream, so both see the same numbers from the same seed."""
    return [rng.standard_normal(shape, dtype=np.float32) for _ in range(steps)]
