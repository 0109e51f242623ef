"""Typed, timestamped packets that flow between stages.

Time is counted in samples (audio) and frames (video) from the start of the
stream, so audio and video line up exactly without floating-point drift:
frame ``index`` at ``fps`` covers audio samples
``[index * rate / fps, (index + 1) * rate / fps)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inference.keypoints import validate_keypoints


@dataclass(frozen=True)
class AudioBlock:
    """A block of mono audio.

    Attributes:
        samples: float32 ``[n]``, nominally in -1..1.
        sample_rate: samples per second.
        start: index of the first sample since the stream began.
        captured_at: host ``time.monotonic()`` when the block was captured (live sources), else None.
    """

    samples: np.ndarray
    sample_rate: int
    start: int
    captured_at: float | None = None

    @property
    def end(self) -> int:
        """Index one past the last sample."""
        return self.start + len(self.samples)

    @property
    def start_seconds(self) -> float:
        return self.start / self.sample_rate


@dataclass(frozen=True)
class KeypointFrame:
    """One DWPose-134 pose frame.

    Attributes:
        keypoints: float32 ``[134, 3]`` (x, y normalised to the frame; confidence).
        index: frame number since the stream began.
        fps: frame rate of the stream.
        audio_heard_at: host ``time.monotonic()`` of the newest audio this frame depends on (live), else None.
    """

    keypoints: np.ndarray
    index: int
    fps: float
    audio_heard_at: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "keypoints", validate_keypoints(self.keypoints))

    @property
    def pts(self) -> float:
        """Presentation time in seconds."""
        return self.index / self.fps


@dataclass(frozen=True)
class VideoFrame:
    """One rendered RGB frame.

    Attributes:
        rgb: uint8 ``[H, W, 3]``.
        index: frame number since the stream began (same numbering as the keypoints).
        fps: frame rate of the stream.
        audio_heard_at: carried over from the keypoint frame, for latency measurement.
        meta: free-form per-frame information (renderer name, timings).
    """

    rgb: np.ndarray
    index: int
    fps: float
    audio_heard_at: float | None = None
    meta: dict[str, float | str] = field(default_factory=dict)

    @property
    def pts(self) -> float:
        return self.index / self.fps

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])
