"""Bad audio never breaks the motion stage: it keeps up, keeps keypoints in range and never raises."""

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest

from inference import keypoints as kp
from inference.motion import factory, phonemes
from inference.motion.energy import EnergyMotion
from inference.motion.readout import mouth_opening
from inference.motion.speech import SpeechMotion
from inference.motion.style import MotionStyle
from inference.sources.audio_file import AudioFileSource
from inference.types import AudioBlock
from tests.conftest import run_isolated, write_wav
from tests.motion.conftest import RATE, feed, keypoints_of, tone

CLOSED = 0.025


def check_frames(frames: list, audio_len: int) -> np.ndarray:
    assert [f.index for f in frames] == list(range(int(np.ceil(audio_len * 25 / RATE))))
    k = keypoints_of(frames)
    for f in k:
        kp.validate_keypoints(f)
    visible = k[..., 2] > 0
    assert ((k[..., :2] >= 0) & (k[..., :2] <= 1))[visible].all()
    return k


def run(audio: np.ndarray, **kwargs) -> np.ndarray:  # noqa: ANN003
    return check_frames(feed(SpeechMotion(RATE, 25.0, **kwargs), audio), len(audio))


def test_clipped_speech(sentence48):
    k = run(np.clip(sentence48 * 30.0, -1.0, 1.0))
    opening = mouth_opening(k)
    assert opening.max() > 0.05 and (opening[-5:] < CLOSED).all()


def test_steady_noise_becomes_silence_within_two_seconds():
    noise = (np.random.default_rng(0).standard_normal(6 * RATE) * 0.1).astype(np.float32)
    opening = mouth_opening(run(noise))
    assert (opening[int(2.5 * 25) :] < CLOSED).mean() > 0.95


def test_music_like_tones():
    chords = [(220, 277, 330), (196, 247, 294), (175, 220, 262), (247, 311, 370)]
    music = np.concatenate([tone(0.5, c) * np.linspace(1, 0.3, RATE // 2, dtype=np.float32) for c in chords * 3])
    run(music)


def test_dc_offset_changes_nothing_that_matters(sentence48):
    clean = mouth_opening(run(sentence48))
    shifted = mouth_opening(run(sentence48 + np.float32(0.3)))
    assert np.corrcoef(clean, shifted)[0, 1] > 0.9
    assert (mouth_opening(run(np.full(2 * RATE, 0.4, np.float32))) < CLOSED).all()


def test_phone_quality_audio(sentence48, tmp_path):
    # 8 kHz telephone audio, read back through the engine's source at 48 kHz
    path = write_wav(tmp_path / "phone.wav", sentence48[::6], 8000)
    source = AudioFileSource(path)
    parts = []
    while (block := source.read()) is not None:
        parts.append(block.samples)
    audio = np.concatenate(parts)
    motion = SpeechMotion(RATE, 25.0, record_trace=True)
    opening = mouth_opening(check_frames(feed(motion, audio), len(audio)))
    assert opening.max() > 0.05
    assert len({t.viseme for t in motion.trace}) >= 5  # still recognises a variety of mouth shapes


def test_non_finite_empty_and_huge_blocks(sentence48):
    motion = SpeechMotion(RATE, 25.0)
    bad = sentence48[:RATE].copy()
    bad[100:200] = np.nan
    bad[300] = np.inf
    bad[400] = -np.inf
    frames = []
    blocks = (bad, np.zeros(0, np.float32), sentence48[RATE:], np.ones(7, np.float32) * 5)
    for block in blocks:
        motion.accept_audio(AudioBlock(block, RATE, 0))
        frames += motion.pop_frames()
    frames += motion.finish()
    check_frames(frames, sum(len(b) for b in blocks))
    assert motion.finish() == []  # finishing twice gives nothing more
    motion.accept_audio(AudioBlock(np.zeros(960, np.float32), RATE, 0))  # audio after the end is ignored
    assert motion.pop_frames() == []


def rss_kb() -> int:
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def long_stream_measurements(demo_audio: Path) -> dict[str, object]:
    """Feed two laps of speech, silence, noise and 13 s of unbroken speech block by block, keeping no frames."""
    source = AudioFileSource(demo_audio)
    demo_speech48 = source.read_all()
    source.close()
    rng = np.random.default_rng(0)
    pieces = [demo_speech48[: 6 * RATE], np.zeros(2 * RATE, np.float32),
              (rng.standard_normal(2 * RATE) * 0.05).astype(np.float32), demo_speech48[12 * RATE : 18 * RATE]]
    unbroken = np.concatenate([demo_speech48[: 7 * RATE], demo_speech48[int(7.8 * RATE) : int(13.8 * RATE)]])
    motion = SpeechMotion(RATE, 25.0, MotionStyle(gesture_amount=1.0))
    position, frames, marks, in_order = 0, 0, [], True
    cpu0 = time.thread_time()
    for _lap in range(2):
        for piece in [*pieces, unbroken]:
            for start in range(0, len(piece), 960):
                motion.accept_audio(AudioBlock(piece[start : start + 960], RATE, position))
                position += len(piece[start : start + 960])
                for f in motion.pop_frames():
                    in_order &= f.index == frames
                    frames += 1
        marks.append(rss_kb())
    return {"frames": frames, "in_order": in_order, "cpu": time.thread_time() - cpu0,
            "audio_seconds": position / RATE, "marks": marks, "track": len(motion._phones.track),
            "pending": len(motion._pending_events)}


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc to read the process memory")
def test_a_long_stream_keeps_up_with_bounded_memory(demo_audio):
    """A long file, simulated cheaply (two laps show what two hours would: the stage's state is fixed-size
    rings). Measured in a fresh interpreter, so other tests' threads and memory do not count."""
    m = run_isolated(long_stream_measurements, demo_audio)
    assert m["in_order"] and m["frames"] >= int(m["audio_seconds"] * 25) - 5
    assert m["cpu"] < 0.5 * m["audio_seconds"], f"{m['cpu']:.1f} s of CPU for {m['audio_seconds']:.0f} s of audio"
    assert m["marks"][1] - m["marks"][0] < 8_000, m["marks"]  # the second lap adds (almost) nothing
    assert m["track"] < 400 and m["pending"] < 50


def test_a_failing_recogniser_falls_back_to_loudness(sentence48, monkeypatch, caplog):
    motion = SpeechMotion(RATE, 25.0, record_trace=True)

    def broken(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("decoder exploded")

    monkeypatch.setattr(motion._phones, "feed", broken)
    with caplog.at_level(logging.WARNING):
        k = check_frames(feed(motion, sentence48), len(sentence48))
    assert "phone recognition failed (decoder exploded)" in caplog.text
    assert mouth_opening(k).max() > 0.05 and (mouth_opening(k)[-5:] < CLOSED).all()


def test_without_pocketsphinx_the_factory_falls_back_to_energy(monkeypatch, caplog):
    monkeypatch.setattr(phonemes, "availability", lambda: (False, "pocketsphinx is not installed"))
    with caplog.at_level(logging.WARNING):
        motion = factory.create_motion(MotionStyle(), RATE, 25.0)
    assert isinstance(motion, EnergyMotion)
    assert "pocketsphinx is not installed" in caplog.text
    assert isinstance(factory.create_motion(MotionStyle(), RATE, 25.0, speech=False), EnergyMotion)


def test_factory_builds_speech_motion_by_default():
    motion = factory.create_motion(MotionStyle(), RATE, 25.0)
    assert isinstance(motion, SpeechMotion) and motion.lookahead_seconds == pytest.approx(0.1)
    offline = factory.create_motion(MotionStyle(), RATE, 25.0, mode="offline", transcript="hello")
    assert isinstance(offline, SpeechMotion) and offline.mode == "offline"
