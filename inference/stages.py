"""The four stage interfaces of the pipeline: source, motion, renderer, sink.

A *source* yields audio blocks, the *motion* stage turns audio into keypoint
frames, a *renderer* turns keypoint frames plus a reference portrait into RGB
frames (a renderer may carry a portrait of its own, shown when the user has chosen
none), and *sinks* consume frames and audio. Each interface is small so a stage
can be swapped without touching the others; each can run headless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from inference.types import AudioBlock, KeypointFrame, VideoFrame


@runtime_checkable
class AudioSource(Protocol):
    """Yields mono float32 audio at ``sample_rate``.

    ``read()`` blocks until a block is available and returns None at the end of
    the stream (a file ended, or the source was closed).
    """

    sample_rate: int

    @property
    def total_samples(self) -> int | None:
        """Length of the stream in samples, or None for a live source."""
        ...

    def read(self) -> AudioBlock | None: ...

    def close(self) -> None: ...


@runtime_checkable
class MotionStream(Protocol):
    """Streaming audio → keypoints, causal with a bounded look-ahead.

    Frames come out in order, numbered from 0, at ``fps``. A frame is emitted once
    the audio up to its time plus ``lookahead_seconds`` has been accepted.
    """

    fps: float
    lookahead_seconds: float

    def accept_audio(self, block: AudioBlock) -> None: ...

    def pop_frames(self) -> list[KeypointFrame]:
        """Frames that became ready since the last call (possibly none)."""
        ...

    def finish(self) -> list[KeypointFrame]:
        """End of input: every remaining frame covering the accepted audio."""
        ...

    def reset(self) -> None: ...


@runtime_checkable
class Renderer(Protocol):
    """Keypoint frames + a reference portrait → RGB frames.

    ``chunk_size`` is how many frames the renderer prefers per call (1 for
    per-frame renderers); the last call of a stream may be shorter.
    """

    name: str
    device: str
    size: tuple[int, int]
    chunk_size: int

    def set_reference(self, portrait: np.ndarray) -> None:
        """The reference portrait, RGB uint8 ``[H, W, 3]``."""
        ...

    def default_portrait(self) -> np.ndarray | None:
        """The portrait this renderer was made for (RGB uint8 ``[H, W, 3]``, not to be modified), shown when the
        user has chosen none; None when it has none of its own (the app's default portrait is shown then)."""
        ...

    def render(self, frames: Sequence[KeypointFrame]) -> list[VideoFrame]: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Consumes video frames and (optionally) audio.

    ``close()`` finishes normally (a recording is finalised); ``abort()`` is
    called on error or cancel and must leave no half-written output behind.
    """

    name: str
    wants_audio: bool

    def open(self, size: tuple[int, int], fps: float, sample_rate: int) -> None: ...

    def write_video(self, frame: VideoFrame) -> None: ...

    def write_audio(self, block: AudioBlock) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...
