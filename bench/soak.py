"""Soak: minutes (an hour by default) of live stream in simulated time; audio-video drift and memory.

Usage: python main.py bench soak [--minutes 60] [--fps 5] [--size 128] [--out DIR]

The microphone is simulated: each 80 ms block advances a :class:`SimulatedTime`
(the microphone's crystal runs 100 ppm fast, as cheap ones do), and before each
block it waits (in real time) until the engine has turned everything before it
into frames on the virtual camera (a stand-in pyvirtualcam backend) and handed
the voice to the delayed audio out, so the run is paced like real time but takes
seconds a minute. The delayed voice is pulled by a simulated output device at
the nominal rate, as a sound card would; a recording runs from the first sample.
The microphone plays the first sentence of the bundled public-domain LibriVox
speech (``assets/audio/demo_speech.flac``), looped.

Figures: the voice–picture error of the delayed audio out (after its first
second), the spread of the picture's own delay, the process's resident memory
after two minutes and at the end, skipped frames, and the recording's audio and
video lengths. ``tests/live/test_soak.py`` runs ten minutes of this and asserts
the targets; the exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench.common import format_table, write_results
from inference.clock import SimulatedTime
from inference.live import CaptureLockedClock, EngineEvent, LiveEngine
from inference.motion.factory import create_motion
from inference.paths import demo_audio
from inference.settings import CameraSettings, RenderSettings, Settings
from inference.types import AudioBlock

RATE = 48_000
BLOCK = 3840  # 80 ms blocks: fewer hand-overs than 20 ms ones, the same stream
START = 1000.0  # the simulated clock's reading when the stream starts
SETTLE_TIMEOUT_S = 10.0  # real seconds the engine may take to catch up with one block

#: targets (the issue's): drift, picture delay spread and A/V length difference in ms, memory growth in MiB
DRIFT_MAX_MS = 40.0
DELAY_SPREAD_MAX_MS = 40.0
MEMORY_GROWTH_MAX_MIB = 15.0
AV_DIFFERENCE_MAX_MS = 40.0


def rss_mb() -> float:
    """This process's resident memory in MiB (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def load_speech() -> np.ndarray:
    """The first sentence of the bundled LibriVox speech (the test's ``speech`` fixture), 48 kHz mono float32."""
    from inference.sources.audio_file import load_audio

    segment = json.loads(demo_audio().with_suffix(".json").read_text(encoding="utf-8"))["segments"][0]
    audio = load_audio(demo_audio(), RATE)
    return np.ascontiguousarray(audio[int(segment["start"] * RATE):int(segment["end"] * RATE)])


class SimulatedMicrophone:
    """An audio source in simulated time, in lockstep with the engine (see the module docstring)."""

    sample_rate = RATE
    total_samples = None

    def __init__(self, sim: SimulatedTime, signal: np.ndarray, blocks: int, skew: float) -> None:
        self.sim = sim
        self.signal = signal
        self.blocks = blocks
        self.skew = skew
        self.position = 0
        self.start_time = sim.monotonic()
        self.settled: Callable[[int], bool] = lambda delivered: True
        self.each_block: Callable[[], None] = lambda: None
        self.closed = False
        self.failure: str | None = None

    def read(self) -> AudioBlock | None:
        if self.closed or self.position >= self.blocks * BLOCK:
            return None
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while not self.settled(self.position):
            if self.closed:
                return None
            if time.monotonic() > deadline:
                self.failure = f"the engine did not settle at sample {self.position}"
                raise TimeoutError(self.failure)
            time.sleep(0.0002)
        self.each_block()
        due = self.start_time + (self.position + BLOCK) / self.sample_rate / (1 + self.skew)
        self.sim.advance(max(0.0, due - self.sim.monotonic()))
        idx = (self.position + np.arange(BLOCK)) % self.signal.size
        block = AudioBlock(self.signal[idx], self.sample_rate, self.position, self.sim.monotonic())
        self.position += BLOCK
        return block

    def close(self) -> None:
        self.closed = True


@dataclass
class SoakResult:
    """What a soak measured. Times in simulated seconds from the start of the stream unless said otherwise."""

    minutes_requested: float
    simulated_minutes: float
    samples_requested: int
    samples_delivered: int
    wall_seconds: float
    fps: float
    size: int
    skew: float
    #: resident memory after two minutes of stream (None for runs of two minutes or less) and a second before the end
    memory_2min_mib: float | None
    memory_end_mib: float | None
    #: |voice − picture| of the delayed audio out, after its first second
    voice_error_count: int
    voice_error_median_ms: float
    voice_error_max_ms: float
    voice_error_max_at_s: float
    last_voice_error_at_s: float
    #: the same, over the last simulated minute (does the error creep?)
    voice_error_last_minute_max_ms: float
    #: spread (max − min) of the picture's own delay, sampled every 5 s
    video_delay_spread_ms: float
    video_delay_samples: int
    skipped_frames: int
    recorder_frames: int
    recorder_samples: int
    mp4_duration_s: float | None
    problems: list[str] = field(default_factory=list)
    #: (simulated minute, resident MiB), read about once a simulated minute
    memory_trace_mib: list[tuple[float, float]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.samples_delivered == self.samples_requested

    @property
    def memory_growth_mib(self) -> float | None:
        if self.memory_2min_mib is None or self.memory_end_mib is None:
            return None
        return self.memory_end_mib - self.memory_2min_mib

    @property
    def recording_av_difference_ms(self) -> float:
        """The recording's audio length minus its video length."""
        return 1000.0 * (self.recorder_samples / RATE - self.recorder_frames / self.fps)

    def figures(self) -> dict[str, object]:
        return {**asdict(self), "complete": self.complete, "memory_growth_mib": self.memory_growth_mib,
                "recording_av_difference_ms": self.recording_av_difference_ms}


def run_soak(minutes: float, out_dir: Path, *, fps: float = 5.0, size: int = 128, skew: float = 1e-4,
             speech: np.ndarray | None = None, wall_limit_s: float | None = None,
             progress: Callable[[float, float], None] | None = None) -> SoakResult:
    """Stream ``minutes`` of simulated microphone into the live engine; the recording goes to ``out_dir/soak.mp4``.

    ``speech``: the microphone's signal, looped (48 kHz mono float32; default :func:`load_speech`).
    ``wall_limit_s``: give up after this many real seconds (the result then says how far it got).
    ``progress(done, total)``: called about ten times a real second with simulated seconds of stream.
    """
    import av

    from tests.live.fakes import RecordingCamera, register_fake_camera
    from tests.live.test_audio_out import FakeOutput

    signal = load_speech() if speech is None else speech
    blocks = int(minutes * 60 * RATE / BLOCK)
    total = blocks * BLOCK
    sim = SimulatedTime(START)
    mic = SimulatedMicrophone(sim, signal, blocks, skew)
    output = FakeOutput()
    events: list[EngineEvent] = []
    settings = Settings(render=RenderSettings(size=size, fps=fps, renderer="pose-map"))
    keep_last = RecordingCamera.keep_last
    RecordingCamera.keep_last = False  # a copy of every frame is not what is measured
    engine = LiveEngine(
        settings, on_event=events.append, source_factory=lambda on_event: mic, camera_backend=register_fake_camera(),
        audio_backend=output, now=sim.monotonic,
        motion_factory=lambda style, rate, fps_: create_motion(style, rate, fps_, speech=False),
        clock_factory=lambda timeline, lookahead: CaptureLockedClock(fps, timeline, lookahead, now=sim.monotonic,
                                                                     sleep=sim.sleep),
    )
    # the bookkeeping is allocated (and its pages touched) up front, so it does not grow the memory measured
    voice_errors = np.full((blocks, 2), np.nan)  # (simulated time, voice − picture) seen before each block
    video_delays = np.full(blocks // (5 * RATE // BLOCK) + 2, np.nan)
    counts = {"voice": 0, "video": 0, "played": 0}
    memory: dict[str, float] = {}
    trace: list[tuple[float, float]] = []
    two_minutes = 2 * 60 * RATE if total - RATE > 2 * 60 * RATE else None
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "soak.mp4"

    def settled(delivered: int) -> bool:
        motion, renderer, camera, voice = (engine.motion, engine.renderer, engine.camera_slot.sink,
                                           engine.audio_out_slot.sink)
        sent = camera.frames_sent if camera is not None else 0
        heard = voice.received_until if voice is not None else 0
        return (motion is not None and motion.accepted == delivered and renderer.handled == motion.frames_made
                and sent == renderer.handled - renderer.skipped and (heard == delivered or voice is None)
                and recorder.frames == sent and recorder.samples == delivered)

    def each_block() -> None:
        voice = engine.audio_out_slot.sink
        if voice is not None:
            # the output device plays what its own (exact) clock says is due: the microphone's runs fast
            due = int((sim.monotonic() - START) * RATE)
            voice.pull(due - counts["played"])
            counts["played"] = due
            if voice.errors:
                voice_errors[counts["voice"]] = voice.errors[-1]
                counts["voice"] += 1
        camera = engine.camera_slot.sink
        if camera is not None and camera.last_sent is not None and mic.position % (RATE * 5) == 0:
            index, sent_at = camera.last_sent
            video_delays[counts["video"]] = sent_at - engine.timeline.time_of((index + 0.5) * RATE / fps)
            counts["video"] += 1
        if two_minutes is not None and "2min" not in memory and mic.position >= two_minutes:
            memory["2min"] = rss_mb()
        if "end" not in memory and mic.position >= total - RATE:
            memory["end"] = rss_mb()

    mic.settled, mic.each_block = settled, each_block
    engine.set_live(True)
    engine.set_camera(CameraSettings(enabled=True))
    engine.set_audio_out(True, "virtual mic")
    recorder = engine.start_recording(path)  # from sample 0: its counts match the camera's
    t0 = time.monotonic()
    try:
        engine.start()
        while mic.position < total and mic.failure is None:
            if wall_limit_s is not None and time.monotonic() - t0 > wall_limit_s:
                break
            if progress is not None:
                progress(mic.position / RATE, total / RATE)
            if mic.position >= len(trace) * 60 * RATE:
                trace.append((mic.position / RATE / 60, rss_mb()))
            time.sleep(0.1)
        time.sleep(0.2)
        wall = time.monotonic() - t0
        if progress is not None:
            progress(mic.position / RATE, total / RATE)
        status = engine.status()
    finally:
        engine.stop()
        RecordingCamera.keep_last = keep_last

    duration = None
    if path.exists():
        with av.open(str(path)) as container:
            duration = float(container.duration) / 1e6 if container.duration is not None else None
    errors = voice_errors[:counts["voice"]]
    late = errors[errors[:, 0] > START + 1.0]
    magnitude = np.abs(late[:, 1])
    last_minute = np.abs(late[late[:, 0] > sim.monotonic() - 60, 1])
    delays = video_delays[:counts["video"]]
    problems = [f"{e.topic}: {e.message}" for e in events if e.level != "info"]
    if mic.failure is not None:
        problems.append(mic.failure)
    return SoakResult(
        minutes_requested=minutes,
        simulated_minutes=(sim.monotonic() - START) / 60,
        samples_requested=total,
        samples_delivered=mic.position,
        wall_seconds=wall,
        fps=fps,
        size=size,
        skew=skew,
        memory_2min_mib=memory.get("2min"),
        memory_end_mib=memory.get("end"),
        voice_error_count=int(magnitude.size),
        voice_error_median_ms=float(np.median(magnitude)) * 1000 if magnitude.size else float("nan"),
        voice_error_max_ms=float(magnitude.max()) * 1000 if magnitude.size else float("nan"),
        voice_error_max_at_s=float(late[np.argmax(magnitude), 0] - START) if magnitude.size else float("nan"),
        last_voice_error_at_s=float(errors[-1, 0] - START) if errors.size else float("nan"),
        voice_error_last_minute_max_ms=float(last_minute.max()) * 1000 if last_minute.size else float("nan"),
        video_delay_spread_ms=float(np.ptp(delays)) * 1000 if delays.size else float("nan"),
        video_delay_samples=int(delays.size),
        skipped_frames=int(status.skipped_frames),
        recorder_frames=int(recorder.frames),
        recorder_samples=int(recorder.samples),
        mp4_duration_s=duration,
        problems=problems,
        memory_trace_mib=trace,
    )


def summary(result: SoakResult) -> str:
    """One line for logs and the test's output."""
    return (f"soak: {result.simulated_minutes:.1f} min of stream in {result.wall_seconds:.1f} s, memory "
            f"{result.memory_2min_mib} → {result.memory_end_mib} MiB, voice-picture error median "
            f"{result.voice_error_median_ms:.1f} ms, max {result.voice_error_max_ms:.1f} ms at "
            f"{result.voice_error_max_at_s:.1f} s, video delay spread {result.video_delay_spread_ms:.1f} ms")


def targets(result: SoakResult) -> list[tuple[str, object, str, bool | None]]:
    """(figure, value, target, met) rows; ``met`` is None for figures without a target."""
    growth = result.memory_growth_mib
    av_diff = result.recording_av_difference_ms
    duration = result.mp4_duration_s
    return [
        ("simulated minutes", result.simulated_minutes, f"{result.minutes_requested:g}",
         result.complete and result.simulated_minutes > result.minutes_requested * 0.999),
        ("wall seconds", result.wall_seconds, "—", None),
        ("voice–picture error max (ms)", result.voice_error_max_ms, f"< {DRIFT_MAX_MS:g}",
         result.voice_error_count > 0 and result.voice_error_max_ms < DRIFT_MAX_MS),
        ("voice–picture error median (ms)", result.voice_error_median_ms, "—", None),
        ("… max at (simulated s)", result.voice_error_max_at_s, "—", None),
        ("voice–picture error max, last minute (ms)", result.voice_error_last_minute_max_ms, "—", None),
        ("video delay spread (ms)", result.video_delay_spread_ms, f"< {DELAY_SPREAD_MAX_MS:g}",
         result.video_delay_samples > 1 and result.video_delay_spread_ms < DELAY_SPREAD_MAX_MS),
        ("memory at 2 min (MiB)", result.memory_2min_mib if result.memory_2min_mib is not None else "—", "—", None),
        ("memory at the end (MiB)", result.memory_end_mib if result.memory_end_mib is not None else "—", "—", None),
        ("memory growth after minute 2 (MiB)", growth if growth is not None else "—",
         f"< {MEMORY_GROWTH_MAX_MIB:g}", None if growth is None else growth < MEMORY_GROWTH_MAX_MIB),
        ("skipped frames", result.skipped_frames, "0", result.skipped_frames == 0),
        ("recorder frames", result.recorder_frames, "—", None),
        ("recorder samples", result.recorder_samples, "—", None),
        ("recording audio − video length (ms)", av_diff, f"< {AV_DIFFERENCE_MAX_MS:g} either way",
         abs(av_diff) < AV_DIFFERENCE_MAX_MS),
        ("MP4 duration (s)", duration if duration is not None else "—", "—", None),
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="main.py bench soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="minutes of simulated stream (default 60)")
    parser.add_argument("--fps", type=float, default=5.0, help="frame rate (default 5, the lowest allowed)")
    parser.add_argument("--size", type=int, default=128, help="frame size in pixels (default 128)")
    parser.add_argument("--out", type=Path, help="keep the recording (soak.mp4) in this folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    from tqdm import tqdm

    bar = tqdm(total=round(args.minutes * 60), unit="s", desc="simulated stream", disable=args.no_progress,
               file=sys.stderr, dynamic_ncols=True)

    def progress(done: float, total: float) -> None:
        bar.update(int(done) - bar.n)

    try:
        if args.out is not None:
            result = run_soak(args.minutes, args.out, fps=args.fps, size=args.size, progress=progress)
        else:
            with tempfile.TemporaryDirectory(prefix="podium-soak-") as tmp:
                result = run_soak(args.minutes, Path(tmp), fps=args.fps, size=args.size, progress=progress)
    finally:
        bar.close()
    rows = targets(result)
    table = format_table(["figure", "value", "target", "met"],
                         [(name, f"{value:.1f}" if isinstance(value, float) else value, target,
                           "—" if met is None else ("yes" if met else "NO")) for name, value, target, met in rows])
    table += (f"\n\n{args.size} px at {args.fps:g} fps, pose-map renderer, microphone {result.skew * 1e6:g} ppm fast, "
              f"{result.simulated_minutes * 60 / result.wall_seconds:.0f}x real time.")
    step = max(1, len(result.memory_trace_mib) // 10)
    table += "\n\nResident memory (simulated minute: MiB): " + ", ".join(
        f"{m:.0f}: {mib:.1f}" for m, mib in result.memory_trace_mib[::step])
    if result.problems:
        table += "\n\nProblems:\n" + "\n".join(f"* {p}" for p in result.problems)
    print(table)
    path = write_results(f"soak-{args.minutes:g}min".replace(".", "p"), result.figures(), table)  # no dot: a suffix
    print(f"\nresults: {path}")
    return 1 if any(met is False for *_, met in rows) else 0
