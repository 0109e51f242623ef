"""Offline render of an audio file from the window: a worker on a QThread and a cancellable progress dialog."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt, QThread, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from inference.errors import PipelineCancelled, PodiumError
from inference.offline import OfflineRender, RenderJob

log = logging.getLogger(__name__)


class _RenderWorker(QObject):
    progress = Signal(int, int)
    finished = Signal(str)
    failed = Signal(str)

    def __init__(self, job: RenderJob) -> None:
        super().__init__()
        self.job = job
        self.render: OfflineRender | None = None
        self._cancelled = False

    def run(self) -> None:
        try:
            self.render = OfflineRender(self.job, on_progress=lambda d, t: self.progress.emit(d, t or 0))
            if self._cancelled:
                raise PipelineCancelled("cancelled before it started")
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
        self._cancelled = True
        if self.render is not None:
            self.render.cancel()


class QtOfflineRender(QObject):
    """Runs one :class:`RenderJob` with a progress dialog over ``parent``.

    ``done`` carries (level, message) to show: ("info", "Wrote …"), ("info", "Render cancelled") or
    ("error", what went wrong).
    """

    done = Signal(str, str)

    def __init__(self, job: RenderJob, parent: QWidget) -> None:
        super().__init__(parent)
        self.dialog = QProgressDialog(f"Rendering {job.audio.name}…", "Cancel", 0, 0, parent)
        self.dialog.setWindowTitle("Render")
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(0)
        self.worker = _RenderWorker(job)
        self.thread = QThread(self)
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        # Bound methods of this GUI-thread object: Qt queues these calls onto the GUI thread.
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.worker.finished.connect(self.thread.quit)
        self.worker.failed.connect(self.thread.quit)
        # Direct: the worker's thread is busy rendering; cancel() only sets flags and is thread-safe.
        self.dialog.canceled.connect(self.worker.cancel, Qt.ConnectionType.DirectConnection)

    def start(self) -> None:
        self.thread.start()
        self.dialog.show()

    def cancel_and_wait(self, timeout_ms: int = 5000) -> None:
        self.worker.cancel()
        self.thread.quit()
        self.thread.wait(timeout_ms)

    def _on_progress(self, done: int, total: int) -> None:
        self.dialog.setMaximum(max(total, done))
        self.dialog.setValue(done)

    def _on_finished(self, path: str) -> None:
        self.dialog.close()
        self.done.emit("info", f"Wrote {path}")

    def _on_failed(self, message: str) -> None:
        self.dialog.close()
        if message:
            self.done.emit("error", f"The render failed: {message}")
        else:
            self.done.emit("info", "Render cancelled")
