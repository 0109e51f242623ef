"""Podium's main window: the live preview in the middle, who the avatar is on the left, how it moves and
where it goes on the right, the big Go live and Record buttons under the preview, and a status line.

The window only shows things and forwards what the user does: the live engine
(:class:`inference.live.LiveEngine`) runs on its own threads, its frames and
events reach the window through :class:`app.engine_bridge.QtEngineBridge`, and
nothing here waits on it. Every change the user makes goes into
:attr:`QtMainWindow.settings`, which is saved when the window closes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, QUrl
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
    QShortcut,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.avatar_panel import QtAvatarPanel
from app.engine_bridge import QtEngineBridge
from app.microphone_panel import QtMicrophonePanel
from app.offline_render import QtOfflineRender
from app.output_panel import QtOutputPanel
from app.preview import QtPreview
from app.style_panel import QtStylePanel
from app.theme import apply_theme
from inference import paths
from inference.live import EngineEvent, LiveEngine
from inference.motion.style import PRESETS, MotionStyle, apply_preset
from inference.settings import AudioSettings, CameraSettings, Settings, save_settings

log = logging.getLogger(__name__)

#: What the presenter can press mid-call (shown on the buttons and under them).
HOTKEYS = {"live": "F5", "pause": "F6", "gestures": "F7", "preset": "F8", "record": "F9"}
EngineFactory = Callable[..., LiveEngine]


class QtMessageBar(QFrame):
    """A coloured line above the preview for problems (and important news), with a dismiss button."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("messageBar")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        close = QPushButton("Dismiss")
        close.clicked.connect(self.clear)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.topic: str | None = None
        self.hide()

    def show_message(self, level: str, message: str, topic: str | None = None) -> None:
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self.label.setText(message)
        self.topic = topic
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()

    def clear(self, topic: str | None = None) -> None:
        """Hide the message (only if it is about ``topic``, when given)."""
        if topic is None or topic == self.topic:
            self.label.clear()
            self.topic = None
            self.hide()


class QtMainWindow(QMainWindow):
    """The main window.

    Args:
        settings: the user's settings (the window keeps :attr:`settings` up to date).
        engine_factory: builds the live engine from (settings, on_frame=..., on_event=...);
            tests pass one with stand-in devices.
        save_on_close: write :attr:`settings` to the settings file when the window closes.
    """

    def __init__(self, settings: Settings, *, engine_factory: EngineFactory | None = None,
                 save_on_close: bool = True) -> None:
        super().__init__()
        self.settings = settings
        self.save_on_close = save_on_close
        self.look = apply_theme(settings.ui.theme)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._system_scheme_changed)
        self.setWindowTitle("Podium")
        self.setAcceptDrops(True)
        self.gestures_muted = False
        self._render: QtOfflineRender | None = None
        self._confirmed_render = settings.render

        self.bridge = QtEngineBridge()
        self.engine = (engine_factory or LiveEngine)(settings, on_frame=self.bridge.push_frame,
                                                     on_event=self.bridge.push_event)
        self.bridge.frame_ready.connect(self._show_frame)
        self.bridge.event.connect(self._on_engine_event)

        self._build_widgets()
        self._build_menus()
        self._build_hotkeys()
        self._build_status_line()
        if settings.ui.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(settings.ui.window_geometry.encode("ascii")))
        else:
            self.resize(1280, 800)

        self._status_timer = QTimer(self)
        self._status_timer.setInterval(100)
        self._status_timer.timeout.connect(self._refresh_status)
        self._status_timer.start()
        self.engine.start()

    # -- layout ----------------------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        s = self.settings
        self.avatar_panel = QtAvatarPanel(s.render.portrait_path, s.render.renderer, s.render.pack)
        self.avatar_panel.portrait_chosen.connect(self.choose_portrait)
        self.avatar_panel.renderer_chosen.connect(self.choose_renderer)
        self.microphone_panel = QtMicrophonePanel(s.audio.input_device)
        self.microphone_panel.microphone_chosen.connect(self.choose_microphone)
        left = QVBoxLayout()
        left.addWidget(self.avatar_panel)
        left.addWidget(self.microphone_panel)
        left.addStretch(1)

        self.message_bar = QtMessageBar()
        self.preview = QtPreview()
        self.live_button = QPushButton(f"Go live  ({HOTKEYS['live']})")
        self.live_button.setObjectName("goLive")
        self.live_button.setCheckable(True)
        self.live_button.setToolTip("The avatar follows your voice (and shows on the virtual camera if it is on)")
        self.live_button.toggled.connect(self.set_live)
        self.record_button = QPushButton(f"Record  ({HOTKEYS['record']})")
        self.record_button.setObjectName("record")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("Record the avatar with your voice to an MP4 file")
        self.record_button.toggled.connect(self.set_recording)
        self.pause_button = QPushButton(f"Pause avatar  ({HOTKEYS['pause']})")
        self.pause_button.setCheckable(True)
        self.pause_button.setToolTip("The avatar idles and your voice is held back, until you press again")
        self.pause_button.toggled.connect(self.set_paused)
        self.gestures_button = QPushButton(f"Mute gestures  ({HOTKEYS['gestures']})")
        self.gestures_button.setCheckable(True)
        self.gestures_button.setToolTip("Keep the hands still (the style panel keeps your setting)")
        self.gestures_button.toggled.connect(self.set_gestures_muted)
        buttons = QHBoxLayout()
        buttons.addWidget(self.live_button)
        buttons.addWidget(self.record_button)
        buttons.addStretch(1)
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.gestures_button)
        hint = QLabel("Hotkeys: " + " · ".join(f"{key} {what}" for what, key in (
            ("go live", HOTKEYS["live"]), ("pause", HOTKEYS["pause"]), ("gestures", HOTKEYS["gestures"]),
            ("next preset", HOTKEYS["preset"]), ("record", HOTKEYS["record"]))))
        hint.setObjectName("hint")
        centre = QVBoxLayout()
        centre.addWidget(self.message_bar)
        centre.addWidget(self.preview, 1)
        centre.addLayout(buttons)
        centre.addWidget(hint)

        self.style_panel = QtStylePanel(s.style)
        self.style_panel.style_changed.connect(self.set_style)
        self.output_panel = QtOutputPanel(s.camera, s.audio)
        self.output_panel.camera_changed.connect(self.set_camera)
        self.output_panel.voice_changed.connect(self.set_voice)
        render_button = QPushButton("Render an audio file to video…")
        render_button.setToolTip("Make a talking video from a recorded speech file, with the avatar and style above")
        render_button.clicked.connect(self.choose_and_render)
        right = QVBoxLayout()
        right.addWidget(self.style_panel)
        right.addWidget(self.output_panel)
        right.addStretch(1)
        right.addWidget(render_button)

        row = QHBoxLayout()
        for layout, stretch, width in ((left, 0, 250), (centre, 1, None), (right, 0, 300)):
            holder = QWidget()
            holder.setLayout(layout)
            if width:
                holder.setFixedWidth(width)
                holder.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
            row.addWidget(holder, stretch)
        central = QWidget()
        central.setLayout(row)
        self.setCentralWidget(central)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        render = QAction("Render an audio file to video…", self)
        render.triggered.connect(self.choose_and_render)
        file_menu.addAction(render)
        folder = QAction("Open the recordings folder", self)
        folder.triggered.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.recordings_folder()))))
        file_menu.addAction(folder)
        file_menu.addSeparator()
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        view = self.menuBar().addMenu("&View")
        theme_menu = view.addMenu("Theme")
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for theme, label in (("system", "Follow the system"), ("dark", "Dark"), ("light", "Light")):
            action = QAction(label, self, checkable=True)
            action.setChecked(self.settings.ui.theme == theme)
            action.triggered.connect(lambda _c=False, t=theme: self.set_theme(t))
            group.addAction(action)
            theme_menu.addAction(action)
            self.theme_actions[theme] = action

    def _build_hotkeys(self) -> None:
        self.shortcuts = {
            "live": QShortcut(QKeySequence(HOTKEYS["live"]), self, self.live_button.toggle),
            "pause": QShortcut(QKeySequence(HOTKEYS["pause"]), self, self.pause_button.toggle),
            "gestures": QShortcut(QKeySequence(HOTKEYS["gestures"]), self, self.gestures_button.toggle),
            "preset": QShortcut(QKeySequence(HOTKEYS["preset"]), self, self.next_preset),
            "record": QShortcut(QKeySequence(HOTKEYS["record"]), self, self.record_button.toggle),
        }
        for shortcut in self.shortcuts.values():  # also while a dialog of Podium's has the focus
            shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)

    def _build_status_line(self) -> None:
        self.fps_label = QLabel("– fps")
        self.latency_label = QLabel("latency –")
        self.renderer_label = QLabel("loading")
        self.mic_label = QLabel("microphone –")
        for label in (self.mic_label, self.renderer_label, self.latency_label, self.fps_label):
            label.setContentsMargins(10, 0, 10, 0)
            self.statusBar().addPermanentWidget(label)

    # -- user actions ----------------------------------------------------------------------------------------

    def set_live(self, live: bool) -> None:
        self.engine.set_live(live)
        self.live_button.setText(f"Stop  ({HOTKEYS['live']})" if live else f"Go live  ({HOTKEYS['live']})")
        if not live and self.record_button.isChecked():
            self.record_button.setChecked(False)

    def set_paused(self, paused: bool) -> None:
        self.engine.set_paused(paused)

    def set_gestures_muted(self, muted: bool) -> None:
        self.gestures_muted = muted
        self._send_style()

    def set_style(self, style: MotionStyle) -> None:
        """The style panel changed ``style`` (or a hotkey did): remember it and send it to the engine."""
        self.settings = replace(self.settings, style=style)
        self._send_style()

    def _send_style(self) -> None:
        style = self.settings.style
        if self.gestures_muted:
            style = replace(style, gesture_amount=0.0)
        self.engine.set_style(style)

    def next_preset(self) -> None:
        names = list(PRESETS)
        current = self.style_panel.preset.currentIndex() - 1  # -1 for "Custom"
        name = names[(current + 1) % len(names)]
        style = apply_preset(self.settings.style, name)
        self.style_panel.set_style(style)
        self.set_style(style)
        self.statusBar().showMessage(f"Preset: {name}", 3000)

    def choose_portrait(self, portrait: Path | None) -> None:
        """Use ``portrait``; None: none chosen (the renderer's own presenter, else the bundled default)."""
        self.settings = replace(self.settings, render=replace(self.settings.render,
                                                              portrait=None if portrait is None else str(portrait)))
        self.engine.set_portrait(portrait)
        self.preview.set_hint(f"Preparing {portrait.name if portrait is not None else 'the default portrait'}…")

    def choose_renderer(self, choice: str, pack: str | None) -> None:
        self.settings = replace(self.settings, render=replace(self.settings.render, renderer=choice, pack=pack))
        self.engine.set_renderer(choice, pack)

    def choose_microphone(self, device: str | None) -> None:
        self.settings = replace(self.settings, audio=replace(self.settings.audio, input_device=device))
        self.message_bar.clear("microphone")
        self.engine.set_microphone(device)

    def set_camera(self, camera: CameraSettings) -> None:
        self.settings = replace(self.settings, camera=camera)
        if not camera.enabled:
            self.message_bar.clear("camera")
        self.engine.set_camera(camera)

    def set_voice(self, audio: AudioSettings) -> None:
        self.settings = replace(self.settings, audio=audio)
        self.engine.set_audio_out(audio.delayed_output, audio.output_device)

    def recordings_folder(self) -> Path:
        return Path(self.settings.recording.folder) if self.settings.recording.folder else paths.recordings_dir()

    def set_recording(self, recording: bool) -> None:
        if recording:
            if not self.live_button.isChecked():
                self.live_button.setChecked(True)  # a recording is of you talking
            path = self.recordings_folder() / f"podium-{time.strftime('%Y%m%d-%H%M%S')}.mp4"
            self.message_bar.clear("recording")
            self.engine.start_recording(path)
            self.statusBar().showMessage(f"Recording to {path}", 5000)
        else:
            self.engine.stop_recording()

    def set_theme(self, theme: str) -> None:
        self.settings = replace(self.settings, ui=replace(self.settings.ui, theme=theme))
        self.look = apply_theme(theme)
        self.theme_actions[theme].setChecked(True)

    def _system_scheme_changed(self) -> None:
        if self.settings.ui.theme == "system":
            self.look = apply_theme("system")

    def choose_and_render(self) -> None:
        audio, _ = QFileDialog.getOpenFileName(self, "Choose speech audio", "",
                                               "Audio (*.wav *.flac *.mp3 *.ogg *.m4a)")
        if not audio:
            return
        output, _ = QFileDialog.getSaveFileName(self, "Save video as", str(Path(audio).with_suffix(".mp4")),
                                                "MP4 video (*.mp4)")
        if output:
            self.start_render(Path(audio), Path(output))

    def start_render(self, audio: Path, output: Path) -> None:
        """Render ``audio`` with the current portrait, renderer and style to ``output``, with progress and cancel."""
        from inference.offline import RenderJob

        s = self.settings
        job = RenderJob(audio=audio, output=output, portrait=s.render.portrait_path, renderer=s.render.renderer,
                        size=s.render.size, fps=s.render.fps, style=s.style)
        self._render = QtOfflineRender(job, self)
        self._render.done.connect(self._on_render_done)
        self._render.start()

    def _on_render_done(self, level: str, message: str) -> None:
        if level == "error":
            self.message_bar.show_message("error", message, "render")
        else:
            self.statusBar().showMessage(message, 10_000)

    # -- engine news -------------------------------------------------------------------------------------------

    def _show_frame(self) -> None:
        frame = self.bridge.take_frame()
        if frame is not None:
            self.preview.show_frame(frame.rgb)

    def _on_engine_event(self, event: EngineEvent) -> None:
        if event.level == "info":
            self.statusBar().showMessage(event.message, 8000)
            if event.installed is not None:  # what was installed, not what was asked for since
                installed = event.installed
                portrait = None if installed.portrait is None else str(installed.portrait)
                self._confirmed_render = replace(self.settings.render, portrait=portrait, renderer=installed.choice,
                                                 pack=installed.pack)
                self.avatar_panel.show_default(installed.own_portrait)
            if event.topic == "recording":
                self._set_checked(self.record_button, False)
                self.message_bar.show_message("info", event.message, "recording")
            else:
                self.message_bar.clear(event.topic)
            return
        self.message_bar.show_message(event.level, event.message, event.topic)
        if event.level == "warning":
            return  # the engine is on it (reconnecting a device): nothing to undo here
        if event.topic == "camera":
            camera = replace(self.settings.camera, enabled=False)
            self.settings = replace(self.settings, camera=camera)
            self.output_panel.show_settings(camera, self.settings.audio)
        elif event.topic == "recording":
            self._set_checked(self.record_button, False)
        elif event.topic == "audio-out":
            audio = replace(self.settings.audio, delayed_output=False)
            self.settings = replace(self.settings, audio=audio)
            self.output_panel.show_settings(self.settings.camera, audio)
        elif event.topic in ("portrait", "renderer"):
            rejected = self.settings.render.portrait_path
            self.settings = replace(self.settings, render=self._confirmed_render)
            keep = self._confirmed_render.portrait_path
            if event.topic == "portrait" and rejected != keep:
                self.avatar_panel.reject(rejected, keep)
            self.avatar_panel.show_renderer(self._confirmed_render.renderer, self._confirmed_render.pack)

    @staticmethod
    def _set_checked(button: QPushButton, checked: bool) -> None:
        button.blockSignals(True)
        button.setChecked(checked)
        button.blockSignals(False)

    def _refresh_status(self) -> None:
        status = self.engine.status()
        self.microphone_panel.meter.set_level(status.level_db)
        self.preview.set_state(live=status.live, paused=status.paused,
                               recording_seconds=status.recording_seconds if status.recording else None)
        self.fps_label.setText(f"{status.fps:.1f} fps")
        self.latency_label.setText("latency –" if status.latency_ms is None else f"latency {status.latency_ms:.0f} ms")
        self.renderer_label.setText(f"{status.renderer} on {status.device}")
        self.mic_label.setText("microphone ✓" if status.microphone_connected else "no microphone")
        if status.camera_on:
            self.output_panel.camera_hint.hide()  # a camera is running: the driver is there
        if self.record_button.isChecked() != status.recording and not status.recording:
            self._set_checked(self.record_button, False)

    # -- drag and drop, closing -----------------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        self.avatar_panel.dragEnterEvent(event)  # a photo dropped anywhere on the window goes to the avatar panel

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self.avatar_panel.dropEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self._status_timer.stop()
        if self._render is not None:
            self._render.cancel_and_wait()
        self.engine.stop()
        geometry = bytes(self.saveGeometry().toBase64()).decode("ascii")
        self.settings = replace(self.settings, ui=replace(self.settings.ui, window_geometry=geometry))
        if self.save_on_close:
            try:
                save_settings(self.settings)
            except OSError as exc:
                log.warning("could not save the settings: %s", exc)
        super().closeEvent(event)
