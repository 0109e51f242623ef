"""The main window offscreen: preview, style binding both ways, hotkeys, theme, persistence, and every
problem shown as a message while the window keeps running."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QPalette
from PySide6.QtWidgets import QPushButton

from app.avatar_panel import user_portraits_dir
from app.main_window import QtMainWindow
from inference.motion.style import PRESETS, apply_preset
from inference.settings import CameraSettings, RenderSettings, Settings, load_settings
from tests.live import stand_in_renderers as stand_in

SETTINGS = Settings(render=RenderSettings(size=256, renderer="pose-map"))


@pytest.fixture
def window(qtbot, engine_factory):
    w = QtMainWindow(SETTINGS, engine_factory=engine_factory, save_on_close=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.engine.status().renderer == "pose-map", timeout=10_000)
    yield w
    w.close()


def test_the_preview_runs_and_the_status_line_says_what_runs(window, qtbot, tmp_path):
    qtbot.waitUntil(lambda: window.preview.frames_shown > 10, timeout=5000)
    qtbot.waitUntil(lambda: "fps" in window.fps_label.text() and window.fps_label.text() != "0.0 fps", timeout=3000)
    assert window.renderer_label.text() == "pose-map on CPU"
    assert window.mic_label.text() == "microphone ✓"
    assert window.latency_label.text().startswith("latency ") and window.latency_label.text().endswith(" ms")
    assert window.grab().save(str(tmp_path / "window.png"))


def test_style_panel_edits_reach_the_engine(window, qtbot):
    slider = window.style_panel.sliders["head_motion"]
    slider.setValue(90)
    assert window.settings.style.head_motion == pytest.approx(0.9)
    applied = window.engine.status().style_applied
    window.style_panel.handedness.setCurrentIndex(window.style_panel.handedness.findData("both"))
    assert window.settings.style.handedness == "both"
    window.style_panel.framing.setCurrentIndex(window.style_panel.framing.findData("head-and-shoulders"))
    assert window.settings.style.framing == "head-and-shoulders"
    qtbot.waitUntil(lambda: window.engine.status().style_applied > applied, timeout=1000)  # shown within a second
    assert window.style_panel.preset.currentText() == "Custom"


def test_a_style_changed_elsewhere_shows_in_the_panel(window, qtbot):
    emitted = []
    window.style_panel.style_changed.connect(emitted.append)
    lively = apply_preset(window.settings.style, "lively")
    window.style_panel.set_style(lively)
    assert emitted == []  # showing a style does not echo it back
    assert window.style_panel.sliders["gesture_amount"].value() == round(PRESETS["lively"].gesture_amount * 100)
    assert window.style_panel.preset.currentText() == "Lively"


def test_presenter_hotkeys(window, qtbot):
    qtbot.keyClick(window, Qt.Key.Key_F5)
    assert window.live_button.isChecked() and window.engine.status().live
    qtbot.keyClick(window, Qt.Key.Key_F6)
    assert window.engine.status().paused
    qtbot.waitUntil(lambda: window.engine.status().paused, timeout=1000)
    qtbot.keyClick(window, Qt.Key.Key_F6)
    assert not window.engine.status().paused
    before = window.engine.status().style_applied
    qtbot.keyClick(window, Qt.Key.Key_F7)
    assert window.gestures_muted and window.settings.style.gesture_amount == SETTINGS.style.gesture_amount
    qtbot.waitUntil(lambda: window.engine.status().style_applied > before, timeout=1000)
    first = window.style_panel.preset.currentText()
    qtbot.keyClick(window, Qt.Key.Key_F8)
    second = window.style_panel.preset.currentText()
    assert second in ("Calm", "Lively", "Lecturer") and first != second
    assert window.settings.style == apply_preset(window.settings.style, second.lower())  # the panel shows it
    qtbot.keyClick(window, Qt.Key.Key_F8)
    assert window.style_panel.preset.currentText() not in (first, second)


def test_record_hotkey_records_and_saves(window, qtbot, tmp_path):
    window.settings = dataclasses.replace(window.settings, recording=dataclasses.replace(
        window.settings.recording, folder=str(tmp_path)))
    qtbot.keyClick(window, Qt.Key.Key_F9)
    assert window.record_button.isChecked() and window.live_button.isChecked()  # recording is of you talking
    qtbot.waitUntil(lambda: window.engine.status().recording_seconds > 1.0, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_F9)
    qtbot.waitUntil(lambda: "Saved the recording" in window.message_bar.text(), timeout=5000)
    assert len(list(tmp_path.glob("podium-*.mp4"))) == 1 and not window.record_button.isChecked()


def test_dark_and_light_looks(window):
    window.set_theme("dark")
    assert window.look == "dark" and window.palette().color(QPalette.ColorRole.Window).lightness() < 80
    window.set_theme("light")
    assert window.look == "light" and window.palette().color(QPalette.ColorRole.Window).lightness() > 200
    window.set_theme("system")  # the offscreen platform states no preference: light
    assert window.look == "light" and window.settings.ui.theme == "system"
    assert window.theme_actions["system"].isChecked()


def test_settings_persist_between_runs(qtbot, engine_factory):
    first = QtMainWindow(SETTINGS, engine_factory=engine_factory)
    qtbot.addWidget(first)
    first.style_panel.sliders["expressiveness"].setValue(80)
    first.style_panel.seed.setValue(1234)
    first.output_panel.mirror.setChecked(True)
    first.output_panel.resolution.setCurrentText("1080p")
    first.set_theme("dark")
    first.resize(700, 500)
    first.close()
    saved, warnings = load_settings()
    assert warnings == []
    assert saved.style.expressiveness == pytest.approx(0.8) and saved.style.seed == 1234
    assert saved.camera.mirror and saved.camera.resolution == "1080p" and saved.ui.theme == "dark"
    second = QtMainWindow(saved, engine_factory=engine_factory)
    qtbot.addWidget(second)
    assert second.style_panel.sliders["expressiveness"].value() == 80 and second.style_panel.seed.value() == 1234
    assert second.output_panel.mirror.isChecked() and second.output_panel.resolution.currentText() == "1080p"
    assert second.look == "dark" and second.width() == 700
    second.close()


def test_a_photo_that_is_not_a_portrait_is_refused_with_a_message(window, qtbot, tmp_path):
    bad = tmp_path / "holiday.jpg"
    bad.write_bytes(b"\xff\xd8 this is not really a jpeg")
    before = window.avatar_panel.portraits.count()
    window.avatar_panel.add_photo(bad)
    qtbot.waitUntil(lambda: "cannot be used" in window.message_bar.text(), timeout=5000)
    assert "holiday.jpg" in window.message_bar.text()
    assert window.avatar_panel.portraits.count() == before  # the copy was removed again
    assert window.settings.render.portrait is None and window.preview.frames_shown > 0
    frames = window.preview.frames_shown
    qtbot.waitUntil(lambda: window.preview.frames_shown > frames + 5, timeout=3000)  # still running


def test_dropping_a_photo_on_the_window_uses_it(window, qtbot, tmp_path):
    import shutil

    photo = tmp_path / "me.png"
    shutil.copy(Path(__file__).resolve().parents[2] / "assets" / "portraits" / "grace_hopper.jpg",
                photo.with_suffix(".jpg"))
    photo = photo.with_suffix(".jpg")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(photo))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.engine.status().portrait == user_portraits_dir() / "me.jpg", timeout=5000)
    assert window.settings.render.portrait.endswith("me.jpg") and window.message_bar.isHidden()


def test_a_pack_that_fails_to_load_shows_a_message(qtbot, engine_factory, monkeypatch):
    stand_in.register(monkeypatch, "student", stand_in.broken_pack)
    w = QtMainWindow(SETTINGS, engine_factory=engine_factory, save_on_close=False)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.engine.status().renderer == "pose-map", timeout=10_000)
    w.avatar_panel.renderer.setCurrentIndex(w.avatar_panel.renderer.findData("student"))
    w.avatar_panel.renderer.activated.emit(w.avatar_panel.renderer.currentIndex())
    qtbot.waitUntil(lambda: "sha256 mismatch" in w.message_bar.text(), timeout=5000)
    previous = SETTINGS.render.renderer  # the choice goes back to what ran before
    assert w.settings.render.renderer == previous and w.avatar_panel.renderer.currentData() == previous
    assert w.engine.status().renderer == "pose-map"
    w.close()


def test_a_late_confirmation_does_not_hide_a_newer_failed_choice(window):
    """The engine's news that the first renderer is up can reach the window after the presenter chose another;
    when that other one then fails, the window goes back to what the engine installed, not to the failed choice."""
    from inference.live import EngineEvent, InstalledRenderer

    before = window.settings.render
    window.settings = dataclasses.replace(window.settings, render=dataclasses.replace(before, renderer="student"))
    window._on_engine_event(EngineEvent("info", "renderer", "Showing the default portrait with the pose map.",
                                        InstalledRenderer(None, before.renderer, before.pack)))
    window._on_engine_event(EngineEvent("error", "renderer", "The student renderer cannot start: no GPU."))
    assert window.settings.render == before
    assert window.avatar_panel.renderer.currentData() == before.renderer


def test_with_no_portrait_chosen_the_panel_shows_what_the_renderer_shows_and_default_undoes_a_choice(
        qtbot, engine_factory, monkeypatch):
    """"default" (none chosen) shows the student's own presenter while the student runs and the bundled default
    under a renderer without one; choosing a portrait and then "default" again goes back to none chosen."""
    import numpy as np

    from app.avatar_panel import THUMB
    from inference import paths
    from inference.sources.portrait import load_portrait

    students: list[stand_in.Noting] = []
    stand_in.register(monkeypatch, "student", stand_in.noting(students, stand_in.PRESENTER))
    w = QtMainWindow(Settings(render=RenderSettings(size=256, renderer="student")), engine_factory=engine_factory,
                     save_on_close=False)
    qtbot.addWidget(w)
    panel = w.avatar_panel
    default = panel.portraits.item(0)
    assert default.text() == "default" and panel.portraits.currentItem() is default
    assert paths.default_portrait() not in [Path(panel.portraits.item(i).data(Qt.ItemDataRole.UserRole))
                                            for i in range(1, panel.portraits.count())]  # "default" stands for it

    def shows_presenter() -> bool:
        centre = default.icon().pixmap(THUMB, THUMB).toImage()
        return centre.pixelColor(centre.width() // 2, centre.height() // 2).getRgb()[:3] == (200, 40, 160)

    qtbot.waitUntil(shows_presenter, timeout=10_000)
    assert students[0].references[0] is stand_in.PRESENTER and w.settings.render.portrait is None

    chosen = next(panel.portraits.item(i) for i in range(panel.portraits.count())
                  if panel.portraits.item(i).text() == "grace hopper")
    panel.portraits.itemClicked.emit(chosen)
    path = paths.ASSETS_DIR / "portraits" / "grace_hopper.jpg"
    assert w.settings.render.portrait == str(path)
    qtbot.waitUntil(lambda: w.engine.status().portrait == path, timeout=5000)
    np.testing.assert_array_equal(students[-1].references[-1], load_portrait(path))

    w.choose_renderer("pose-map", None)  # no portrait of its own: "default" shows the bundled one again
    qtbot.waitUntil(lambda: w.engine.status().renderer == "pose-map" and not shows_presenter(), timeout=5000)
    panel.portraits.itemClicked.emit(default)
    assert w.settings.render.portrait is None and panel.current_portrait is None
    qtbot.waitUntil(lambda: w.engine.status().portrait is None, timeout=5000)
    w.close()


def test_no_camera_driver_shows_how_to_get_one(qtbot, fake_microphone, monkeypatch):
    from inference.live import LiveEngine
    from inference.sources.microphone import MicrophoneSource

    monkeypatch.setattr("inference.devices.list_virtual_cameras", lambda: [])
    monkeypatch.setattr("sys.platform", "linux")

    def real_camera_engine(settings, on_frame, on_event):
        return LiveEngine(settings, on_frame=on_frame, on_event=on_event, source_factory=lambda report:
                          MicrophoneSource(None, wait_for_device=True, on_event=report, backend=fake_microphone))

    w = QtMainWindow(SETTINGS, engine_factory=real_camera_engine, save_on_close=False)
    qtbot.addWidget(w)
    w.output_panel.camera_switch.setChecked(True)
    qtbot.waitUntil(lambda: "v4l2loopback" in w.message_bar.text(), timeout=5000)
    assert "installer/virtual_camera.sh" in w.message_bar.text()
    assert not w.output_panel.camera_switch.isChecked() and not w.settings.camera.enabled
    frames = w.preview.frames_shown
    qtbot.waitUntil(lambda: w.preview.frames_shown > frames + 5, timeout=3000)  # the preview goes on
    w.close()


def test_microphone_missing_then_plugged_in(qtbot, fake_camera, speech):
    from inference.live import LiveEngine
    from inference.sources.microphone import MicrophoneSource
    from tests.live.fakes import FakeSoundDevice

    device = FakeSoundDevice(speech, present=False)

    def build(settings, on_frame, on_event):
        return LiveEngine(settings, on_frame=on_frame, on_event=on_event, camera_backend=fake_camera,
                          source_factory=lambda report: MicrophoneSource(None, wait_for_device=True, on_event=report,
                                                                         backend=device, retry_seconds=0.2))

    w = QtMainWindow(SETTINGS, engine_factory=build, save_on_close=False)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: "No microphone was found" in w.message_bar.text(), timeout=5000)
    qtbot.waitUntil(lambda: w.mic_label.text() == "no microphone", timeout=2000)
    device.present = True
    qtbot.waitUntil(lambda: w.message_bar.isHidden() and w.mic_label.text() == "microphone ✓", timeout=5000)
    w.close()


def test_a_full_disk_while_recording_shows_a_message_and_recording_works_again(window, qtbot, tmp_path):
    from tests.live.fakes import FullDisk

    window.settings = dataclasses.replace(window.settings, recording=dataclasses.replace(
        window.settings.recording, folder=str(tmp_path)))
    window.record_button.setChecked(True)
    qtbot.waitUntil(lambda: window.engine.status().recording_seconds > 0.5, timeout=5000)
    recorder = window.engine.recorder_slot.wanted
    recorder._mp4._container = FullDisk(recorder._mp4._container)
    qtbot.waitUntil(lambda: "The disk is full" in window.message_bar.text(), timeout=5000)
    qtbot.waitUntil(lambda: not window.record_button.isChecked(), timeout=2000)
    window.record_button.setChecked(True)  # space was freed: record again
    qtbot.waitUntil(lambda: window.engine.status().recording_seconds > 0.3, timeout=5000)
    assert window.message_bar.isHidden()
    window.record_button.setChecked(False)
    qtbot.waitUntil(lambda: "Saved the recording" in window.message_bar.text(), timeout=5000)


def test_camera_switch_sends_the_avatar_to_the_virtual_camera(window, qtbot):
    from tests.live.fakes import RecordingCamera

    window.output_panel.camera_switch.setChecked(True)
    qtbot.waitUntil(lambda: window.engine.status().camera_on, timeout=3000)
    qtbot.waitUntil(lambda: RecordingCamera.instances and RecordingCamera.instances[-1].sent > 10, timeout=3000)
    window.output_panel.badge.setChecked(False)
    assert window.settings.camera == CameraSettings(enabled=True, badge=False)
    window.output_panel.camera_switch.setChecked(False)
    qtbot.waitUntil(lambda: not window.engine.status().camera_on, timeout=3000)
    assert RecordingCamera.instances[-1].closed


def test_render_an_audio_file_from_the_window(window, qtbot, tmp_path, onset_wav):
    target = tmp_path / "from_gui.mp4"
    window.start_render(onset_wav, target)
    qtbot.waitUntil(lambda: target.exists(), timeout=60_000)
    qtbot.waitUntil(lambda: "Wrote" in window.statusBar().currentMessage(), timeout=10_000)


def test_cancelling_a_render_leaves_no_file(window, qtbot, tmp_path, demo_audio):
    target = tmp_path / "cancelled.mp4"
    window.start_render(demo_audio, target)
    qtbot.waitUntil(lambda: window._render.dialog.value() > 5, timeout=60_000)  # frames are being rendered
    cancel = window._render.dialog.findChild(QPushButton)
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == "Render cancelled", timeout=30_000)
    assert list(tmp_path.glob("*.mp4")) == [] and window.message_bar.isHidden()


def test_a_render_that_fails_shows_why(window, qtbot, tmp_path):
    broken = tmp_path / "speech.wav"
    broken.write_bytes(b"RIFF\x00\x00")
    window.start_render(broken, tmp_path / "out.mp4")
    qtbot.waitUntil(lambda: "The render failed" in window.message_bar.text(), timeout=30_000)
    assert "speech.wav" in window.message_bar.text() and not (tmp_path / "out.mp4").exists()
