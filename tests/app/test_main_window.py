"""The window opens offscreen, animates its preview, and renders a file on a worker thread."""

import numpy as np

from app.main_window import QtMainWindow
from inference.settings import Settings


def test_window_shows_an_animated_preview(qtbot, tmp_path):
    window = QtMainWindow(Settings())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.preview_label.pixmap() is not None and not window.preview_label.pixmap().isNull(),
                    timeout=5000)
    first = window.preview.next_frame().copy()
    for _ in range(60):
        window.preview.next_frame()
    later = window.preview.next_frame()
    assert first.shape == later.shape and not np.array_equal(first, later)  # idle motion, never frozen
    shot = tmp_path / "window.png"
    assert window.grab().save(str(shot)) and shot.stat().st_size > 1000
    window.close()


def test_render_from_the_window(qtbot, tmp_path, onset_wav):
    window = QtMainWindow(Settings())
    qtbot.addWidget(window)
    target = tmp_path / "from_gui.mp4"
    window.start_render(onset_wav, target)
    qtbot.waitUntil(lambda: target.exists(), timeout=60_000)
    qtbot.waitUntil(lambda: "Wrote" in window.statusBar().currentMessage(), timeout=10_000)
    window.close()
