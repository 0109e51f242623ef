"""Stand-ins for the hardware the live engine talks to: a sounddevice module and a pyvirtualcam backend."""

from __future__ import annotations

import collections
import errno
import threading
import time

import numpy as np
import pyvirtualcam


class FakePortAudioError(Exception):
    """What sounddevice raises when PortAudio fails."""


class FakeInputStream:
    """A ``sounddevice.InputStream``: a thread calls back with the backend's signal, one block per block duration."""

    def __init__(self, backend: FakeSoundDevice, *, device, samplerate, channels, dtype, blocksize, callback,
                 finished_callback=None, latency=None) -> None:
        self.backend = backend
        self.device = device
        self.samplerate = samplerate
        self.blocksize = blocksize
        self.callback = callback
        self.finished_callback = finished_callback
        self.latency = 0.01
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-portaudio", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        period = self.blocksize / self.samplerate
        next_at = time.monotonic()
        while not self._stop.is_set():
            if not self.backend.present:
                if self.backend.fail_with_finished and self.finished_callback is not None:
                    self.finished_callback()
                return  # the device vanished: no more callbacks
            block = self.backend.next_block(self.blocksize)
            self.callback(block[:, None], self.blocksize, None, None)
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(1.0)

    def close(self) -> None:
        self.stop()


class FakeSoundDevice:
    """A sounddevice module with one microphone that plays ``signal`` (looped) and can be unplugged.

    ``fail_with_finished``: an unplug ends the stream through PortAudio's finished callback (ALSA does this);
    otherwise the callbacks just stop coming (the stall detector must notice).
    """

    PortAudioError = FakePortAudioError

    def __init__(self, signal: np.ndarray | None = None, *, present: bool = True,
                 fail_with_finished: bool = False) -> None:
        self.signal = np.zeros(48_000, np.float32) if signal is None else signal.astype(np.float32)
        self.present = present
        self.fail_with_finished = fail_with_finished
        self.opened = 0
        self._position = 0

    def next_block(self, n: int) -> np.ndarray:
        idx = (self._position + np.arange(n)) % self.signal.size
        self._position += n
        return self.signal[idx]

    def InputStream(self, **kwargs) -> FakeInputStream:  # noqa: N802 - mirrors sounddevice's class name
        if not self.present:
            raise FakePortAudioError("Error querying device -1")
        self.opened += 1
        return FakeInputStream(self, **kwargs)


class FullDisk:
    """Wraps a PyAV output container: everything works, except that writing a packet fails as on a full disk."""

    def __init__(self, real: object) -> None:
        self.real = real

    def mux(self, packet: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


class RecordingCamera:
    """A pyvirtualcam backend that keeps what it was sent (frame count, send times, a few frames)."""

    instances: list[RecordingCamera] = []
    #: keep a copy of the latest frame (long runs turn this off)
    keep_last = True
    #: False: the device is unplugged (opening and sending fail)
    present = True

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **_: object) -> None:
        if not RecordingCamera.present:
            raise RuntimeError("'podium-test' backend: Device /dev/video-fake does not exist.")
        self.width, self.height, self.fps = width, height, fps
        self.sent = 0
        self.send_times: collections.deque[float] = collections.deque(maxlen=10_000)
        self.last: np.ndarray | None = None
        self.closed = False
        self._device = device or "/dev/video-fake"
        RecordingCamera.instances.append(self)

    def send(self, frame: np.ndarray) -> None:
        if not RecordingCamera.present:
            raise RuntimeError("write failed: No such device")
        self.sent += 1
        self.send_times.append(time.monotonic())
        if self.keep_last:
            self.last = frame.reshape(self.height, self.width, 3).copy()

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return self._device

    def native_fourcc(self) -> None:
        return None


def register_fake_camera() -> str:
    """Register :class:`RecordingCamera` as pyvirtualcam backend "podium-test"; returns the name."""
    RecordingCamera.instances.clear()
    RecordingCamera.present = True
    pyvirtualcam.register_backend("podium-test", RecordingCamera)
    return "podium-test"
