"""Builds the motion stage for a stream from the user's style settings."""

from __future__ import annotations

from inference.motion.energy import EnergyMotion
from inference.motion.style import MotionStyle
from inference.stages import MotionStream


def create_motion(style: MotionStyle, sample_rate: int, fps: float) -> MotionStream:
    """The motion stage for audio at ``sample_rate``, producing frames at ``fps``."""
    style = style.validated()
    return EnergyMotion(sample_rate, fps=fps, framing=style.framing, seed=style.seed)
