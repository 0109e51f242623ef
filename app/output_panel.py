"""Where the avatar goes: the virtual camera (with its look) and the delayed voice for meeting apps."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QLabel

from inference import devices
from inference.settings import AudioSettings, CameraSettings
from inference.sinks.virtual_camera import RESOLUTIONS

SYSTEM_DEFAULT = "System default"


class QtOutputPanel(QGroupBox):
    """Virtual camera switch, resolution, mirror, badge; delayed voice switch and its output device."""

    camera_changed = Signal(object)  # CameraSettings
    voice_changed = Signal(object)  # AudioSettings

    def __init__(self, camera: CameraSettings, audio: AudioSettings) -> None:
        super().__init__("Meeting output")
        self._camera = camera
        self._audio = audio
        form = QFormLayout(self)
        self.camera_switch = QCheckBox("Virtual camera")
        self.camera_switch.setToolTip("Show the avatar as a webcam named Podium that Zoom, Meet or Teams can pick")
        self.camera_switch.toggled.connect(lambda on: self._camera_edit(enabled=on))
        form.addRow(self.camera_switch)
        self.resolution = QComboBox()
        self.resolution.addItems(list(RESOLUTIONS))
        self.resolution.currentTextChanged.connect(lambda text: self._camera_edit(resolution=text))
        form.addRow("Resolution", self.resolution)
        self.mirror = QCheckBox("Mirror")
        self.mirror.setToolTip("Flip the avatar left to right, as a selfie view does")
        self.mirror.toggled.connect(lambda on: self._camera_edit(mirror=on))
        self.badge = QCheckBox("“AI avatar” badge")
        self.badge.setToolTip("A small badge that tells viewers the video is generated (recommended)")
        self.badge.toggled.connect(lambda on: self._camera_edit(badge=on))
        form.addRow(self.mirror)
        form.addRow(self.badge)
        self.voice_switch = QCheckBox("Delayed voice")
        self.voice_switch.setToolTip("Play your voice, delayed to match the avatar, into a virtual microphone "
                                     "that the meeting app listens to")
        self.voice_switch.toggled.connect(lambda on: self._voice_edit(delayed_output=on))
        form.addRow(self.voice_switch)
        self.voice_device = QComboBox()
        self.voice_device.addItem(SYSTEM_DEFAULT, None)
        for d in devices.list_speakers():
            self.voice_device.addItem(d.name, d.name)
        if audio.output_device and self.voice_device.findData(audio.output_device) < 0:
            self.voice_device.addItem(f"{audio.output_device} (not connected)", audio.output_device)
        self.voice_device.activated.connect(lambda _i: self._voice_edit(output_device=self.voice_device.currentData()))
        form.addRow("Voice to", self.voice_device)
        problem = devices.virtual_camera_problem()
        self.camera_hint = QLabel("No virtual camera driver yet: switch it on to see how to get one." if problem
                                  else "")
        self.camera_hint.setObjectName("hint")
        self.camera_hint.setWordWrap(True)
        self.camera_hint.setVisible(bool(problem))
        form.addRow(self.camera_hint)
        self.show_settings(camera, audio)

    def show_settings(self, camera: CameraSettings, audio: AudioSettings) -> None:
        """Show settings changed elsewhere (emits nothing)."""
        self._camera, self._audio = camera, audio
        widgets = (self.camera_switch, self.resolution, self.mirror, self.badge, self.voice_switch, self.voice_device)
        for w in widgets:
            w.blockSignals(True)
        self.camera_switch.setChecked(camera.enabled)
        self.resolution.setCurrentText(camera.resolution)
        self.mirror.setChecked(camera.mirror)
        self.badge.setChecked(camera.badge)
        self.voice_switch.setChecked(audio.delayed_output)
        self.voice_device.setCurrentIndex(max(0, self.voice_device.findData(audio.output_device))
                                          if audio.output_device else 0)
        for w in widgets:
            w.blockSignals(False)

    def _camera_edit(self, **changes: object) -> None:
        self._camera = replace(self._camera, **changes)
        self.camera_changed.emit(self._camera)

    def _voice_edit(self, **changes: object) -> None:
        self._audio = replace(self._audio, **changes)
        self.voice_changed.emit(self._audio)
