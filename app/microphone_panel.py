"""The microphone picker with a level meter."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QPushButton, QSizePolicy, QStyle, QVBoxLayout, QWidget

from inference import devices

#: The meter shows levels from this (dBFS) to 0.
METER_FLOOR_DB = -60.0
SYSTEM_DEFAULT = "System default"


class QtLevelMeter(QWidget):
    """A horizontal bar for a level in dBFS: green, yellow above -12 dB, red above -3 dB."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumHeight(10)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.level_db = METER_FLOOR_DB
        self._shown = 0.0

    def set_level(self, level_db: float) -> None:
        """Show ``level_db``; the bar rises at once and falls back gently."""
        self.level_db = level_db
        fraction = min(1.0, max(0.0, (level_db - METER_FLOOR_DB) / -METER_FLOOR_DB))
        self._shown = fraction if fraction > self._shown else self._shown * 0.8 + fraction * 0.2
        self.update()

    @property
    def fraction(self) -> float:
        """How full the bar is drawn (0..1)."""
        return self._shown

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.palette().color(self.palette().ColorRole.AlternateBase))
        painter.drawRoundedRect(rect, 4, 4)
        if self._shown <= 0:
            return
        db = METER_FLOOR_DB * (1 - self._shown)
        colour = QColor("#d93a3a") if db > -3 else QColor("#d9a93a") if db > -12 else QColor("#3cb371")
        painter.setBrush(colour)
        painter.drawRoundedRect(QRectF(rect.left(), rect.top(), rect.width() * self._shown, rect.height()), 4, 4)


class QtMicrophonePanel(QGroupBox):
    """Choose the microphone; the meter shows what it hears."""

    microphone_chosen = Signal(object)  # device name, or None for the system default

    def __init__(self, device: str | None) -> None:
        super().__init__("Microphone")
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.combo = QComboBox()
        self.combo.setToolTip("The microphone the avatar listens to")
        self.combo.activated.connect(lambda _i: self.microphone_chosen.emit(self.combo.currentData()))
        row.addWidget(self.combo, 1)
        refresh = QPushButton()
        refresh.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_BrowserReload))
        refresh.setToolTip("Look for microphones again (after plugging one in)")
        refresh.setFixedWidth(34)
        refresh.clicked.connect(lambda: self.refresh(self.combo.currentData()))
        row.addWidget(refresh)
        layout.addLayout(row)
        self.meter = QtLevelMeter()
        self.meter.setToolTip("What the microphone hears")
        layout.addWidget(self.meter)
        self.refresh(device)

    def refresh(self, selected: str | None) -> None:
        """List the microphones again, keeping ``selected`` (even if it is unplugged right now)."""
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(SYSTEM_DEFAULT, None)
        names = [d.name for d in devices.list_microphones()]
        for name in names:
            self.combo.addItem(name, name)
        if selected and selected not in names:
            self.combo.addItem(f"{selected} (not connected)", selected)
        self.combo.setCurrentIndex(max(0, self.combo.findData(selected)) if selected else 0)
        self.combo.blockSignals(False)
