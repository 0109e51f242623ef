"""Glass-to-glass latency of the live engine: microphone sample in → virtual-camera frame out, per renderer.

Usage: python main.py bench latency [--renderer NAME ...] [--seconds S] [--size N]

A private PulseAudio server plays public-domain LibriVox speech into a null sink
whose monitor is the microphone (real-time paced, as a real microphone), and a
stand-in pyvirtualcam backend takes the camera's frames. For every frame sent,
the latency is the time from the capture of the sound that frame shows (the
middle of its audio span, as stamped by the PortAudio callback, plus PortAudio's
reported input latency) to the frame leaving the virtual-camera sink. It
includes the motion's look-ahead, the renderer, the camera framing and the
hand-offs between threads; it does not include what the meeting app adds.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from bench.common import format_table, summarize, write_results
from inference.live import LiveEngine
from inference.render import factory as render_factory
from inference.settings import CameraSettings, RenderSettings, Settings
from inference.types import VideoFrame

SPEECH = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav")


def measure(renderer: str, seconds: float, size: int, daemon) -> dict[str, object]:  # noqa: ANN001 - PrivatePulseAudio
    """Run the engine on ``renderer`` for ``seconds`` of speech; returns latency figures in milliseconds."""
    from tests.live.fakes import RecordingCamera, register_fake_camera

    RecordingCamera.keep_last = False
    lock = threading.Lock()
    glass: list[float] = []
    events = []
    engine = LiveEngine(Settings(render=RenderSettings(size=size, renderer=renderer)), on_event=events.append,
                        camera_backend=register_fake_camera())

    def sent(frame: VideoFrame, sent_at: float) -> None:
        heard = engine.timeline.time_of((frame.index + 0.5) * engine.sample_rate / engine.fps)
        source = engine._source.inner if engine._source is not None else None  # noqa: SLF001 - bench probe
        if heard is not None and frame.meta.get("renderer") == renderer:
            with lock:
                glass.append(sent_at - heard + float(getattr(source, "input_latency", 0.0)))

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
    played = 0.0
    while played < seconds:
        player = daemon.play(SPEECH)
        t0 = time.monotonic()
        player.wait()
        played += time.monotonic() - t0
    status = engine.status()
    engine.stop()
    problems = [e.message for e in events if e.level != "info"]
    with lock:
        stats = summarize(glass)
    return {"renderer": renderer, "device": status.device, "fps": status.fps, "skipped": status.skipped_frames,
            "lookahead_ms": 1000 * engine.motion.lookahead_seconds, "glass_to_glass": stats,
            "problems": problems}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="main.py bench latency", description=__doc__.splitlines()[0])
    parser.add_argument("--renderer", action="append", help="renderer(s) to measure (default: every available one)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of speech per renderer")
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args(argv)

    from tests.live.pulse import PrivatePulseAudio, reinitialise_portaudio

    missing = PrivatePulseAudio.missing()
    if missing or not SPEECH.exists():
        print(f"cannot measure here: {missing or f'{SPEECH} is missing (apt install pocketsphinx-testdata)'}")
        return 1
    renderers = args.renderer or [n for n in render_factory.RENDERERS if render_factory.availability(n)[0]]
    with tempfile.TemporaryDirectory() as tmp:
        daemon = PrivatePulseAudio(Path(tmp))
        daemon.start()
        os.environ.update(daemon.env)
        reinitialise_portaudio()
        try:
            results = [measure(name, args.seconds, args.size, daemon) for name in renderers]
        finally:
            daemon.stop()
    rows = [[r["renderer"], r["device"], r["glass_to_glass"]["median_ms"], r["glass_to_glass"]["p95_ms"],
             r["glass_to_glass"]["max_ms"], r["glass_to_glass"]["n"], r["lookahead_ms"], r["fps"], r["skipped"]]
            for r in results]
    table = format_table(["renderer", "device", "median ms", "p95 ms", "max ms", "frames", "look-ahead ms",
                          "fps", "skipped"], rows)
    print(table)
    for r in results:
        for problem in r["problems"]:
            print(f"{r['renderer']}: {problem}")
    path = write_results("latency", {"size": args.size, "seconds": args.seconds, "renderers": results}, table)
    print(f"\nresults: {path}")
    return 0
