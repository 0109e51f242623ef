"""The real window on a real (virtual) X display: it starts on xcb, draws, and the screenshot shows it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def free_display() -> int:
    for n in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number between :90 and :199")


@pytest.fixture
def xvfb():
    """An Xvfb server on a free display, stopped by its PID afterwards; yields the DISPLAY value."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (installer/setup.sh --dev installs xvfb)")
    number = free_display()
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.skip("Xvfb did not start")
        time.sleep(0.05)
    yield f":{number}"
    server.terminate()
    server.wait(5)


def test_window_on_x11(xvfb, tmp_path, librivox_dir):
    shot = tmp_path / "window_xvfb.png"
    env = {**os.environ, "DISPLAY": xvfb, "QT_QPA_PLATFORM": "xcb",
           "PODIUM_CONFIG_DIR": str(tmp_path / "config"), "PODIUM_DATA_DIR": str(tmp_path / "data")}
    env.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    run = subprocess.run([sys.executable, "-m", "tests.app.xvfb_window", str(shot), "--seconds", "4"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "platform=xcb saved=True" in run.stdout
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape == (800, 1280, 3)
    # looked at: the dark window fills the screen, the avatar talks in the preview, panels left and right
    assert image.std() > 20  # not a blank screen
    left, preview = image[100:600, 30:240], image[100:650, 300:950]
    assert left.mean() < 90 and preview.std() > 25  # a dark panel; a picture in the preview
