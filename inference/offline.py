"""Offline rendering: an audio file and a portrait in, an MP4 out.

Every input is checked before any output is created, so a bad file fails fast
and leaves nothing behind; a failed or cancelled render deletes its partial
output (see :class:`inference.sinks.mp4.Mp4Sink`). With no portrait chosen, the
renderer shows its own (a student pack's presenter), else the bundled default.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from inference.motion.factory import create_motion
from inference.motion.style import MotionStyle
from inference.pipeline import Pipeline, PipelineResult
from inference.render.factory import create_renderer
from inference.sinks.mp4 import Mp4Sink, check_output_path
from inference.sources.audio_file import ENGINE_SAMPLE_RATE, AudioFileSource
from inference.sources.portrait import default_reference, load_portrait

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderJob:
    """One offline render.

    Attributes:
        audio: speech audio file.
        output: target .mp4 path.
        portrait: reference portrait image; None: none chosen (the renderer's own portrait, else the bundled
            default, :func:`inference.sources.portrait.default_reference`).
        renderer: renderer name or "auto".
        size: output width and height in pixels.
        fps: frame rate.
        style: motion style knobs.
        transcript: the words spoken, if known: force-aligned for the most accurate lips.
    """

    audio: Path
    output: Path
    portrait: Path | None = None
    renderer: str = "auto"
    size: int = 512
    fps: float = 25.0
    style: MotionStyle = MotionStyle()
    transcript: str | None = None


class OfflineRender:
    """Prepares and runs a :class:`RenderJob`; ``cancel()`` may be called from another thread."""

    def __init__(self, job: RenderJob, on_progress: Callable[[int, int | None], None] | None = None) -> None:
        self.job = job
        output = check_output_path(job.output)
        chosen = load_portrait(job.portrait) if job.portrait is not None else None
        source = AudioFileSource(job.audio, sample_rate=ENGINE_SAMPLE_RATE)
        try:
            # A file has all its future: decode whole utterances (or align the transcript) for the best lips.
            motion = create_motion(job.style, source.sample_rate, job.fps, mode="offline", transcript=job.transcript)
            renderer = create_renderer(job.renderer, (job.size, job.size), portrait_chosen=chosen is not None)
        except BaseException:
            source.close()
            raise
        try:
            renderer.set_reference(chosen if chosen is not None else default_reference(renderer))
            sink = Mp4Sink(output)
        except BaseException:
            source.close()
            renderer.close()
            raise
        self.expected_frames = self._expected(source, job.fps)
        self.renderer = renderer
        self.pipeline = Pipeline(source, motion, renderer, [sink], mode="offline", on_progress=on_progress)

    @staticmethod
    def _expected(source: AudioFileSource, fps: float) -> int | None:
        total = source.total_samples
        return None if total is None else int(round(total * fps / source.sample_rate))

    def run(self) -> PipelineResult:
        try:
            return self.pipeline.run()
        finally:
            self.renderer.close()

    def cancel(self) -> None:
        self.pipeline.stop()
