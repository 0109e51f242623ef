"""Energy-driven motion: the simplest streaming audio → keypoints stage.

The jaw follows the loudness of the voice (normalised against a running noise
floor and peak), the eyes blink at random natural intervals, the shoulders
breathe and the head sways a little; the hands rest. It needs no speech
recogniser and has no look-ahead; it is the fallback when phoneme-driven motion
(:mod:`inference.motion.speech`) is unavailable, behind the same interface
(including the thread-safe :meth:`EnergyMotion.set_style`).
"""

from __future__ import annotations

import math
import threading

import numpy as np

from inference.errors import ConfigError
from inference.motion.dynamics import Drift, reseed, seeded_generators
from inference.motion.idle import Blinker, Breather
from inference.motion.rig import Framing, RigControls, pose_keypoints
from inference.motion.style import MotionStyle
from inference.types import AudioBlock, KeypointFrame


class EnergyMotion:
    """Streaming loudness → jaw opening, plus idle life (blinks, breathing, sway).

    Args:
        sample_rate: rate of the incoming audio.
        fps: output frame rate.
        style: framing, seed and idle energy are used (a fixed seed gives identical output).
    """

    lookahead_seconds = 0.0

    def __init__(self, sample_rate: int, fps: float = 25.0, style: MotionStyle | None = None) -> None:
        self.sample_rate = int(sample_rate)
        self.fps = float(fps)
        self.style = (style or MotionStyle()).validated()
        self._lock = threading.Lock()
        self._pending: MotionStyle | None = None
        self.reset()

    def set_style(self, style: MotionStyle) -> None:
        """Change the style from any thread; the next frame uses it."""
        style = style.validated()
        with self._lock:
            self._pending = style

    def reset(self) -> None:
        self.framing = Framing.named(self.style.framing)
        rngs = seeded_generators(self.style.seed, 3)
        self._rngs = rngs
        self._blinker = Blinker(rngs[0])
        self._breather = Breather(rngs[1])
        self._sway = Drift(rngs[2], timescale=3.0, size=3)
        self._received = 0
        self._next_frame = 0
        self._frame_power = 0.0  # sum of squares of the current frame's samples so far
        self._frame_count = 0
        self._rms: list[float] = []  # RMS of frames complete but not yet emitted
        self._floor = 1e-4
        self._peak = 1e-2
        self._jaw = 0.0
        self._heard_at: float | None = None

    def _frame_end(self, index: int) -> int:
        return int(round((index + 1) * self.sample_rate / self.fps))

    def accept_audio(self, block: AudioBlock) -> None:
        """Take a block of audio; never raises on its content.

        Raises:
            ConfigError: the block's sample rate differs from the stream's.
        """
        if block.sample_rate != self.sample_rate:
            raise ConfigError(f"the motion stage expects {self.sample_rate} Hz audio, got {block.sample_rate} Hz")
        x = block.samples
        pos = 0
        while pos < len(x):
            boundary = self._frame_end(self._next_frame + len(self._rms))
            take = min(len(x) - pos, boundary - self._received)
            part = x[pos : pos + take]
            power = float(np.dot(part, part))
            self._frame_power += power if math.isfinite(power) else 0.0
            self._frame_count += take
            self._received += take
            pos += take
            if self._received == boundary:
                self._rms.append(math.sqrt(min(1.0, self._frame_power / max(1, self._frame_count))))
                self._frame_power, self._frame_count = 0.0, 0
        if block.captured_at is not None:
            self._heard_at = block.captured_at

    def pop_frames(self) -> list[KeypointFrame]:
        frames = [self._make_frame(rms) for rms in self._rms]
        self._rms.clear()
        return frames

    def finish(self) -> list[KeypointFrame]:
        frames = self.pop_frames()
        if self._frame_count:
            rms = math.sqrt(min(1.0, self._frame_power / self._frame_count))
            self._frame_power, self._frame_count = 0.0, 0
            frames.append(self._make_frame(rms))
        return frames

    def _make_frame(self, rms: float) -> KeypointFrame:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None and pending != self.style:
            if pending.seed != self.style.seed:
                reseed(self._rngs, pending.seed)
            self.style = pending
            self.framing = Framing.named(pending.framing)
        index = self._next_frame
        dt = 1.0 / self.fps
        # running noise floor (rises slowly, falls fast) and peak (falls slowly)
        self._floor = max(1e-5, min(rms, self._floor * math.exp(0.6 * dt)) if rms > 0 else self._floor)
        self._peak = max(rms, self._peak * math.exp(-0.15 * dt), self._floor * 4)
        level_db = 20 * math.log10(max(rms, 1e-6) / self._floor)
        span_db = max(6.0, 20 * math.log10(self._peak / self._floor))
        target = min(1.0, max(0.0, (level_db - 6.0) / (span_db - 6.0 + 1e-6)))
        if rms < 10 ** (-62 / 20):
            target = 0.0
        # fast attack, quick release: the mouth closes within 100 ms of silence
        self._jaw += (target - self._jaw) * (0.65 if target > self._jaw else 0.75)
        t = (index + 0.5) * dt
        idle = 0.3 + 0.7 * self.style.idle_energy
        sway = self._sway.step(dt) * idle
        speaking = target > 0.2
        controls = RigControls(
            jaw_open=0.85 * self._jaw,
            blink=self._blinker.value(t, speaking, self.style.idle_energy),
            brow_raise=0.25 * max(0.0, target - 0.6) * (0.5 + self.style.expressiveness),
            head_yaw=0.05 * self.style.head_motion * float(sway[0]),
            head_pitch=0.03 * float(sway[1]) + 0.04 * self._jaw * self.style.head_motion,
            head_roll=0.02 * float(sway[2]),
            shoulder_lift=0.035 * self._breather.value(t, dt, speaking),
        )
        frame = KeypointFrame(keypoints=pose_keypoints(controls, self.framing), index=index, fps=self.fps,
                              audio_heard_at=self._heard_at)
        self._next_frame += 1
        return frame
