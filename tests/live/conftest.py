"""Fixtures for the live engine's tests: stand-in devices, real speech, a private PulseAudio."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from inference.sources.audio_file import load_audio
from tests.live.fakes import FakeSoundDevice, register_fake_camera
from tests.live.pulse import PrivatePulseAudio, reinitialise_portaudio


@pytest.fixture
def fake_camera() -> str:
    """The name of a pyvirtualcam backend that records what it is sent (see fakes.RecordingCamera)."""
    return register_fake_camera()


@pytest.fixture(scope="session")
def speech(librivox_dir: Path) -> np.ndarray:
    """7 s of public-domain LibriVox speech, 48 kHz mono float32."""
    return load_audio(librivox_dir / "sense_and_sensibility_01_austen_64kb-0870.wav")


@pytest.fixture
def fake_microphone(speech: np.ndarray) -> FakeSoundDevice:
    """A sounddevice stand-in whose one microphone plays the speech, looped, in real time."""
    return FakeSoundDevice(speech)


@pytest.fixture
def pulseaudio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A private PulseAudio whose default microphone hears what is played into its null sink.

    PortAudio in this process is pointed at it (and back at the normal environment afterwards).
    """
    missing = PrivatePulseAudio.missing()
    if missing:
        pytest.skip(missing)
    daemon = PrivatePulseAudio(tmp_path / "pulse")
    try:
        daemon.start()
    except RuntimeError as exc:
        pytest.skip(f"pulseaudio cannot run here: {exc}")
    for key, value in daemon.env.items():
        monkeypatch.setenv(key, value)
    reinitialise_portaudio()
    yield daemon
    daemon.stop()
    for key in daemon.env:
        monkeypatch.delenv(key, raising=False)
        if key in os.environ:
            del os.environ[key]
    reinitialise_portaudio()
