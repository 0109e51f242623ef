"""Shared audio for the motion tests: real speech from the bundled demo, synthetic signals, a feeding helper."""

from __future__ import annotations

import numpy as np
import pytest

from inference.sources.audio_file import ENGINE_SAMPLE_RATE, AudioFileSource
from inference.types import AudioBlock, KeypointFrame

RATE = ENGINE_SAMPLE_RATE
BLOCK = 960  # 20 ms, as the engine delivers


@pytest.fixture(scope="session")
def demo_speech48(demo_audio) -> np.ndarray:  # noqa: ANN001 - fixture from tests/conftest.py
    """The bundled demo speech (27.5 s of LibriVox read speech) at 48 kHz."""
    source = AudioFileSource(demo_audio)
    parts = []
    while (block := source.read()) is not None:
        parts.append(block.samples)
    source.close()
    return np.concatenate(parts)


@pytest.fixture(scope="session")
def sentence48(demo_speech48: np.ndarray) -> np.ndarray:
    """"he was not an ill disposed young man" (7.8-10.8 s of the demo) with 0.4 s of its silence on each side."""
    return demo_speech48[int(7.4 * RATE) : int(11.2 * RATE)].copy()


def feed(motion, audio: np.ndarray, block: int = BLOCK, captured_at: float | None = None) -> list[KeypointFrame]:  # noqa: ANN001
    """Feed ``audio`` in blocks, then finish; returns every frame."""
    frames: list[KeypointFrame] = []
    for start in range(0, len(audio), block):
        stamp = None if captured_at is None else captured_at + (start + block) / RATE
        motion.accept_audio(AudioBlock(audio[start : start + block], RATE, start, stamp))
        frames += motion.pop_frames()
    return frames + motion.finish()


def keypoints_of(frames: list[KeypointFrame]) -> np.ndarray:
    return np.stack([f.keypoints for f in frames])


def tone(seconds: float, freqs: tuple[float, ...], amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)).astype(np.float32)
