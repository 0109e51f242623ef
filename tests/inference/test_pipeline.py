"""The runner: ordering, back-pressure, dropping in live mode, errors and cancellation."""

import threading
import time

import numpy as np
import pytest

from inference.clock import FrameClock, SimulatedTime
from inference.errors import PipelineCancelled
from inference.pipeline import BoundedQueue, Pipeline
from inference.types import AudioBlock, KeypointFrame, VideoFrame

RATE, FPS, BLOCK = 48_000, 25.0, 960


class ListSource:
    def __init__(self, n_blocks: int, delay: float = 0.0) -> None:
        self.sample_rate = RATE
        self.n_blocks, self.delay, self.i, self.closed = n_blocks, delay, 0, False

    @property
    def total_samples(self):
        return self.n_blocks * BLOCK

    def read(self):
        if self.closed or self.i >= self.n_blocks:
            return None
        if self.delay:
            time.sleep(self.delay)
        block = AudioBlock(np.full(BLOCK, self.i, np.float32), RATE, self.i * BLOCK)
        self.i += 1
        return block

    def close(self):
        self.closed = True


class CountingMotion:
    fps, lookahead_seconds = FPS, 0.0

    def __init__(self, fail_at: int | None = None) -> None:
        self.samples, self.next, self.fail_at = 0, 0, fail_at

    def accept_audio(self, block):
        self.samples = block.end

    def _frame(self):
        if self.fail_at is not None and self.next == self.fail_at:
            raise RuntimeError("motion broke")
        f = KeypointFrame(np.zeros((134, 3), np.float32), self.next, FPS)
        self.next += 1
        return f

    def pop_frames(self):
        out = []
        while (self.next + 1) * RATE / FPS <= self.samples:
            out.append(self._frame())
        return out

    def finish(self):
        out = self.pop_frames()
        if self.next * RATE / FPS < self.samples:
            out.append(self._frame())
        return out

    def reset(self):
        self.next = 0


class ChunkRenderer:
    name, device, size = "fake", "CPU", (16, 16)

    def __init__(self, chunk: int = 2, delay: float = 0.0) -> None:
        self.chunk_size, self.delay, self.calls = chunk, delay, []

    def set_reference(self, portrait):
        pass

    def default_portrait(self):
        return None

    def render(self, frames):
        self.calls.append(len(frames))
        if self.delay:
            time.sleep(self.delay)
        return [VideoFrame(np.full((16, 16, 3), f.index % 256, np.uint8), f.index, FPS) for f in frames]

    def reset(self):
        pass

    def close(self):
        pass


class RecordingSink:
    wants_audio = True

    def __init__(self, name="rec", delay=0.0, fail_on_frame=None) -> None:
        self.name, self.delay, self.fail_on_frame = name, delay, fail_on_frame
        self.video, self.audio, self.state = [], [], "new"

    def open(self, size, fps, sample_rate):
        self.state = "open"

    def write_video(self, frame):
        if frame.index == self.fail_on_frame:
            raise OSError("disk gone")
        if self.delay:
            time.sleep(self.delay)
        self.video.append(frame.index)

    def write_audio(self, block):
        self.audio.append(block.start)

    def close(self):
        self.state = "closed"

    def abort(self):
        self.state = "aborted"


def test_offline_run_delivers_every_frame_and_all_audio_in_order():
    sinks = [RecordingSink("a"), RecordingSink("b", delay=0.001)]
    renderer = ChunkRenderer(chunk=3)
    result = Pipeline(ListSource(100), CountingMotion(), renderer, sinks).run()
    assert result.frames == 50  # 100 blocks of 20 ms = 2 s at 25 fps
    for sink in sinks:
        assert sink.video == list(range(50)) and sink.state == "closed"
        assert sink.audio == [i * BLOCK for i in range(100)]
    assert set(renderer.calls[:-1]) == {3} and sum(renderer.calls) == 50
    assert result.dropped_frames == {"a": 0, "b": 0}


def test_no_threads_are_left_behind():
    before = {t.name for t in threading.enumerate()}
    Pipeline(ListSource(10), CountingMotion(), ChunkRenderer(), [RecordingSink()]).run()
    leftover = {t.name for t in threading.enumerate()} - before
    assert not {n for n in leftover if n.startswith("podium-")}


def test_stage_error_stops_everything_and_aborts_sinks():
    sink = RecordingSink()
    pipe = Pipeline(ListSource(200), CountingMotion(fail_at=30), ChunkRenderer(), [sink])
    with pytest.raises(RuntimeError, match="motion broke"):
        pipe.run()
    assert sink.state == "aborted" and not pipe.running


def test_sink_error_is_reported():
    sink, other = RecordingSink(fail_on_frame=5), RecordingSink("other")
    with pytest.raises(OSError, match="disk gone"):
        Pipeline(ListSource(100), CountingMotion(), ChunkRenderer(), [sink, other]).run()
    assert sink.state == "aborted" and other.state == "aborted"


def test_cancel_offline_aborts_and_raises():
    sink = RecordingSink(delay=0.01)
    pipe = Pipeline(ListSource(10_000), CountingMotion(), ChunkRenderer(), [sink])
    pipe.start()
    time.sleep(0.2)
    pipe.stop()
    with pytest.raises(PipelineCancelled):
        pipe.wait(timeout=10)
    assert sink.state == "aborted"


def test_live_mode_drops_video_for_a_slow_sink_but_never_audio():
    clock_time = SimulatedTime()
    clock = FrameClock(FPS, now=clock_time.monotonic, sleep=clock_time.sleep)
    slow, fast = RecordingSink("slow", delay=0.02), RecordingSink("fast")
    pipe = Pipeline(ListSource(300), CountingMotion(), ChunkRenderer(delay=0.004), [slow, fast], mode="live", clock=clock,
                    queue_frames=4)
    result = pipe.run()
    assert result.frames == 150
    assert fast.video == list(range(150))
    assert result.dropped_frames["slow"] > 0
    assert len(slow.video) + result.dropped_frames["slow"] == 150
    assert slow.video == sorted(slow.video)
    assert slow.audio == fast.audio == [i * BLOCK for i in range(300)]
    assert slow.state == fast.state == "closed"


def test_live_mode_paces_frames_on_the_clock():
    clock_time = SimulatedTime(100.0)
    clock = FrameClock(FPS, now=clock_time.monotonic, sleep=clock_time.sleep)
    Pipeline(ListSource(50), CountingMotion(), ChunkRenderer(chunk=1), [RecordingSink()], mode="live",
             clock=clock).run()
    assert clock_time.monotonic() == pytest.approx(100.0 + 24 / FPS, abs=1e-6)


def test_bounded_queue_blocks_or_drops():
    q = BoundedQueue(2, drop_when_full=True)
    for i in range(5):
        q.put(i)
    q.put_unbounded("audio")
    assert [q.get(), q.get(), q.get()] == [3, 4, "audio"] and q.dropped == 3
    blocking = BoundedQueue(1, drop_when_full=False)
    blocking.put("a")
    stop = threading.Event()
    stop.set()
    assert blocking.put("b", stop=stop) is False


def test_frame_clock_with_simulated_time():
    t = SimulatedTime(5.0)
    clock = FrameClock(25, now=t.monotonic, sleep=t.sleep)
    clock.start()
    assert clock.due(25) == pytest.approx(6.0)
    assert clock.wait_for(10) == 0.0 and t.monotonic() == pytest.approx(5.4)
    t.advance(1.0)
    assert clock.lateness(10) == pytest.approx(1.0)
