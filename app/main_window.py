"""Podium's main window: a live preview of the avatar idling, and offline rendering.

The preview is driven by a :class:`app.preview.IdlePreview` on a Qt timer; it
shows the motion stage's output drawn by the pose-map renderer over the
portrait. Offline renders run on a worker thread with a progress dialog that
can cancel.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from inference import paths
from inference.errors import PipelineCancelled, PodiumError
from inference.settings import Settings

log = logging.getLogger(__name__)


def rgb_to_pixmap(rgb: np.ndarray) -> QPixmap:
    """An RGB uint8 ``[H, W, 3]`` array as a QPixmap (copied)."""
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    image = QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


class _RenderWorker(QObject):
    progress = Signal(int, int)
    finished = Signal(str)
    failed = Signal(str)

    def __init__(self, job) -> None:  # noqa: ANN001 - RenderJob
        super().__init__()
        self.job = job
        self.render = None

    def run(self) -> None:
        from inference.offline import OfflineRender

        try:
            self.render = OfflineRender(self.job, on_progress=lambda d, t: self.progress.emit(d, t or 0))
            self.render.run()
        except PipelineCancelled:
            self.failed.emit("")
        except PodiumError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # noqa: BLE001 - shown to the user instead of crashing the window
            log.exception("render failed")
            self.failed.emit(f"The render failed unexpectedly: {exc}")
        else:
            self.finished.emit(str(self.job.output))

    def cancel(self) -> None:
        if self.render is not None:
            self.render.cancel()


class QtMainWindow(QMainWindow):
    """The main window."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        from app.preview import IdlePreview

        self.settings = settings
        self.setWindowTitle("Podium")
        portrait = Path(settings.render.portrait) if settings.render.portrait else paths.default_portrait()
        self.preview = IdlePreview(portrait, settings.style, size=settings.render.size, fps=settings.render.fps)

        self.preview_label = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.preview_label.setMinimumSize(320, 320)
        self.preview_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.render_button = QPushButton("Render an audio file to video…")
        self.render_button.clicked.connect(self.choose_and_render)
        layout = QVBoxLayout()
        layout.addWidget(self.preview_label, 1)
        layout.addWidget(self.render_button)
        central = QWidget()
        central.setLayout(layout)
        self.setCentralWidget(central)
        self.statusBar().showMessage(f"Preview: {self.preview.renderer_name} on the CPU")

        self.timer = QTimer(self)
        self.timer.setInterval(int(1000 / settings.render.fps))
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        self.resize(720, 800)
        self._thread: QThread | None = None

    def tick(self) -> None:
        frame = self.preview.next_frame()
        pixmap = rgb_to_pixmap(frame)
        self.preview_label.setPixmap(
            pixmap.scaled(self.preview_label.size(), Qt.AspectRatioMode.KeepAspectRatio,
                          Qt.TransformationMode.SmoothTransformation)
        )

    def choose_and_render(self) -> None:
        audio, _ = QFileDialog.getOpenFileName(self, "Choose speech audio", "", "Audio (*.wav *.flac *.mp3 *.ogg *.m4a)")
        if not audio:
            return
        output, _ = QFileDialog.getSaveFileName(self, "Save video as", str(Path(audio).with_suffix(".mp4")),
                                                "MP4 video (*.mp4)")
        if output:
            self.start_render(Path(audio), Path(output))

    def start_render(self, audio: Path, output: Path) -> None:
        from inference.offline import RenderJob

        portrait = Path(self.settings.render.portrait) if self.settings.render.portrait else paths.default_portrait()
        job = RenderJob(audio=audio, portrait=portrait, output=output, renderer=self.settings.render.renderer,
                        size=self.settings.render.size, fps=self.settings.render.fps, style=self.settings.style)
        self._dialog = QProgressDialog("Rendering…", "Cancel", 0, 0, self)
        self._dialog.setWindowModality(Qt.WindowModality.WindowModal)
        worker = _RenderWorker(job)
        thread = QThread(self)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # Bound methods of this window: Qt queues these calls onto the GUI thread.
        worker.progress.connect(self._on_render_progress)
        worker.finished.connect(self._on_render_done)
        worker.failed.connect(self._on_render_failed)
        worker.finished.connect(thread.quit)
        worker.failed.connect(thread.quit)
        # Direct: the worker's thread is busy rendering; cancel() only sets a flag and is thread-safe.
        self._dialog.canceled.connect(worker.cancel, Qt.ConnectionType.DirectConnection)
        self._thread, self._worker = thread, worker
        thread.start()
        self._dialog.show()

    def _on_render_progress(self, done: int, total: int) -> None:
        self._dialog.setMaximum(max(total, done))
        self._dialog.setValue(done)

    def _on_render_done(self, path: str) -> None:
        self._dialog.close()
        self.statusBar().showMessage(f"Wrote {path}")

    def _on_render_failed(self, message: str) -> None:
        self._dialog.close()
        if message:
            QMessageBox.warning(self, "Render failed", message)
        else:
            self.statusBar().showMessage("Render cancelled")

    def closeEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt override
        self.timer.stop()
        if self._thread is not None:
            self._worker.cancel()
            self._thread.quit()
            self._thread.wait(5000)
        super().closeEvent(event)
