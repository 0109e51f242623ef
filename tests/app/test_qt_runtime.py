"""Guards against a PySide6 release that breaks the engine's per-frame hand-over to the window.

PySide6 6.12.0's ``Signal.emit()`` drops a reference to ``True`` on every call: the live window emits
once per frame, so after a few minutes (or at exit) Python aborts with "bool_dealloc: deallocating True
or False". Podium pins 6.11.3; this test fails, instead of the app crashing, if an upgrade brings it back.
"""

import subprocess
import sys

PROBE = """
import sys, threading
from PySide6.QtCore import QCoreApplication, QObject, Signal

class Bridge(QObject):
    frame_ready = Signal()

app = QCoreApplication([])
bridge = Bridge()
bridge.frame_ready.connect(lambda: None)
before = sys.getrefcount(True)
worker = threading.Thread(target=lambda: [bridge.frame_ready.emit() for _ in range(5000)])
worker.start(); worker.join()
for _ in range(5000):
    bridge.frame_ready.emit()
app.processEvents()
print(sys.getrefcount(True) - before)
"""


def test_signal_emit_keeps_python_reference_counts():
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"PySide6 aborted while emitting signals: {run.stderr[-500:]}"
    assert abs(int(run.stdout.strip())) < 100, f"True lost {run.stdout.strip()} references over 10,000 emits"
