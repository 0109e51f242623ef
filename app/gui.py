"""The Qt application entry point: creates the QApplication and shows the main window."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from inference.settings import Settings

log = logging.getLogger(__name__)


def _log_uncaught_thread_exception(args: threading.ExceptHookArgs) -> None:
    log.error("uncaught error in thread %s", args.thread.name if args.thread else "?",
              exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def run_gui(settings: Settings) -> int:
    """Open the main window and run the Qt event loop until it closes (the window saves the settings)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.main_window import QtMainWindow

    threading.excepthook = _log_uncaught_thread_exception  # no error on a worker thread goes unseen
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Podium")
    window = QtMainWindow(settings)
    window.show()
    # Ctrl-C in the terminal closes the window the normal way (the settings are saved, a recording finished).
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wake = QTimer()
    wake.timeout.connect(lambda: None)  # lets Python run its signal handlers while Qt's loop waits
    wake.start(250)
    return int(app.exec())
