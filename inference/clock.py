"""Clocks that pace frames at the stream's rate.

:class:`FrameClock` maps frame indices to host time: frame ``i`` is due at
``start + i / fps``. Live pipelines wait for a frame's due time before handing
it to sinks, so a virtual camera receives frames at a steady rate. Tests use
:class:`SimulatedTime` so that minutes of stream run in milliseconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SimulatedTime:
    """A deterministic stand-in for ``time.monotonic`` and ``time.sleep``.

    ``sleep(s)`` advances the time by ``s`` instead of waiting.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._now += seconds

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)


class FrameClock:
    """Paces frames at ``fps``.

    Args:
        fps: frames per second, > 0.
        now: time source (default ``time.monotonic``).
        sleep: sleep function (default ``time.sleep``).
    """

    def __init__(
        self,
        fps: float,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        self._now = now
        self._sleep = sleep
        self._start: float | None = None

    def start(self, at: float | None = None) -> None:
        """Set the time of frame 0 (default: now)."""
        self._start = self._now() if at is None else at

    @property
    def started(self) -> bool:
        return self._start is not None

    def due(self, index: int) -> float:
        """Host time at which frame ``index`` is due."""
        if self._start is None:
            raise RuntimeError("FrameClock.start() must be called first")
        return self._start + index / self.fps

    def lateness(self, index: int) -> float:
        """Seconds by which frame ``index`` is late (negative: early)."""
        return self._now() - self.due(index)

    def wait_for(self, index: int, stop: threading.Event | None = None) -> float:
        """Sleep until frame ``index`` is due; returns its lateness after waiting (>= 0).

        Returns early if ``stop`` is set.
        """
        remaining = -self.lateness(index)
        while remaining > 0:
            if stop is not None and stop.is_set():
                break
            self._sleep(min(remaining, 0.05))
            remaining = -self.lateness(index)
        return max(0.0, -remaining)
