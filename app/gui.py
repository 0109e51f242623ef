"""The Qt application entry point: creates the QApplication and shows the main window."""

from __future__ import annotations

import sys

from inference.settings import Settings, save_settings


def run_gui(settings: Settings) -> int:
    """Open the main window and run the Qt event loop until it closes."""
    from PySide6.QtWidgets import QApplication

    from app.main_window import QtMainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Podium")
    window = QtMainWindow(settings)
    window.show()
    code = app.exec()
    save_settings(window.settings)
    return int(code)
