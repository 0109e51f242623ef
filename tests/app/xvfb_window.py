"""Run the real window on an X display (Xvfb in the tests) with stand-in devices, and save a screenshot.

Usage: python -m tests.app.xvfb_window OUT.png [--theme dark|light] [--seconds S]

The microphone plays LibriVox speech and the window goes live, so the shot shows
a talking avatar, a moving level meter and a filled status line. The whole
screen is grabbed through Qt (the X server's root window).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--theme", default="dark")
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)

    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from app.main_window import QtMainWindow
    from inference.live import LiveEngine
    from inference.settings import Settings, UiSettings
    from inference.sources.audio_file import load_audio
    from inference.sources.microphone import MicrophoneSource
    from tests.live.fakes import FakeSoundDevice, register_fake_camera

    app = QApplication(sys.argv[:1])
    speech = load_audio("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav")
    microphone = FakeSoundDevice(speech)
    camera = register_fake_camera()

    def engine(settings, on_frame, on_event):  # noqa: ANN001, ANN202
        return LiveEngine(settings, on_frame=on_frame, on_event=on_event, camera_backend=camera,
                          source_factory=lambda report: MicrophoneSource(None, wait_for_device=True, on_event=report,
                                                                         backend=microphone))

    settings = dataclasses.replace(Settings(), ui=UiSettings(theme=args.theme))
    window = QtMainWindow(settings, engine_factory=engine, save_on_close=False)
    window.show()
    QTimer.singleShot(800, lambda: window.live_button.setChecked(True))
    QTimer.singleShot(900, lambda: window.output_panel.camera_switch.setChecked(True))

    def shoot() -> None:
        screen = QGuiApplication.primaryScreen()
        ok = screen.grabWindow(0).save(str(args.out))
        print(f"platform={QGuiApplication.platformName()} saved={ok}")
        window.close()
        app.quit()

    QTimer.singleShot(int(args.seconds * 1000), shoot)
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
