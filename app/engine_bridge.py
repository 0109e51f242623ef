"""Carries the live engine's frames and events from its worker threads onto the GUI thread.

The engine calls :meth:`QtEngineBridge.push_frame` and :meth:`push_event` on its
own threads. Frames are not queued: the bridge keeps only the newest one and
signals once until the GUI has taken it, so a busy GUI shows the latest frame
instead of falling behind. Events are delivered one by one through a queued
signal.
"""

from __future__ import annotations

import threading

import numpy as np
from PySide6.QtCore import QObject, Signal

from inference.live import EngineEvent
from inference.types import VideoFrame


class QtEngineBridge(QObject):
    """Thread-safe hand-over from the engine to widgets (signals are emitted on worker threads, received queued)."""

    frame_ready = Signal()
    event = Signal(object)  # EngineEvent

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._frame: VideoFrame | None = None
        self._signalled = False
        self.frames_received = 0

    def push_frame(self, frame: VideoFrame) -> None:
        """Engine side: a new frame is ready (any thread)."""
        with self._lock:
            self._frame = frame
            self.frames_received += 1
            signal = not self._signalled
            self._signalled = True
        if signal:
            self.frame_ready.emit()

    def take_frame(self) -> VideoFrame | None:
        """GUI side: the newest frame, or None if there is none yet."""
        with self._lock:
            self._signalled = False
            return self._frame

    def latest_rgb(self) -> np.ndarray | None:
        """The newest frame's pixels, without taking it (tests, screenshots)."""
        with self._lock:
            return None if self._frame is None else self._frame.rgb

    def push_event(self, event: EngineEvent) -> None:
        """Engine side: something to show the user (any thread)."""
        self.event.emit(event)
