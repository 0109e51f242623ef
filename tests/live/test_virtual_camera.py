"""The virtual camera sink through a fake pyvirtualcam backend: framing, mirror, badge, pacing, no driver."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference.errors import DeviceError
from inference.sinks.virtual_camera import VirtualCameraSink
from inference.sources.portrait import load_portrait
from inference.types import VideoFrame
from tests.live.fakes import RecordingCamera

REPO = Path(__file__).resolve().parents[2]


def portrait_frame(index: int = 0, size: int = 512) -> VideoFrame:
    rgb = load_portrait(REPO / "assets" / "portraits" / "astronaut.png")
    import cv2

    return VideoFrame(cv2.resize(rgb, (size, size)), index, 25.0)


@pytest.mark.parametrize("resolution,shape", [("720p", (720, 1280, 3)), ("1080p", (1080, 1920, 3))])
def test_frames_are_framed_for_the_camera_with_the_badge(fake_camera, tmp_path, resolution, shape):
    sink = VirtualCameraSink(resolution, backend=fake_camera)
    sink.open((512, 512), 25.0, 48_000)
    frame = portrait_frame()
    for i in range(5):
        sink.write_video(VideoFrame(frame.rgb, i, 25.0))
    sink.close()
    camera = RecordingCamera.instances[-1]
    assert (camera.width, camera.height, camera.fps) == (shape[1], shape[0], 25.0)
    assert camera.sent == 5 and camera.closed and camera.last.shape == shape
    shot = tmp_path / f"camera_{resolution}.png"
    Image.fromarray(camera.last).save(shot)  # looked at: avatar centred, soft sides, "AI avatar" lower left
    h, w = shape[:2]
    centre = camera.last[:, (w - h) // 2 : (w + h) // 2]
    assert np.abs(centre.astype(int) - np.asarray(Image.fromarray(frame.rgb).resize((h, h))).astype(int)).mean() < 8
    badge = camera.last[int(h * 0.9) : h - int(h * 0.03), int(h * 0.03) : int(h * 0.03) + int(h * 0.2)]
    assert (badge.min(axis=2) > 230).sum() > 50  # white badge text


def test_mirror_flips_the_avatar_not_the_badge(fake_camera):
    frame = portrait_frame()
    images = {}
    for mirror in (False, True):
        sink = VirtualCameraSink("720p", mirror=mirror, badge=False, backend=fake_camera)
        sink.open((512, 512), 25.0, 48_000)
        sink.write_video(frame)
        sink.close()
        images[mirror] = RecordingCamera.instances[-1].last
    centre = slice(280, 1000)
    assert np.abs(images[True][:, centre].astype(int) - images[False][:, centre][:, ::-1].astype(int)).mean() < 2


def test_badge_can_be_switched_off_while_running(fake_camera):
    sink = VirtualCameraSink("720p", backend=fake_camera)
    sink.open((512, 512), 25.0, 48_000)
    frame = portrait_frame()
    sink.write_video(frame)
    with_badge = RecordingCamera.instances[-1].last
    sink.set_look(mirror=False, badge=False)
    sink.write_video(VideoFrame(frame.rgb, 1, 25.0))
    without = RecordingCamera.instances[-1].last
    sink.close()
    region = (slice(640, 700), slice(20, 200))
    assert np.abs(with_badge[region].astype(int) - without[region].astype(int)).mean() > 10
    assert np.array_equal(with_badge[:600], without[:600])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the v4l2loopback message is Linux's")
def test_no_driver_says_exactly_how_to_get_one(monkeypatch):
    monkeypatch.setattr("inference.devices.list_virtual_cameras", lambda: [])
    sink = VirtualCameraSink("720p")
    with pytest.raises(DeviceError) as info:
        sink.open((512, 512), 25.0, 48_000)
    message = str(info.value)
    assert "sudo apt install v4l2loopback-dkms" in message and "modprobe v4l2loopback" in message
    assert "installer/virtual_camera.sh" in message and "Preview and recording keep working" in message


def test_a_backend_that_fails_to_open_becomes_a_device_error(monkeypatch):
    import pyvirtualcam

    class Broken:
        def __init__(self, **_):
            raise RuntimeError("device busy")

    pyvirtualcam.register_backend("podium-broken", Broken)
    sink = VirtualCameraSink("720p", backend="podium-broken")
    with pytest.raises(DeviceError, match="device busy"):
        sink.open((512, 512), 25.0, 48_000)
