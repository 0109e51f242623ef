"""Delayed audio out: the microphone, played late enough to match the avatar's video.

The avatar's video runs a little behind the voice. A meeting app that takes its
microphone from a virtual device (a PulseAudio null sink's monitor, VB-Cable,
BlackHole) hears Podium's copy of the voice instead, delayed to match.

The delay follows the measured video latency (``target_delay``): each block the
output device pulls is read from the buffered voice at a rate a little above
or below 1 (at most 2 %, by linear interpolation) until the delay of what plays
(the time since that sample was captured, plus the device's own latency)
matches the target within a few milliseconds. Large jumps (a stall, a restart)
are taken at once: silence is inserted or old audio skipped.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from inference.errors import DeviceError, SinkError, StopReason
from inference.types import AudioBlock, VideoFrame

log = logging.getLogger(__name__)

#: Errors below this (seconds) are left alone.
DEADBAND = 0.004
#: Largest playback-rate change used to steer the delay (2 %).
MAX_RATE_CHANGE = 0.02
#: Errors beyond this (seconds) are corrected at once by skipping audio or inserting silence.
JUMP = 0.08
#: Default delay until the first video latency is known.
DEFAULT_DELAY = 0.15
#: Never buffer more than this many seconds (older audio is dropped).
MAX_BUFFER_SECONDS = 2.0


class DelayedAudioOut:
    """Plays the stream's audio into an output device, delayed by ``target_delay()`` seconds.

    Args:
        device: output device index or name (e.g. a PulseAudio null sink); None for the default output.
        target_delay: returns the delay to aim at in seconds (the video latency), or None if not known yet.
        backend: the sounddevice module or a stand-in with ``OutputStream`` (tests).
        now: host time source (the same clock as the blocks' ``captured_at``).
    """

    name = "audio-out"
    wants_audio = True

    def __init__(self, device: int | str | None = None, *, target_delay: Callable[[], float | None] | None = None,
                 backend: Any = None, now: Callable[[], float] = time.monotonic) -> None:
        self.device = device
        self.target_delay = target_delay or (lambda: None)
        self._backend = backend
        self._now = now
        self._lock = threading.Lock()
        self._blocks: collections.deque[AudioBlock] = collections.deque()
        self._read_pos = 0.0  # fractional sample index of the next sample to play
        self._playing = False  # False until the buffered voice is old enough to start (and after an underrun)
        self._stream: Any = None
        self.sample_rate = 0
        self.underruns = 0
        #: (host time, measured delay - target delay) of recent device pulls, in seconds
        self.errors: collections.deque[tuple[float, float]] = collections.deque(maxlen=500)
        self.last_delay: float | None = None
        #: end (in samples) of the newest audio received
        self.received_until = 0

    def open(self, size: tuple[int, int], fps: float, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        if self._backend is None:
            from inference.sources.microphone import _sounddevice

            backend = _sounddevice()
        else:
            backend = self._backend
        try:
            self._stream = backend.OutputStream(device=self.device, samplerate=sample_rate, channels=1,
                                                dtype="float32", blocksize=int(sample_rate * 0.01),
                                                latency="low", callback=self._callback)
            self._stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudio reports a missing device in many ways
            where = "the default output" if self.device in (None, "") else f"the output {self.device!r}"
            raise DeviceError(
                f"The delayed voice cannot play into {where} ({exc}). Pick another output, or create a virtual "
                "microphone (Linux: pactl load-module module-null-sink sink_name=podium_mic; Windows: VB-Cable; "
                "macOS: BlackHole) and pick it."
            ) from exc
        log.info("delayed audio out open on %s", self.device or "the default output")

    def write_video(self, frame: VideoFrame) -> None:
        """Video is the camera's business."""

    def write_audio(self, block: AudioBlock) -> None:
        if block.captured_at is None:
            return  # only live audio has a capture time to delay from
        with self._lock:
            if not self._blocks:
                self._read_pos = float(block.start)
            self._blocks.append(block)
            self.received_until = block.end
            while self._blocks and self._blocks[-1].end - self._blocks[0].end > MAX_BUFFER_SECONDS * block.sample_rate:
                self._blocks.popleft()

    # -- the device's thread -----------------------------------------------------------------------

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        outdata[:, 0] = self.pull(frames)

    def pull(self, frames: int) -> np.ndarray:
        """The next ``frames`` samples to play (float32), steering the delay toward the target."""
        out = np.zeros(frames, dtype=np.float32)
        now = self._now()
        stream = self._stream
        device_latency = float(getattr(stream, "latency", 0.0) or 0.0) if stream is not None else 0.0
        target = self.target_delay()
        target = DEFAULT_DELAY if target is None else float(target)
        with self._lock:
            self._drop_played()
            if not self._blocks:
                if self._playing:
                    self.underruns += 1
                self._playing = False
                return out
            captured = self._captured_at(self._read_pos)
            delay = now + device_latency - captured
            error = delay - target
            self.last_delay = delay
            self.errors.append((now, error))
            if error < -JUMP:
                self._playing = False  # far too early: wait again, as at the start
            if not self._playing and error < -DEADBAND:
                return out  # silence until the voice is as old as the picture
            if error > JUMP or (not self._playing and error > DEADBAND):
                # far too late, or about to start late: skip ahead at once (before starting, nobody hears it)
                self._read_pos += error * self.sample_rate
                self._drop_played()
                if not self._blocks:
                    return out
                error = 0.0
            self._playing = True
            rate = 1.0
            if abs(error) > DEADBAND:
                rate = 1.0 + float(np.clip(error * 2.0, -MAX_RATE_CHANGE, MAX_RATE_CHANGE))
            positions = self._read_pos + np.arange(frames) * rate
            available_end = self._blocks[-1].end - 1
            playable = positions <= available_end
            if not playable.all():
                self.underruns += 1
            out[playable] = self._samples_at(positions[playable])
            self._read_pos = float(min(self._read_pos + frames * rate, self._blocks[-1].end))
        return out

    def _drop_played(self) -> None:
        while self._blocks and self._blocks[0].end <= int(self._read_pos):
            self._blocks.popleft()
        if self._blocks and self._read_pos < self._blocks[0].start:
            self._read_pos = float(self._blocks[0].start)

    def _captured_at(self, position: float) -> float:
        for block in self._blocks:
            if position < block.end:
                return float(block.captured_at) - (block.end - position) / block.sample_rate
        last = self._blocks[-1]
        return float(last.captured_at)

    def _samples_at(self, positions: np.ndarray) -> np.ndarray:
        start = self._blocks[0].start
        joined = np.concatenate([b.samples for b in self._blocks])
        index = positions - start
        return np.interp(index, np.arange(joined.size), joined).astype(np.float32)

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception as exc:  # noqa: BLE001 - a vanished output may fail to stop
                raise SinkError(f"The delayed voice output stopped badly ({exc})", StopReason.DEVICE_LOST) from exc
        with self._lock:
            self._blocks.clear()

    def abort(self) -> None:
        try:
            self.close()
        except SinkError:
            log.debug("closing the delayed audio out failed", exc_info=True)
