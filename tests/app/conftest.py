"""Fixtures for the window's tests: an engine on stand-in devices."""

from __future__ import annotations

import pytest

from inference.live import LiveEngine
from inference.sources.microphone import MicrophoneSource
from tests.live.conftest import fake_camera, fake_microphone, speech  # noqa: F401 - shared fixtures
from tests.live.fakes import FakeSoundDevice


@pytest.fixture
def engine_factory(fake_microphone: FakeSoundDevice, fake_camera: str):  # noqa: F811
    """Builds the window's engine on a fake microphone (LibriVox speech) and a recording virtual camera."""

    def build(settings, on_frame, on_event) -> LiveEngine:
        return LiveEngine(settings, on_frame=on_frame, on_event=on_event, camera_backend=fake_camera,
                          source_factory=lambda report: MicrophoneSource(
                              None, wait_for_device=True, on_event=report, backend=fake_microphone,
                              retry_seconds=0.2, stall_seconds=0.3))

    return build
