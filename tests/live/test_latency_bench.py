"""The glass-to-glass benchmark with its paced microphone (the mode for machines without a sound server)."""

from __future__ import annotations

import json
import time
import wave

import numpy as np
import pytest

from bench import common, latency


def _speech_wav(path, seconds: float = 3.0, rate: int = 16_000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    voice = (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)  # syllables
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((voice * 32767).astype("<i2").tobytes())


def test_read_wav_resamples_to_the_engine_rate(tmp_path):
    _speech_wav(tmp_path / "s.wav", seconds=1.0)
    signal = latency.read_wav(tmp_path / "s.wav", rate=48_000)
    assert signal.dtype == np.float32 and abs(len(signal) - 48_000) <= 3
    assert 0.25 < float(np.abs(signal).max()) <= 0.31


def test_a_wav_that_is_not_16_bit_is_refused_with_a_message(tmp_path):
    with wave.open(str(tmp_path / "s8.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(bytes(800))
    with pytest.raises(ValueError, match="8-bit samples; give a 16-bit PCM WAV"):
        latency.read_wav(tmp_path / "s8.wav")


def test_the_paced_microphone_delivers_in_real_time_and_stamps_each_block():
    """Block k is handed over, and stamped, no earlier than the capture of its last sample would end:
    (k + 1) · 20 ms after the first read (a late read is caught up, never paced out)."""
    mic = latency.PacedMicrophone(np.arange(4800, dtype=np.float32), sample_rate=48_000, block_seconds=0.02)
    start = time.monotonic()
    blocks = [mic.read() for _ in range(5)]
    assert [b.start for b in blocks] == [0, 960, 1920, 2880, 3840]
    for k, block in enumerate(blocks):
        assert block.captured_at - start >= (k + 1) * 0.02 - 0.002, k
    assert blocks[-1].captured_at - start < 1.0  # real time, not a stall
    assert np.array_equal(blocks[1].samples, np.arange(960, 1920, dtype=np.float32))
    mic.close()
    assert mic.read() is None


def test_the_paced_benchmark_measures_the_pose_map(tmp_path, monkeypatch):
    from tests.live.fakes import RecordingCamera

    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(RecordingCamera, "keep_last", RecordingCamera.keep_last)  # the bench turns it off
    _speech_wav(tmp_path / "speech.wav")
    code = latency.main(["--microphone", "paced", "--speech", str(tmp_path / "speech.wav"), "--renderer", "pose-map",
                         "--seconds", "2", "--size", "128", "--input-latency-ms", "40", "--name", "latency-test"])
    assert code == 0
    (result,) = (tmp_path / "results").glob("*latency-test*.json")
    (row,) = json.loads(result.read_text())["figures"]["renderers"]
    glass = row["glass_to_glass"]
    assert glass["n"] >= 30 and row["skipped"] == 0
    # the motion's look-ahead (100 ms) and the added input latency (40 ms) are the floor of every frame
    assert glass["median_ms"] >= 140 and glass["p95_ms"] < 400


def test_a_missing_speech_file_is_reported(tmp_path, capsys):
    assert latency.main(["--microphone", "paced", "--speech", str(tmp_path / "none.wav")]) == 1
    assert "none.wav is missing" in capsys.readouterr().out
