"""Test-wide set-up: offscreen Qt, private config/data folders, shared media fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Qt must never try a real display in tests (an empty QT_QPA_PLATFORM would make it try xcb and abort).
if not os.environ.get("QT_QPA_PLATFORM", "").strip():
    os.environ["QT_QPA_PLATFORM"] = "offscreen"


@pytest.fixture(autouse=True)
def _private_user_folders(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own config and data folders, so nothing touches the user's settings."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("PODIUM_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("PODIUM_DATA_DIR", str(base / "data"))


def run_isolated(fn, *args):  # noqa: ANN001, ANN002, ANN201 - any picklable module-level function
    """Run ``fn(*args)`` in a fresh interpreter and return its result.

    For measurements that would see other tests' leftovers in this process (allocations traced by
    tracemalloc, process CPU time, resident memory).
    """
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


@pytest.fixture(scope="session")
def demo_audio() -> Path:
    return REPO / "assets" / "audio" / "demo_speech.flac"


@pytest.fixture(scope="session")
def librivox_dir() -> Path:
    """Public-domain LibriVox speech with transcripts (Debian pocketsphinx-testdata, installed by setup.sh)."""
    if not (LIBRIVOX / "transcription").exists():
        pytest.skip("pocketsphinx-testdata is not installed: run installer/setup.sh --dev")
    return LIBRIVOX


def write_wav(path: Path, samples: np.ndarray, rate: int, channels: int = 1) -> Path:
    """Write float samples (``[n]`` or ``[n, channels]``) as 16-bit PCM WAV."""
    import wave

    data = np.asarray(samples, dtype=np.float64)
    if data.ndim == 1:
        data = np.repeat(data[:, None], channels, axis=1)
    pcm = (np.clip(data, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


@pytest.fixture
def onset_wav(tmp_path: Path) -> Path:
    """1 s of silence, 1 s of loud voiced sound (a buzz at 140 Hz with harmonics), 1 s of silence; 44.1 kHz stereo."""
    rate = 44_100
    t = np.arange(rate) / rate
    buzz = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12)) * 0.25
    signal = np.concatenate([np.zeros(rate), buzz, np.zeros(rate)])
    return write_wav(tmp_path / "onset.wav", signal, rate, channels=2)
