"""Glass-to-glass latency of the live engine: microphone sample in → virtual-camera frame out, per renderer.

Usage: python main.py bench latency [--renderer NAME ...] [--seconds S] [--size N] [--microphone pulse|paced]
           [--input-latency-ms MS] [--name NAME]

With ``--microphone pulse`` (the default), a private PulseAudio server plays public-domain LibriVox speech
into a null sink whose monitor is the microphone (real-time paced, as a real microphone). With
``--microphone paced``, for machines without PulseAudio or PortAudio (the GPU machine), the same speech
comes from :class:`PacedMicrophone`: 20 ms blocks handed over when their last sample would have been
captured, stamped then, as PortAudio's callback stamps them; a sound card's input latency is then not in
the measurement, and ``--input-latency-ms`` adds the figure PulseAudio reported where it ran.

A stand-in pyvirtualcam backend takes the camera's frames. For every frame sent, the latency is the time
from the capture of the sound that frame shows (the middle of its audio span, as stamped by the source,
plus the input latency) to the frame leaving the virtual-camera sink. It includes the motion's look-ahead,
the renderer, the camera framing and the hand-offs between threads; it does not include what the meeting
app adds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.common import format_table, summarize, write_results
from inference.live import LiveEngine
from inference.render import factory as render_factory
from inference.settings import CameraSettings, RenderSettings, Settings
from inference.sources.audio_file import ENGINE_SAMPLE_RATE
from inference.types import AudioBlock, VideoFrame

SPEECH = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav")
PACED_BLOCK_SECONDS = 0.02  # PortAudio's block in the app (MicrophoneSource's default)


def read_wav(path: Path, rate: int = ENGINE_SAMPLE_RATE) -> np.ndarray:
    """A 16-bit PCM WAV as mono float32 at ``rate`` (linear resampling; the standard library reads it)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * wav.getsampwidth()}-bit samples; give a 16-bit PCM WAV")
        channels, native = wav.getnchannels(), wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    mono = samples.reshape(-1, channels).mean(axis=1)
    times = np.arange(int(len(mono) * rate / native)) / rate
    return np.interp(times, np.arange(len(mono)) / native, mono).astype(np.float32)


class PacedMicrophone:
    """Speech, looped, delivered in real time as a microphone delivers it (see the module docstring)."""

    input_latency = 0.0  # no sound card: the bench adds --input-latency-ms
    total_samples = None

    def __init__(self, signal: np.ndarray, sample_rate: int = ENGINE_SAMPLE_RATE,
                 block_seconds: float = PACED_BLOCK_SECONDS, now: Callable[[], float] = time.monotonic) -> None:
        self.signal, self.sample_rate, self.now = signal, sample_rate, now
        self.block = max(1, int(round(block_seconds * sample_rate)))
        self.position = 0
        self.started_at: float | None = None
        self.closed = threading.Event()

    def read(self) -> AudioBlock | None:
        if self.started_at is None:
            self.started_at = self.now()
        due = self.started_at + (self.position + self.block) / self.sample_rate
        if self.closed.wait(max(0.0, due - self.now())):
            return None
        samples = self.signal[(self.position + np.arange(self.block)) % len(self.signal)]
        block = AudioBlock(samples, self.sample_rate, self.position, captured_at=self.now())
        self.position += self.block
        return block

    def close(self) -> None:
        self.closed.set()


def measure(renderer: str, seconds: float, size: int, play: Callable[[float], None],
            source_factory: Callable[..., object] | None = None, input_latency: float = 0.0) -> dict[str, object]:
    """Run the engine on ``renderer`` while ``play(seconds)`` plays speech to its microphone; returns latency figures
    in milliseconds. ``source_factory`` replaces the microphone (the paced source); ``input_latency`` (seconds) is
    added to every figure on top of what the source reports."""
    from tests.live.fakes import RecordingCamera, register_fake_camera

    RecordingCamera.keep_last = False
    lock = threading.Lock()
    glass: list[float] = []
    events = []
    engine = LiveEngine(Settings(render=RenderSettings(size=size, renderer=renderer)), on_event=events.append,
                        camera_backend=register_fake_camera(), source_factory=source_factory)

    def sent(frame: VideoFrame, sent_at: float) -> None:
        heard = engine.timeline.time_of((frame.index + 0.5) * engine.sample_rate / engine.fps)
        source = engine._source.inner if engine._source is not None else None  # noqa: SLF001 - bench probe
        if heard is not None and frame.meta.get("renderer") == renderer:
            with lock:
                glass.append(sent_at - heard + float(getattr(source, "input_latency", 0.0)) + input_latency)

    engine.start()
    engine.set_live(True)
    engine.set_camera(CameraSettings(enabled=True))
    engine.camera_slot.wanted.on_sent = sent
    deadline = time.monotonic() + 30
    while engine.status().renderer != renderer and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)  # the sound server starts delivering
    with lock:
        glass.clear()
    skipped_before = engine.status().skipped_frames  # (the renderer's warm-up is not measured)
    play(seconds)
    status = engine.status()
    engine.stop()
    problems = [e.message for e in events if e.level != "info"]
    with lock:
        stats = summarize(glass)
    return {"renderer": renderer, "device": status.device, "fps": status.fps,
            "skipped": status.skipped_frames - skipped_before, "skipped_warming_up": skipped_before,
            "lookahead_ms": 1000 * engine.motion.lookahead_seconds, "glass_to_glass": stats,
            "problems": problems}


def play_through(daemon) -> Callable[[float], None]:  # noqa: ANN001 - tests.live.pulse.PrivatePulseAudio
    """Plays the speech into the PulseAudio microphone, again and again, for at least the given seconds."""
    def play(seconds: float) -> None:
        played = 0.0
        while played < seconds:
            player = daemon.play(SPEECH)
            t0 = time.monotonic()
            player.wait()
            played += time.monotonic() - t0
    return play


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="main.py bench latency", description=__doc__.splitlines()[0])
    parser.add_argument("--renderer", action="append", help="renderer(s) to measure (default: every available one)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of speech per renderer")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--microphone", choices=["pulse", "paced"], default="pulse",
                        help="a PulseAudio null sink (default) or the paced source (no sound server needed)")
    parser.add_argument("--speech", type=Path, default=SPEECH, help="16-bit PCM WAV of speech")
    parser.add_argument("--input-latency-ms", type=float, default=0.0,
                        help="added to every figure (paced: a sound card's input latency, measured elsewhere)")
    parser.add_argument("--name", default="latency", help="results name")
    args = parser.parse_args(argv)

    if not args.speech.exists():
        print(f"cannot measure here: {args.speech} is missing (apt install pocketsphinx-testdata, or give --speech)")
        return 1
    renderers = args.renderer or [n for n in render_factory.RENDERERS if render_factory.availability(n)[0]]
    extra = args.input_latency_ms / 1000.0
    if args.microphone == "paced":
        signal = read_wav(args.speech)
        results = [measure(name, args.seconds, args.size, time.sleep,
                           lambda on_event, s=signal: PacedMicrophone(s), input_latency=extra) for name in renderers]
    else:
        from tests.live.pulse import PrivatePulseAudio, reinitialise_portaudio

        if missing := PrivatePulseAudio.missing():
            print(f"cannot measure here: {missing} (or use --microphone paced)")
            return 1
        with tempfile.TemporaryDirectory() as tmp:
            daemon = PrivatePulseAudio(Path(tmp))
            daemon.start()
            os.environ.update(daemon.env)
            reinitialise_portaudio()
            try:
                results = [measure(name, args.seconds, args.size, play_through(daemon), input_latency=extra)
                           for name in renderers]
            finally:
                daemon.stop()
    rows = [[r["renderer"], r["device"], r["glass_to_glass"]["median_ms"], r["glass_to_glass"]["p95_ms"],
             r["glass_to_glass"]["max_ms"], r["glass_to_glass"]["n"], r["lookahead_ms"], r["fps"], r["skipped"],
             r["skipped_warming_up"]] for r in results]
    table = format_table(["renderer", "device", "median ms", "p95 ms", "max ms", "frames", "look-ahead ms",
                          "fps", "skipped", "skipped before"], rows)
    print(table)
    for r in results:
        for problem in r["problems"]:
            print(f"{r['renderer']}: {problem}")
    context = (f"microphone: {args.microphone}" + (f", {args.input_latency_ms:g} ms of input latency added"
                                                     if args.input_latency_ms else ""))
    print(context)
    path = write_results(args.name, {"size": args.size, "seconds": args.seconds, "microphone": args.microphone,
                                     "input_latency_added_ms": args.input_latency_ms, "renderers": results},
                         context + "\n\n" + table)
    print(f"\nresults: {path}")
    return 0
