"""The large live preview: the newest frame, scaled to fit, with a state chip (IDLE, LIVE, PAUSED, REC)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.theme import LIVE_RED


def rgb_to_image(rgb: np.ndarray) -> QImage:
    """An RGB uint8 ``[H, W, 3]`` array as a QImage (copied, so the array may change afterwards)."""
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()


class QtPreview(QWidget):
    """Shows frames as they come; the chip in the corner says what the avatar is doing."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumSize(360, 360)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._image: QImage | None = None
        self._chip = ("IDLE", QColor("#5b6070"))
        self._hint = "Starting…"
        self.frames_shown = 0

    def show_frame(self, rgb: np.ndarray) -> None:
        self._image = rgb_to_image(rgb)
        self.frames_shown += 1
        self.update()

    def set_state(self, *, live: bool, paused: bool, recording_seconds: float | None) -> None:
        """Update the chip: REC (with time) wins over PAUSED, which wins over LIVE and IDLE."""
        if recording_seconds is not None:
            minutes, seconds = divmod(int(recording_seconds), 60)
            chip = (f"● REC {minutes}:{seconds:02d}", QColor(LIVE_RED))
        elif paused:
            chip = ("PAUSED", QColor("#b8860b"))
        elif live:
            chip = ("LIVE", QColor(LIVE_RED))
        else:
            chip = ("IDLE · press Go live to talk", QColor("#5b6070"))
        if chip != self._chip:
            self._chip = chip
            self.update()

    def set_hint(self, text: str) -> None:
        """Text shown while there is no frame yet."""
        self._hint = text
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#0e0f12"))
        if self._image is None:
            painter.setPen(QColor("#9aa0ab"))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._hint)
            return
        side = min(self.width(), self.height())
        scaled = self._image.size().scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio)
        x = (self.width() - scaled.width()) / 2
        y = (self.height() - scaled.height()) / 2
        target = QRectF(x, y, scaled.width(), scaled.height())
        clip = QPainterPath()
        clip.addRoundedRect(target, 10, 10)
        painter.setClipPath(clip)
        painter.drawImage(target, self._image)
        painter.setClipping(False)
        self._paint_chip(painter, target)

    def _paint_chip(self, painter: QPainter, frame: QRectF) -> None:
        text, colour = self._chip
        font = QFont(self.font())
        font.setBold(True)
        font.setPointSizeF(max(9.0, font.pointSizeF()))
        painter.setFont(font)
        metrics = painter.fontMetrics()
        w = metrics.horizontalAdvance(text) + 20
        h = metrics.height() + 8
        rect = QRectF(frame.left() + 12, frame.top() + 12, w, h)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(rect, h / 2, h / 2)
        painter.setPen(QColor("white"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
