"""Ten minutes of live stream in simulated time: memory stays flat, audio and video stay within 40 ms.

The microphone is simulated: each 80 ms block advances a :class:`SimulatedTime`
(the microphone's crystal runs 100 ppm fast, as cheap ones do), and before each
block it waits (in real time) until the engine has turned everything before it
into frames on the virtual camera and handed the voice to the delayed audio out,
so the run is paced like real time but takes seconds. The delayed voice is pulled by a simulated output
device at the nominal rate, as a sound card would.
"""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest

from inference.clock import SimulatedTime
from inference.live import CaptureLockedClock, LiveEngine
from inference.motion.factory import create_motion
from inference.settings import CameraSettings, RenderSettings, Settings
from inference.types import AudioBlock
from tests.live.fakes import RecordingCamera
from tests.live.test_audio_out import FakeOutput

MINUTES = 10
FPS = 5.0  # the lowest rate the settings allow: ten minutes of stream in the fewest frames
BLOCK = 3840  # 80 ms blocks: fewer hand-overs than 20 ms ones, the same stream
SKEW = 1e-4  # the microphone runs this much fast


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


class SimulatedMicrophone:
    """An audio source in simulated time, in lockstep with the engine (see the module docstring)."""

    sample_rate = 48_000
    total_samples = None

    def __init__(self, sim: SimulatedTime, signal: np.ndarray, blocks: int) -> None:
        self.sim = sim
        self.signal = signal
        self.blocks = blocks
        self.position = 0
        self.start_time = sim.monotonic()
        self.settled = lambda delivered: True
        self.each_block = lambda: None
        self.closed = False

    def read(self) -> AudioBlock | None:
        if self.closed or self.position >= self.blocks * BLOCK:
            return None
        deadline = time.monotonic() + 10
        while not self.settled(self.position):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the engine did not settle at sample {self.position}")
            time.sleep(0.0002)
        self.each_block()
        due = self.start_time + (self.position + BLOCK) / self.sample_rate / (1 + SKEW)
        self.sim.advance(max(0.0, due - self.sim.monotonic()))
        idx = (self.position + np.arange(BLOCK)) % self.signal.size
        block = AudioBlock(self.signal[idx], self.sample_rate, self.position, self.sim.monotonic())
        self.position += BLOCK
        return block

    def close(self) -> None:
        self.closed = True


@pytest.mark.slow
def test_ten_minutes_of_stream(speech, fake_camera, tmp_path, monkeypatch):
    monkeypatch.setattr(RecordingCamera, "keep_last", False)
    sim = SimulatedTime(1000.0)
    blocks = int(MINUTES * 60 * 48_000 / BLOCK)
    mic = SimulatedMicrophone(sim, speech, blocks)
    output = FakeOutput()
    settings = Settings(render=RenderSettings(size=128, fps=FPS, renderer="pose-map"))
    engine = LiveEngine(
        settings, source_factory=lambda on_event: mic, camera_backend=fake_camera, audio_backend=output,
        now=sim.monotonic,
        motion_factory=lambda style, rate, fps: create_motion(style, rate, fps, speech=False),
        clock_factory=lambda timeline, lookahead: CaptureLockedClock(FPS, timeline, lookahead, now=sim.monotonic,
                                                                     sleep=sim.sleep),
    )
    video_delays: list[float] = []

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
            due = int((sim.monotonic() - 1000.0) * 48_000)
            voice.pull(due - played[0])
            played[0] = due
            if voice.errors:
                voice_errors.append(voice.errors[-1])
        camera = engine.camera_slot.sink
        if camera is not None and camera.last_sent is not None and mic.position % (48_000 * 5) == 0:
            index, sent_at = camera.last_sent
            video_delays.append(sent_at - engine.timeline.time_of((index + 0.5) * 48_000 / FPS))
        checkpoints = (2 * 60 * 48_000, blocks * BLOCK - 48_000)  # after two minutes, and at the end
        if len(memory) < 2 and mic.position >= checkpoints[len(memory)]:
            memory.append(rss_mb())

    memory: list[float] = []
    voice_errors: list[tuple[float, float]] = []
    played = [0]
    mic.settled, mic.each_block = settled, each_block
    engine.set_live(True)
    engine.set_camera(CameraSettings(enabled=True))
    engine.set_audio_out(True, "virtual mic")
    recorder = engine.start_recording(tmp_path / "soak.mp4")  # from sample 0: its counts match the camera's
    t0 = time.monotonic()
    engine.start()
    while mic.position < blocks * BLOCK and time.monotonic() - t0 < 300:
        time.sleep(0.1)  # the simulated microphone ends after ten minutes
    time.sleep(0.2)
    wall = time.monotonic() - t0
    status = engine.status()
    engine.stop()

    assert mic.position == blocks * BLOCK and sim.monotonic() - 1000.0 > MINUTES * 60 * 0.999
    assert status.skipped_frames == 0
    # memory: what the engine holds after two minutes is what it holds at the end
    assert len(memory) == 2 and memory[1] - memory[0] < 15, memory
    # the delayed voice plays within 40 ms of the picture, all along (after its first second)
    late = [(t, e) for t, e in voice_errors if t > 1001.0]
    errors = np.array([e for _, e in late])
    assert voice_errors[-1][0] > 1000.0 + MINUTES * 60 - 1
    assert len(errors) > 0 and np.abs(errors).max() < 0.040, np.abs(errors).max()
    assert np.ptp(video_delays) < 0.040  # the picture's own delay does not creep
    # the recording: ten minutes, audio and video the same length within 40 ms
    assert recorder.frames / FPS > MINUTES * 60 - 2
    assert abs(recorder.samples / 48_000 - recorder.frames / FPS) < 0.040
    with av.open(str(tmp_path / "soak.mp4")) as c:
        duration = float(c.duration) / 1e6
    assert abs(duration - recorder.frames / FPS) < 0.2
    print(f"soak: {MINUTES} min of stream in {wall:.1f} s, memory {memory}, "
          f"voice-picture error median {np.median(np.abs(errors)) * 1000:.1f} ms, max {np.abs(errors).max() * 1000:.1f} ms "
          f"at {late[int(np.argmax(np.abs(errors)))][0] - 1000:.1f} s, video delay spread "
          f"{np.ptp(video_delays) * 1000:.1f} ms")
