"""A private PulseAudio daemon with a null sink: a real-time paced "microphone" for tests and benchmarks.

Whatever is played into the null sink (``paplay``) is what its monitor source, the
default microphone, hears, at the pace of real time. The daemon runs as a child
process in its own runtime folder and is stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

SINK = "podium_test"


class PrivatePulseAudio:
    """Start with :meth:`start`, stop with :meth:`stop`; :attr:`env` is the environment that reaches it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runtime = folder / "runtime"
        self.home = folder / "home"
        self.process: subprocess.Popen | None = None
        self.players: list[subprocess.Popen] = []

    @staticmethod
    def missing() -> str | None:
        """What is missing to run it, or None."""
        for tool in ("pulseaudio", "pactl", "paplay"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed (installer/setup.sh --dev installs pulseaudio and pulseaudio-utils)"
        return None

    @property
    def env(self) -> dict[str, str]:
        return {"XDG_RUNTIME_DIR": str(self.runtime), "HOME": str(self.home),
                "PULSE_SERVER": f"unix:{self.runtime / 'pulse' / 'native'}"}

    def start(self, timeout: float = 10.0) -> None:
        self.runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / ".asoundrc").write_text("pcm.!default { type pulse }\nctl.!default { type pulse }\n")
        env = {**os.environ, **self.env}
        env.pop("PULSE_SERVER")
        self.process = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--use-pid-file=no",
             "--log-target=stderr", "--log-level=error",
             "-L", "module-native-protocol-unix", "-L", f"module-null-sink sink_name={SINK} rate=48000 channels=1",
             "-L", "module-always-sink"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pulseaudio exited: {self.process.stderr.read().decode(errors='replace')[-500:]}")
            if self.pactl("info").returncode == 0:
                self.pactl("set-default-source", f"{SINK}.monitor")
                self.pactl("set-default-sink", SINK)
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("pulseaudio did not start within the timeout")

    def pactl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], env={**os.environ, **self.env}, capture_output=True, text=True,
                              timeout=10)

    def play(self, wav: Path) -> subprocess.Popen:
        """Play ``wav`` into the null sink (the microphone hears it), in the background."""
        player = subprocess.Popen(["paplay", f"--device={SINK}", "--latency-msec=20", str(wav)], env={**os.environ, **self.env},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.players.append(player)
        return player

    def stop(self) -> None:
        for player in self.players:
            if player.poll() is None:
                player.terminate()
                player.wait(5)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


def reinitialise_portaudio() -> None:
    """Make PortAudio enumerate devices again (after the environment changed)."""
    import sounddevice

    sounddevice._terminate()
    sounddevice._initialize()
