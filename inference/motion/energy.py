"""Energy-driven motion: the simplest streaming audio → keypoints stage.

The jaw follows the loudness of the voice (normalised against a running noise
floor and peak), the eyes blink at random natural intervals, the shoulders
breathe and the head sways a little. It needs no speech recogniser, has no
look-ahead beyond one frame, and is the fallback when phoneme-driven motion is
unavailable.
"""

from __future__ import annotations

import math

import numpy as np

from inference.motion.rig import Framing, RigControls, pose_keypoints
from inference.types import AudioBlock, KeypointFrame


class EnergyMotion:
    """Streaming loudness → jaw opening, plus idle life (blinks, breathing, sway).

    Args:
        sample_rate: rate of the incoming audio.
        fps: output frame rate.
        framing: "head-and-shoulders" or "half-body".
        seed: random seed for blinks and sway (a fixed seed gives identical output).
    """

    lookahead_seconds = 0.0

    def __init__(self, sample_rate: int, fps: float = 25.0, framing: str = "half-body", seed: int = 0) -> None:
        self.sample_rate = int(sample_rate)
        self.fps = float(fps)
        self.framing = Framing.named(framing)
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # sample index of _buffer[0]
        self._received = 0
        self._next_frame = 0
        self._floor = 1e-4
        self._peak = 1e-2
        self._jaw = 0.0
        self._next_blink = self._draw_blink_gap()
        self._blink_phase = -1.0
        self._heard_at: float | None = None

    def _draw_blink_gap(self) -> float:
        return float(self._rng.uniform(2.0, 5.5))

    def _frame_span(self, index: int) -> tuple[int, int]:
        a = int(round(index * self.sample_rate / self.fps))
        b = int(round((index + 1) * self.sample_rate / self.fps))
        return a, b

    def accept_audio(self, block: AudioBlock) -> None:
        if block.sample_rate != self.sample_rate:
            raise ValueError(f"EnergyMotion expects {self.sample_rate} Hz audio, got {block.sample_rate} Hz")
        self._buffer = np.concatenate([self._buffer, block.samples.astype(np.float32, copy=False)])
        self._received = block.end
        if block.captured_at is not None:
            self._heard_at = block.captured_at

    def pop_frames(self) -> list[KeypointFrame]:
        frames = []
        while self._frame_span(self._next_frame)[1] <= self._received:
            frames.append(self._make_frame())
        return frames

    def finish(self) -> list[KeypointFrame]:
        frames = self.pop_frames()
        if self._frame_span(self._next_frame)[0] < self._received:
            frames.append(self._make_frame())
        return frames

    def _make_frame(self) -> KeypointFrame:
        index = self._next_frame
        a, b = self._frame_span(index)
        lo, hi = a - self._buffer_start, b - self._buffer_start
        window = self._buffer[max(0, lo) : max(0, hi)]
        rms = float(np.sqrt(np.mean(window**2))) if window.size else 0.0
        # drop consumed audio
        keep_from = max(0, hi)
        self._buffer = self._buffer[keep_from:]
        self._buffer_start += keep_from
        dt = 1.0 / self.fps
        # running noise floor (rises slowly, falls fast) and peak (falls slowly)
        self._floor = min(rms, self._floor * math.exp(0.6 * dt)) if rms > 0 else self._floor
        self._floor = max(self._floor, 1e-5)
        self._peak = max(rms, self._peak * math.exp(-0.15 * dt), self._floor * 4)
        level_db = 20 * math.log10(max(rms, 1e-6) / self._floor)
        span_db = max(6.0, 20 * math.log10(self._peak / self._floor))
        target = min(1.0, max(0.0, (level_db - 6.0) / (span_db - 6.0 + 1e-6)))
        # fast attack, slower release keeps the jaw from chattering
        rate = 0.65 if target > self._jaw else 0.35
        self._jaw += (target - self._jaw) * rate
        t = index * dt
        controls = RigControls(
            jaw_open=0.85 * self._jaw,
            blink=self._blink(dt),
            brow_raise=0.25 * max(0.0, target - 0.6),
            head_yaw=0.04 * math.sin(2 * math.pi * 0.11 * t + self.seed),
            head_pitch=0.03 * math.sin(2 * math.pi * 0.07 * t + 1.3) + 0.04 * self._jaw,
            head_roll=0.02 * math.sin(2 * math.pi * 0.05 * t + 0.4),
            shoulder_lift=0.02 * (0.5 + 0.5 * math.sin(2 * math.pi * 0.25 * t)),
        )
        frame = KeypointFrame(
            keypoints=pose_keypoints(controls, self.framing), index=index, fps=self.fps, audio_heard_at=self._heard_at
        )
        self._next_frame += 1
        return frame

    def _blink(self, dt: float) -> float:
        if self._blink_phase >= 0:
            self._blink_phase += dt
            if self._blink_phase > 0.2:
                self._blink_phase = -1.0
                self._next_blink = self._draw_blink_gap()
                return 0.0
            return math.sin(math.pi * self._blink_phase / 0.2)
        self._next_blink -= dt
        if self._next_blink <= 0:
            self._blink_phase = 0.0
        return 0.0
