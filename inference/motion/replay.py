"""Replaying a saved keypoint stream as the motion stage, in step with the audio.

:class:`ReplayMotion` is a :class:`inference.stages.MotionStream` that emits the
frames of a :class:`inference.keypoint_io.KeypointStream` (a motion saved
earlier, possibly edited) as the audio arrives: frame ``i`` once the audio up
to its end has been accepted. When the audio is longer than the motion, the
last frame is held.
"""

from __future__ import annotations

from inference.errors import ConfigError
from inference.keypoint_io import KeypointStream
from inference.motion.style import MotionStyle
from inference.types import AudioBlock, KeypointFrame


class ReplayMotion:
    """Plays ``stream`` at its own frame rate against audio at ``sample_rate``.

    Raises:
        ConfigError: the stream has no frames.
    """

    lookahead_seconds = 0.0

    def __init__(self, stream: KeypointStream, sample_rate: int) -> None:
        if len(stream) == 0:
            raise ConfigError("the keypoint stream has no frames to play")
        self.stream = stream
        self.fps = stream.fps
        self.sample_rate = int(sample_rate)
        self.reset()

    def reset(self) -> None:
        self._received = 0
        self._next = 0
        self._heard_at: float | None = None

    def set_style(self, style: MotionStyle) -> None:
        """A replayed motion has its style baked in; the call is accepted and ignored."""
        style.validated()

    def accept_audio(self, block: AudioBlock) -> None:
        if block.sample_rate != self.sample_rate:
            raise ConfigError(f"the motion stage expects {self.sample_rate} Hz audio, got {block.sample_rate} Hz")
        self._received += len(block.samples)
        if block.captured_at is not None:
            self._heard_at = block.captured_at

    def _frame_edge(self, index: int) -> int:
        return int(round(index * self.sample_rate / self.fps))

    def pop_frames(self) -> list[KeypointFrame]:
        frames = []
        while self._frame_edge(self._next + 1) <= self._received:
            frames.append(self._frame(self._next))
        return frames

    def finish(self) -> list[KeypointFrame]:
        frames = self.pop_frames()
        if self._frame_edge(self._next) < self._received:
            frames.append(self._frame(self._next))
        return frames

    def _frame(self, index: int) -> KeypointFrame:
        keypoints = self.stream.keypoints[min(index, len(self.stream) - 1)]
        self._next += 1
        return KeypointFrame(keypoints, index=index, fps=self.fps, audio_heard_at=self._heard_at)
