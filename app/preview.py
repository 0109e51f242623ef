"""An idle preview: the motion stage fed with silence, drawn frame by frame for the window."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inference.motion.factory import create_motion
from inference.motion.style import MotionStyle
from inference.render.factory import create_renderer
from inference.sources.audio_file import ENGINE_SAMPLE_RATE
from inference.sources.portrait import load_portrait
from inference.types import AudioBlock


class IdlePreview:
    """Produces one preview frame per call, as the avatar idles in silence."""

    def __init__(self, portrait: Path, style: MotionStyle, size: int = 512, fps: float = 25.0) -> None:
        self.motion = create_motion(style, ENGINE_SAMPLE_RATE, fps)
        self.renderer = create_renderer("pose-map", (size, size), overlay_reference=True)
        self.renderer.set_reference(load_portrait(portrait))
        self.renderer_name = self.renderer.name
        self._samples_per_frame = int(round(ENGINE_SAMPLE_RATE / fps))
        self._silence = np.zeros(self._samples_per_frame, dtype=np.float32)
        self._position = 0

    def next_frame(self) -> np.ndarray:
        frames = []
        while not frames:
            block = AudioBlock(self._silence, ENGINE_SAMPLE_RATE, self._position)
            self._position += self._samples_per_frame
            self.motion.accept_audio(block)
            frames = self.motion.pop_frames()
        return self.renderer.render(frames[-1:])[0].rgb
