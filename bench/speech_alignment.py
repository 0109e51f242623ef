"""Forced phone alignment of the bundled demo speech (ground truth for lip-sync benchmarks).

Usage: python main.py bench speech_alignment [--clip N]

pocketsphinx (its bundled en-us model) aligns each transcribed clip of ``assets/audio/demo_speech.flac``
to phones in 10 ms steps, offline. The benchmarks of the motion stage and of the renderers share this
module: :func:`demo_clips` and :func:`align_phones` give phone timings, :func:`openness_track` turns them
into the expected mouth opening per video frame, :func:`silence_track` marks the frames where the mouth
should be closed.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import numpy as np

from inference.motion import phonemes
from inference.motion.visemes import phone_openness
from inference.paths import demo_audio
from inference.sources.audio_file import AudioFileSource

#: The aligner's sample rate.
ALIGN_RATE = 16_000

@dataclass(frozen=True)
class Phone:
    """One aligned phone: ARPAbet ``name`` (``SIL`` for silence) from ``start`` to ``end`` seconds."""

    name: str
    start: float
    end: float


@dataclass(frozen=True)
class Clip:
    """One transcribed clip of the demo speech: ``samples`` (float32, 16 kHz mono) starting at ``start``
    seconds into the demo file."""

    samples: np.ndarray
    start: float
    text: str

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / ALIGN_RATE


def demo_clips() -> list[Clip]:
    """The clips of ``assets/audio/demo_speech.flac`` with their transcripts (``demo_speech.json``)."""
    meta = json.loads(demo_audio().with_suffix(".json").read_text(encoding="utf-8"))
    source = AudioFileSource(demo_audio(), sample_rate=ALIGN_RATE)
    try:
        parts = []
        while (block := source.read()) is not None:
            parts.append(block.samples)
    finally:
        source.close()
    audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    clips = []
    for seg in meta["segments"]:
        a, b = int(round(seg["start"] * ALIGN_RATE)), int(round(seg["end"] * ALIGN_RATE))
        clips.append(Clip(samples=audio[a:b].astype(np.float32), start=float(seg["start"]), text=seg["text"]))
    return clips


def align_phones(samples: np.ndarray, text: str, offset: float = 0.0) -> list[Phone]:
    """Force-align ``text`` to ``samples`` (float32 16 kHz mono): phones with times in seconds (+ ``offset``).

    The motion stage's own aligner (:func:`inference.motion.phonemes.align_phones`, the one offline renders
    use with a transcript), with its 10 ms hops turned into seconds.

    Raises:
        ValueError: the aligner could not align the text to the audio.
    """
    hop = 0.01  # pocketsphinx frames are 10 ms
    return [Phone(s.label, offset + s.start * hop, offset + s.end * hop) for s in phonemes.align_phones(samples, text)]


def align_demo() -> list[Phone]:
    """Phones of the whole demo speech (clips aligned one by one; the pauses between them are silence)."""
    phones: list[Phone] = []
    for clip in demo_clips():
        phones += align_phones(clip.samples, clip.text, offset=clip.start)
    return phones


def _phone_at(phones: list[Phone], times: np.ndarray) -> list[Phone | None]:
    starts = np.array([p.start for p in phones])
    idx = np.searchsorted(starts, times, side="right") - 1
    out: list[Phone | None] = []
    for t, i in zip(times, idx, strict=True):
        out.append(phones[i] if i >= 0 and phones[i].start <= t < phones[i].end else None)
    return out


def openness_track(phones: list[Phone], fps: float, frames: int) -> np.ndarray:
    """Expected mouth opening (0..1) of each video frame, from the phone under the frame's middle (the viseme
    table of :mod:`inference.motion.visemes`: bilabials and silence closed, open vowels widest).

    Returns float64 ``[frames]``; frames outside every phone are silence (0).
    """
    times = (np.arange(frames) + 0.5) / fps
    return np.array([phone_openness(p.name) if p is not None else 0.0 for p in _phone_at(phones, times)])


def silence_track(phones: list[Phone], fps: float, frames: int, margin: float = 0.12) -> np.ndarray:
    """Frames in silence, at least ``margin`` seconds from any speech phone: bool ``[frames]``."""
    times = (np.arange(frames) + 0.5) / fps
    speech = np.zeros(frames, bool)
    for p in phones:
        if p.name != "SIL":
            speech |= (times > p.start - margin) & (times < p.end + margin)
    return ~speech


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="main.py bench speech_alignment", description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=int, default=None, help="print only this clip (0-based)")
    args = parser.parse_args(argv)
    for i, clip in enumerate(demo_clips()):
        if args.clip is not None and i != args.clip:
            continue
        t0 = time.perf_counter()
        phones = align_phones(clip.samples, clip.text, offset=clip.start)
        took = time.perf_counter() - t0
        print(f"clip {i} ({clip.start:.2f}-{clip.end:.2f} s, aligned in {took:.2f} s): {clip.text}")
        print("  " + " ".join(f"{p.name}@{p.start:.2f}" for p in phones))
    return 0
