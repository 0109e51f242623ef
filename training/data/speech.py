"""Real speech for driving the motion stage, split into training and held-out clips.

The bundled demo speech (``assets/audio/demo_speech.flac``: five public-domain
LibriVox sentences, the same recordings as pocketsphinx-testdata's ``librivox``
folder) is always available: its first four sentences are training speech and
its last sentence ("he might even have been made amiable himself") is held out.
When Debian's pocketsphinx-testdata is installed, its ``cards`` recordings add
more voices (001-004 train, 005 held out). Held-out speech never drives a
training stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.errors import InputFileError
from inference.paths import demo_audio
from inference.sources.audio_file import AudioFileSource
from inference.types import AudioBlock

SPLITS: tuple[str, ...] = ("train", "heldout")
POCKETSPHINX_DATA = Path("/usr/share/pocketsphinx/test/data")


@dataclass(frozen=True)
class SpeechClip:
    """A stretch of one audio file: ``start``..``end`` seconds (``end`` None = to the end of the file)."""

    name: str
    path: Path
    start: float = 0.0
    end: float | None = None


def _demo_split() -> float:
    """Where the held-out part of the demo speech begins (seconds): between its 4th and 5th sentence."""
    info = json.loads(demo_audio().with_suffix(".json").read_text(encoding="utf-8"))
    segments = info["segments"]
    return (segments[-2]["end"] + segments[-1]["start"]) / 2.0


def speech_clips(split: str, *, include_system: bool = True) -> list[SpeechClip]:
    """The speech clips of ``split`` ("train" or "heldout").

    Args:
        include_system: also use system speech (pocketsphinx-testdata ``cards``) when installed.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    cut = _demo_split()
    if split == "train":
        clips = [SpeechClip("demo-1-4", demo_audio(), 0.0, cut)]
        cards = ("001", "002", "003", "004")
    else:
        clips = [SpeechClip("demo-5", demo_audio(), cut, None)]
        cards = ("005",)
    if include_system:
        for card in cards:
            path = POCKETSPHINX_DATA / "cards" / f"{card}.wav"
            if path.exists():
                clips.append(SpeechClip(f"cards-{card}", path))
    return clips


def read_blocks(clip: SpeechClip) -> list[AudioBlock]:
    """The clip as engine-rate (48 kHz) audio blocks, stamped from sample 0 at the clip's start.

    Raises:
        InputFileError: the file is missing or unreadable, or the clip holds no audio.
    """
    source = AudioFileSource(clip.path)
    rate = source.sample_rate
    first = int(round(clip.start * rate))
    last = None if clip.end is None else int(round(clip.end * rate))
    blocks = []
    try:
        while (block := source.read()) is not None:
            lo, hi = max(block.start, first), block.end if last is None else min(block.end, last)
            if hi <= lo:
                if last is not None and block.start >= last:
                    break
                continue
            samples = block.samples[lo - block.start : hi - block.start]
            blocks.append(AudioBlock(samples=np.ascontiguousarray(samples), sample_rate=rate, start=lo - first))
    finally:
        source.close()
    if not blocks:
        raise InputFileError(clip.path, f"no audio between {clip.start:.2f} s and {clip.end} s",
                             "Check the clip's start and end times")
    return blocks

