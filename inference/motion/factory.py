"""Builds the motion stage for a stream from the user's style settings.

:func:`create_motion` returns the speech-driven :class:`~inference.motion.speech.SpeechMotion`
(phonemes → lips, prosody → head and hands) when pocketsphinx is available, and
the energy-only :class:`~inference.motion.energy.EnergyMotion` otherwise. Both
are :class:`~inference.stages.MotionStream` s with a thread-safe
``set_style(style)`` that the GUI may call while the stream runs.
"""

from __future__ import annotations

import logging

from inference.errors import ModelLoadError
from inference.motion import phonemes
from inference.motion.energy import EnergyMotion
from inference.motion.speech import DEFAULT_LOOKAHEAD, Mode, SpeechMotion
from inference.motion.style import MotionStyle
from inference.stages import MotionStream

log = logging.getLogger(__name__)


def create_motion(style: MotionStyle, sample_rate: int, fps: float, *, mode: Mode = "live",
                  transcript: str | None = None, lookahead: float = DEFAULT_LOOKAHEAD,
                  speech: bool = True) -> MotionStream:
    """The motion stage for audio at ``sample_rate``, producing frames at ``fps``.

    Args:
        style: the style knobs (validated here).
        sample_rate: rate of the incoming audio in Hz (the engine's 48 kHz).
        fps: output frame rate.
        mode: ``"live"`` (bounded look-ahead; the default) or ``"offline"`` (whole utterances, best lips;
            use it for renders of files).
        transcript: offline only: the words spoken, force-aligned for the most accurate lips.
        lookahead: live look-ahead in seconds (default 0.1).
        speech: False forces the energy-only motion (no phone recognition).

    Raises:
        ConfigError: a bad style, rate, fps, mode or look-ahead.
    """
    style = style.validated()
    if speech:
        ok, why = phonemes.availability()
        if ok:
            try:
                return SpeechMotion(sample_rate, fps, style, mode=mode, lookahead=lookahead, transcript=transcript)
            except ModelLoadError as exc:
                why = str(exc)
        log.warning("speech-driven motion is unavailable (%s); the mouth follows loudness only", why)
    return EnergyMotion(sample_rate, fps=fps, style=style)
