"""The live engine with stand-in devices: outputs, live style changes, and every failure the window must survive."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import av
import numpy as np
import pytest

from inference import paths
from inference.live import EngineEvent, InstalledRenderer, LiveEngine
from inference.settings import CameraSettings, RenderSettings, Settings
from inference.sources.microphone import MicrophoneSource
from inference.sources.portrait import load_portrait
from tests.live import stand_in_renderers as stand_in
from tests.live.fakes import FakeSoundDevice, FullDisk, RecordingCamera

SETTINGS = Settings(render=RenderSettings(size=256, renderer="pose-map"))


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


class Harness:
    """A running engine on a fake microphone and camera, with what it reported."""

    def __init__(self, device: FakeSoundDevice, camera_backend: str, settings: Settings = SETTINGS,
                 source_factory=None) -> None:
        self.events: list[EngineEvent] = []
        self.frames: list = []
        self.device = device
        factory = source_factory or (lambda on_event: MicrophoneSource(
            None, wait_for_device=True, on_event=on_event, backend=device, retry_seconds=0.2, stall_seconds=0.2))
        self.engine = LiveEngine(settings, on_frame=self.frames.append, on_event=self.events.append,
                                 source_factory=factory, camera_backend=camera_backend)

    def __enter__(self) -> Harness:
        self.engine.start()
        wait_until(lambda: self.engine.status().renderer != "loading")
        return self

    def __exit__(self, *exc) -> None:
        self.engine.stop()

    def errors(self, topic: str) -> list[str]:
        return [e.message for e in self.events if e.level != "info" and e.topic == topic]

    def installed(self) -> list[InstalledRenderer]:
        return [e.installed for e in self.events if e.installed is not None]

    def installed_message(self) -> str:
        """The message of the last "renderer is up" event (other topics' events may come after it)."""
        return [e.message for e in self.events if e.installed is not None][-1]

    def frames_keep_coming(self, seconds: float = 0.5) -> bool:
        before = len(self.frames)
        time.sleep(seconds)
        return len(self.frames) - before >= seconds * 25 * 0.6


def test_live_session_feeds_preview_camera_and_recording(fake_microphone, fake_camera, tmp_path):
    with Harness(fake_microphone, fake_camera) as h:
        h.engine.set_live(True)
        h.engine.set_camera(CameraSettings(enabled=True))
        recorder = h.engine.start_recording(tmp_path / "talk.mp4")
        time.sleep(2.0)
        status = h.engine.status()
        h.engine.stop_recording()
        wait_until(lambda: any("Saved the recording" in e.message for e in h.events))
        camera = RecordingCamera.instances[-1]
    # (timings are loose: the test machine's two cores are shared; bench/latency.py measures properly)
    lookahead_ms = 1000 * h.engine.motion.lookahead_seconds
    assert 15 < status.fps < 28 and status.latency_ms is not None and status.latency_ms < lookahead_ms + 200
    assert status.renderer == "pose-map" and status.device == "CPU" and status.microphone_connected
    assert status.camera_on and status.recording and status.level_db > -40
    assert camera.sent >= 30 and np.median(np.diff(camera.send_times)) == pytest.approx(0.04, abs=0.015)
    with av.open(str(tmp_path / "talk.mp4")) as c:
        video = sum(1 for _ in c.decode(video=0))
    assert recorder.frames == video and abs(recorder.samples / 48_000 - video / 25) < 0.04
    # the avatar talked: consecutive preview frames differ more while the voice plays than not at all
    diffs = [np.abs(a.rgb.astype(int) - b.rgb.astype(int)).mean() for a, b in zip(h.frames[-40:], h.frames[-39:],
                                                                                   strict=False)]
    assert max(diffs) > 0.5


def test_a_style_change_shows_in_the_preview_within_a_second(fake_microphone, fake_camera, tmp_path):
    with Harness(fake_microphone, fake_camera) as h:
        time.sleep(0.3)
        before = h.frames[-1].rgb
        asked = time.monotonic()
        request = h.engine.set_style(dataclasses.replace(SETTINGS.style, framing="head-and-shoulders"))
        wait_until(lambda: h.engine.status().style_applied >= request, timeout=1.0)
        shown_after = time.monotonic() - asked
        time.sleep(0.1)
        after = h.frames[-1].rgb
    assert shown_after < 1.0
    # head-and-shoulders draws the face larger: the white face dots of the pose map spread wider
    assert face_width(after) > 1.3 * face_width(before)


def face_width(rgb: np.ndarray) -> float:
    """Width in pixels of the white face dots of a pose-map frame."""
    columns = np.flatnonzero((rgb.min(axis=2) > 200).any(axis=0))
    return float(np.percentile(columns, 95) - np.percentile(columns, 5))


def test_a_pack_that_fails_to_load_is_reported_and_the_old_renderer_stays(fake_microphone, fake_camera,
                                                                          monkeypatch):
    stand_in.register(monkeypatch, "student", stand_in.broken_pack)
    with Harness(fake_microphone, fake_camera) as h:
        h.engine.set_renderer("student", "/packs/demo")
        wait_until(lambda: h.errors("renderer"))
        assert "sha256 mismatch" in h.errors("renderer")[0] and "The previous one stays" in h.errors("renderer")[0]
        assert h.engine.status().renderer == "pose-map" and h.frames_keep_coming()


def test_a_portrait_that_fails_to_fit_is_reported_and_the_old_one_stays(fake_microphone, fake_camera, monkeypatch,
                                                                        tmp_path):
    stand_in.register(monkeypatch, "photo-rig", lambda size, **o: stand_in.Faceless(size))
    with Harness(fake_microphone, fake_camera) as h:
        portrait = h.engine.status().portrait
        h.engine.set_renderer("photo-rig")
        wait_until(lambda: h.errors("portrait"))
        assert "no face was found" in h.errors("portrait")[0]
        not_an_image = tmp_path / "holiday.jpg"
        not_an_image.write_text("not a photo")
        h.engine.set_renderer("pose-map")
        h.engine.set_portrait(not_an_image)
        wait_until(lambda: len(h.errors("portrait")) == 2)
        assert "holiday.jpg" in h.errors("portrait")[1] and "not an image" in h.errors("portrait")[1]
        assert h.engine.status().portrait == portrait and h.frames_keep_coming()


def test_auto_shows_the_student_with_its_presenter_and_a_chosen_photo_with_the_photo_rig(fake_microphone, fake_camera,
                                                                                       monkeypatch):
    students: list[stand_in.Noting] = []
    rigs: list[stand_in.Noting] = []
    stand_in.register(monkeypatch, "student", stand_in.noting(students, stand_in.PRESENTER))
    stand_in.register(monkeypatch, "photo-rig", stand_in.noting(rigs, None))
    chosen = paths.bundled_portraits()[-1]
    with Harness(fake_microphone, fake_camera, Settings(render=RenderSettings(size=256, renderer="auto"))) as h:
        wait_until(lambda: len(h.installed()) == 1)
        assert len(students) == 1 and not rigs
        h.engine.set_portrait(chosen)
        wait_until(lambda: len(h.installed()) == 2)
        assert len(students) == 1 and len(rigs) == 1 and "grace_hopper.jpg" in h.installed_message()
        h.engine.set_portrait(None)
        wait_until(lambda: len(h.installed()) == 3)
        assert len(students) == 2 and h.frames_keep_coming()


def test_with_no_portrait_chosen_each_renderer_shows_its_own_else_the_default(fake_microphone, fake_camera,
                                                                             monkeypatch):
    """None chosen: a renderer with a portrait of its own (the student with its pack's presenter) shows it, one
    without (the photo rig) the bundled default, switching back and forth; a chosen portrait stays across switches
    until the choice is undone."""
    students: list[stand_in.Noting] = []
    rigs: list[stand_in.Noting] = []
    stand_in.register(monkeypatch, "student", stand_in.noting(students, stand_in.PRESENTER))
    stand_in.register(monkeypatch, "photo-rig", stand_in.noting(rigs, None))
    astronaut = load_portrait(paths.default_portrait())
    chosen = paths.bundled_portraits()[-1]
    assert chosen != paths.default_portrait()
    with Harness(fake_microphone, fake_camera, Settings(render=RenderSettings(size=256, renderer="student"))) as h:
        assert h.engine.status().portrait is None
        assert len(students) == 1 and students[0].references[0] is stand_in.PRESENTER
        wait_until(lambda: len(h.installed()) == 1)
        assert h.installed()[-1].portrait is None and h.installed()[-1].own_portrait is stand_in.PRESENTER
        assert "renderer's own presenter" in h.installed_message()

        steps = [(lambda: h.engine.set_renderer("photo-rig"), rigs, astronaut),
                 (lambda: h.engine.set_renderer("student"), students, stand_in.PRESENTER),
                 (lambda: h.engine.set_portrait(chosen), students, load_portrait(chosen)),
                 (lambda: h.engine.set_renderer("photo-rig"), rigs, load_portrait(chosen)),
                 (lambda: h.engine.set_portrait(None), rigs, astronaut)]
        for count, (step, built, expected) in enumerate(steps, start=2):
            step()
            wait_until(lambda count=count: len(h.installed()) == count)
            np.testing.assert_array_equal(built[-1].references[-1], expected)
        assert [i.portrait for i in h.installed()] == [None, None, None, chosen, chosen, None]
        assert h.installed()[-1].own_portrait is None and "default portrait (astronaut.png)" in h.installed_message()
        assert h.engine.status().portrait is None and h.frames_keep_coming()


def test_a_renderer_that_crashes_mid_stream_is_replaced_by_the_pose_map(fake_microphone, fake_camera, monkeypatch):
    stand_in.register(monkeypatch, "student", lambda size, **o: stand_in.Crashing(size))
    with Harness(fake_microphone, fake_camera) as h:
        h.engine.set_renderer("student")
        wait_until(lambda: h.errors("renderer"))
        assert "illegal memory access" in h.errors("renderer")[0] and "pose map instead" in h.errors("renderer")[0]
        wait_until(lambda: h.engine.status().renderer == "pose-map")
        assert h.frames_keep_coming()


def test_no_camera_driver_is_explained_and_the_preview_goes_on(fake_microphone, monkeypatch):
    monkeypatch.setattr("inference.devices.list_virtual_cameras", lambda: [])
    monkeypatch.setattr("sys.platform", "linux")
    with Harness(fake_microphone, camera_backend=None) as h:
        h.engine.set_camera(CameraSettings(enabled=True))
        wait_until(lambda: h.errors("camera"))
        assert "v4l2loopback" in h.errors("camera")[0] and not h.engine.status().camera_on
        assert h.frames_keep_coming()


def test_virtual_camera_unplugged_mid_session_and_back(fake_microphone, fake_camera):
    with Harness(fake_microphone, fake_camera) as h:
        h.engine.set_camera(CameraSettings(enabled=True))
        wait_until(lambda: h.engine.status().camera_on)
        RecordingCamera.present = False  # v4l2loopback unloaded, OBS closed...
        wait_until(lambda: [e for e in h.events if e.topic == "camera" and e.level == "warning"])
        warning = [e.message for e in h.events if e.topic == "camera"][0]
        assert "stopped accepting frames" in warning and "reconnects it" in warning
        assert not h.engine.status().camera_on and h.frames_keep_coming()
        RecordingCamera.present = True
        wait_until(lambda: h.engine.status().camera_on)
        assert h.events[-1].message == "The virtual camera is back."
        sent = RecordingCamera.instances[-1].sent
        wait_until(lambda: RecordingCamera.instances[-1].sent > sent + 5)


def test_microphone_unplugged_mid_session_and_back(speech, fake_camera):
    device = FakeSoundDevice(speech)
    with Harness(device, fake_camera) as h:
        h.engine.set_live(True)
        time.sleep(0.3)
        device.present = False
        wait_until(lambda: h.errors("microphone"))
        assert "unplugged" in h.errors("microphone")[0] and not h.engine.status().microphone_connected
        assert h.frames_keep_coming()  # the avatar idles on
        device.present = True
        wait_until(lambda: any(e.topic == "microphone" and e.level == "info" and e.message.endswith("is back.")
                               for e in h.events))
        assert h.engine.status().microphone_connected


def test_no_microphone_at_all(fake_camera):
    with Harness(FakeSoundDevice(present=False), fake_camera) as h:
        wait_until(lambda: h.errors("microphone"))
        assert "No microphone was found" in h.errors("microphone")[0]
        assert h.frames_keep_coming()


def test_a_full_disk_while_recording_is_reported_and_recording_works_again(fake_microphone, fake_camera, tmp_path):
    with Harness(fake_microphone, fake_camera) as h:
        h.engine.set_live(True)
        recorder = h.engine.start_recording(tmp_path / "first.mp4")
        wait_until(lambda: recorder.frames > 25)
        recorder._mp4._container = FullDisk(recorder._mp4._container)
        wait_until(lambda: h.errors("recording"))
        assert "The disk is full" in h.errors("recording")[0] and not h.engine.status().recording
        assert (tmp_path / "first.mp4").exists()  # what was recorded before is kept
        assert h.frames_keep_coming()
        second = h.engine.start_recording(tmp_path / "second.mp4")
        wait_until(lambda: second.frames > 10)
        h.engine.stop_recording()
        wait_until(lambda: (tmp_path / "second.mp4").exists())


def test_a_failing_stage_restarts_the_stream(fake_microphone, fake_camera):
    class FailsOnce:
        failed = False

    def factory(on_event):
        source = MicrophoneSource(None, backend=fake_microphone, on_event=on_event)
        if not FailsOnce.failed:
            FailsOnce.failed = True
            read = source.read

            def failing_read():
                block = read()
                if block.start > 48_000 // 2:
                    raise RuntimeError("the sound server went away")
                return block

            source.read = failing_read
        return source

    with Harness(fake_microphone, fake_camera, source_factory=factory) as h:
        wait_until(lambda: h.errors("engine"))
        assert "restarting" in h.errors("engine")[0]
        frames_before = len(h.frames)
        wait_until(lambda: len(h.frames) > frames_before + 10)


def test_under_load_video_is_dropped_never_audio(fake_microphone, fake_camera, monkeypatch, tmp_path):
    stand_in.register(monkeypatch, "slow", lambda size, **o: stand_in.Slow(size))
    with Harness(fake_microphone, fake_camera) as h:
        h.engine.set_live(True)
        h.engine.set_renderer("slow")
        wait_until(lambda: h.engine.status().renderer == "slow")
        recorder = h.engine.start_recording(tmp_path / "load.mp4")
        time.sleep(2.5)
        status = h.engine.status()
        h.engine.stop_recording()
        wait_until(lambda: (tmp_path / "load.mp4").exists())
    assert status.skipped_frames > 5 and status.fps < 20  # video dropped
    assert status.latency_ms < 700  # and it did not fall behind (2.5 s at half speed would be 1.2 s behind)
    assert abs(recorder.samples / 48_000 - 2.5) < 0.3 and fake_microphone.opened == 1  # every sample kept
    with av.open(str(tmp_path / "load.mp4")) as c:
        audio = sum(f.samples for f in c.decode(audio=0))
    assert audio >= recorder.samples  # (AAC pads a little)
    assert Path(tmp_path / "load.mp4").stat().st_size > 0
