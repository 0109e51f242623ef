"""The microphone as a live audio source: sounddevice at 48 kHz, mono, float32, 20 ms blocks.

PortAudio calls :meth:`MicrophoneSource._callback` on its own thread; the callback
only copies the block into a bounded queue, stamped with the host time it
arrived (``time.monotonic()``, the capture time of the block's last sample).
:meth:`MicrophoneSource.read` runs on the pipeline's source thread and hands the
blocks on, numbered in samples from the start of the stream.

A microphone that cannot be opened, or that stops delivering sound (unplugged,
taken by another program), does not end the stream: with
``wait_for_device=True`` the source says so through ``on_event``, carries on with
silence paced in real time (sample numbers keep following the wall clock, so
audio and video stay aligned), tries to reopen the device every
``retry_seconds``, and says so again when it is back. With the default
``wait_for_device=False`` a missing microphone raises :class:`DeviceError`.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from inference.errors import DeviceError
from inference.sources.audio_file import DEFAULT_BLOCK_SECONDS, ENGINE_SAMPLE_RATE
from inference.types import AudioBlock

log = logging.getLogger(__name__)

#: Blocks the callback may queue before the oldest is dropped (2 s at 20 ms): only a stalled reader loses audio.
QUEUE_BLOCKS = 100
#: Level reported when nothing was heard yet (dBFS).
SILENT_DB = -90.0

MicrophoneEventKind = Literal["opened", "unavailable", "lost", "restored"]


@dataclass(frozen=True)
class MicrophoneEvent:
    """Something the user should know about the microphone.

    ``kind`` is "opened" (first open worked), "unavailable" (could not open; silence until it can),
    "lost" (stopped delivering mid-stream) or "restored" (back after "unavailable" or "lost").
    """

    kind: MicrophoneEventKind
    message: str


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:
        raise DeviceError(
            f"The audio library PortAudio is missing ({exc}). Install it (sudo apt install libportaudio2) "
            "and start Podium again."
        ) from exc
    return sounddevice


class MicrophoneSource:
    """Live microphone audio as an :class:`~inference.stages.AudioSource`.

    Args:
        device: PortAudio device index or (part of its) name; None for the system default.
        sample_rate: capture rate in Hz (the engine's 48 kHz by default).
        block_seconds: PortAudio block length (20 ms by default).
        wait_for_device: on a missing or failing device, go on with silence and retry instead of raising.
        on_event: called (from the reading thread) with a :class:`MicrophoneEvent` when the device state changes.
        retry_seconds: how often a missing device is tried again.
        stall_seconds: a device that delivers nothing for this long counts as lost.
        startup_seconds: how long a freshly opened device may take to deliver its first block
            (sound servers such as PulseAudio take a second or two).
        backend: the sounddevice module or a stand-in with ``InputStream`` and ``PortAudioError`` (tests).
        now, sleep: time source and sleep (tests pass simulated ones).

    Raises:
        DeviceError: no microphone could be opened and ``wait_for_device`` is False.
    """

    total_samples = None

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sample_rate: int = ENGINE_SAMPLE_RATE,
        block_seconds: float = DEFAULT_BLOCK_SECONDS,
        wait_for_device: bool = False,
        on_event: Callable[[MicrophoneEvent], None] | None = None,
        retry_seconds: float = 1.0,
        stall_seconds: float = 0.5,
        startup_seconds: float = 3.0,
        backend: Any = None,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sample_rate = int(sample_rate)
        self.block_size = max(1, int(round(block_seconds * self.sample_rate)))
        self.on_event = on_event
        self.retry_seconds = retry_seconds
        self.stall_seconds = stall_seconds
        self.startup_seconds = startup_seconds
        self._delivering = False  # a block arrived since the device was opened
        self._backend = backend
        self._now = now
        self._sleep = sleep
        self._device = device
        self._cond = threading.Condition()
        self._queue: collections.deque[tuple[np.ndarray, float]] = collections.deque()
        self._stream: Any = None
        self._stream_failed = False
        self._closed = False
        self._position = 0
        self._last_block_at = now()
        self._next_retry = 0.0
        self._reopen_requested = False
        self._state: MicrophoneEventKind | None = None
        self._level_db = SILENT_DB
        #: blocks the callback had to drop because the reader stalled (should stay 0)
        self.dropped_blocks = 0
        #: input overflows PortAudio reported
        self.overflows = 0
        problem = self._open()
        if problem is not None:
            if not wait_for_device:
                raise DeviceError(problem)
            self._announce("unavailable", problem + " Podium keeps the avatar idle and connects when it is back.")
        else:
            self._announce("opened", f"Listening to {self.device_name}.")

    # -- public --------------------------------------------------------------------------------

    @property
    def device_name(self) -> str:
        """The device in words (the system default when none was chosen)."""
        return "the default microphone" if self._device in (None, "") else f"the microphone {self._device!r}"

    @property
    def connected(self) -> bool:
        """Whether a device is open and delivering sound."""
        with self._cond:
            return self._stream is not None and not self._stream_failed

    @property
    def level_db(self) -> float:
        """Peak level of the latest block in dBFS (-90 for silence); thread-safe."""
        return self._level_db

    @property
    def input_latency(self) -> float:
        """PortAudio's estimate of the input latency in seconds (0 when unknown)."""
        stream = self._stream
        try:
            return float(stream.latency) if stream is not None else 0.0
        except (AttributeError, TypeError, ValueError):
            return 0.0

    def set_device(self, device: int | str | None) -> None:
        """Switch to another microphone (any thread); the stream goes on without a gap in sample numbers."""
        with self._cond:
            self._device = device
            self._reopen_requested = True
            self._cond.notify_all()

    def read(self) -> AudioBlock | None:
        """The next block of captured audio (or paced silence while no device delivers); None once closed."""
        while True:
            with self._cond:
                if self._closed:
                    return None
                reopen = self._reopen_requested
                self._reopen_requested = False
            if reopen:
                self._close_stream()
                self._try_reopen(announce_restore=False)
            if not self.connected:
                self._try_reopen(announce_restore=True)
                if not self.connected:
                    return self._silence_block()
            item = self._take(self.stall_seconds if self._delivering else self.startup_seconds)
            if item is not None:
                self._delivering = True
                samples, captured_at = item
                return self._block(samples, captured_at)
            with self._cond:
                if self._closed:
                    return None
            self._lose()

    def close(self) -> None:
        """Stop capturing; a blocked :meth:`read` returns None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._close_stream()

    # -- device handling -------------------------------------------------------------------------

    def _open(self) -> str | None:
        """Open and start the stream; returns None, or what went wrong in words."""
        try:
            sd = self._backend if self._backend is not None else _sounddevice()
        except DeviceError as exc:
            return str(exc)
        try:
            stream = sd.InputStream(
                device=self._device, samplerate=self.sample_rate, channels=1, dtype="float32",
                blocksize=self.block_size, latency="low", callback=self._callback, finished_callback=self._finished,
            )
            stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudio reports a missing device in many ways
            return self._describe_open_failure(exc)
        with self._cond:
            self._stream = stream
            self._stream_failed = False
            self._delivering = False
            self._last_block_at = self._now()
        log.info("microphone open: %s at %d Hz, blocks of %d", self.device_name, self.sample_rate, self.block_size)
        return None

    def _describe_open_failure(self, exc: BaseException) -> str:
        text = str(exc)
        if self._device in (None, "") and ("-1" in text or "no default" in text.lower() or "querying" in text.lower()):
            return ("No microphone was found. Plug one in, or check that the sound system (PulseAudio or PipeWire) "
                    "is running.")
        if "No input device matching" in text or "does not exist" in text.lower() or "Invalid device" in text:
            return f"The microphone {self._device!r} is not connected. Plug it in or pick another microphone."
        return (f"{self.device_name.capitalize()} could not be opened ({text}). Close other programs that use it, "
                "or pick another microphone.")

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        captured_at = self._now()
        if status and getattr(status, "input_overflow", False):
            self.overflows += 1
        samples = np.array(indata[:frames, 0], dtype=np.float32, copy=True)
        with self._cond:
            if len(self._queue) >= QUEUE_BLOCKS:
                self._queue.popleft()
                self.dropped_blocks += 1
            self._queue.append((samples, captured_at))
            self._cond.notify_all()

    def _finished(self) -> None:
        """PortAudio ended the stream (device error or close)."""
        with self._cond:
            self._stream_failed = True
            self._cond.notify_all()

    def _take(self, timeout: float) -> tuple[np.ndarray, float] | None:
        with self._cond:
            deadline = time.monotonic() + timeout
            while not self._queue:
                if self._closed or self._stream_failed or self._reopen_requested:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.05))
            return self._queue.popleft()

    def _lose(self) -> None:
        with self._cond:
            if self._reopen_requested:
                return
        self._close_stream()
        self._next_retry = self._now() + self.retry_seconds
        self._announce("lost", f"{self.device_name.capitalize()} stopped sending sound (unplugged?). Podium keeps "
                               "the avatar idle and reconnects when it is back.")

    def _try_reopen(self, announce_restore: bool) -> None:
        if self._now() < self._next_retry:
            return
        problem = self._open()
        if problem is None:
            if announce_restore and self._state in ("unavailable", "lost"):
                self._announce("restored", f"{self.device_name.capitalize()} is back.")
            elif not announce_restore:
                self._announce("opened", f"Listening to {self.device_name}.")
            return
        self._next_retry = self._now() + self.retry_seconds
        if not announce_restore:
            self._announce("unavailable", problem + " Podium keeps the avatar idle until it can listen.")

    def _close_stream(self) -> None:
        with self._cond:
            stream, self._stream = self._stream, None
            self._queue.clear()
        if stream is None:
            return
        for step in ("stop", "close"):
            try:
                getattr(stream, step)()
            except Exception:  # noqa: BLE001 - a vanished device may fail to stop; it is gone either way
                log.debug("microphone %s failed", step, exc_info=True)

    def _announce(self, kind: MicrophoneEventKind, message: str) -> None:
        self._state = kind
        log.info("microphone %s: %s", kind, message)
        if self.on_event is not None:
            self.on_event(MicrophoneEvent(kind, message))

    # -- blocks ----------------------------------------------------------------------------------

    def _block(self, samples: np.ndarray, captured_at: float) -> AudioBlock:
        peak = float(np.max(np.abs(samples))) if samples.size else 0.0
        self._level_db = 20.0 * math.log10(peak) if peak > 10 ** (SILENT_DB / 20) else SILENT_DB
        block = AudioBlock(samples=samples, sample_rate=self.sample_rate, start=self._position, captured_at=captured_at)
        self._position += samples.size
        self._last_block_at = captured_at
        return block

    def _silence_block(self) -> AudioBlock:
        """One block of silence, due one block after the previous one (so sample numbers follow the wall clock)."""
        due = self._last_block_at + self.block_size / self.sample_rate
        wait = due - self._now()
        if wait > 0:
            self._sleep(wait)
        return self._block(np.zeros(self.block_size, dtype=np.float32), due)
