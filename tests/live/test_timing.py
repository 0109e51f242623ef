"""Capture timeline and the capture-locked frame clock, deterministic in simulated time."""

import numpy as np
import pytest

from inference.clock import SimulatedTime
from inference.live import CaptureLockedClock, CaptureTimeline
from inference.types import AudioBlock


def timeline_with_blocks(sim: SimulatedTime, blocks: int, block: int = 960) -> CaptureTimeline:
    timeline = CaptureTimeline(48_000, keep=50)
    for b in range(blocks):
        sim.advance(block / 48_000)
        timeline.add(AudioBlock(np.zeros(block, np.float32), 48_000, b * block, sim.monotonic()))
    return timeline


def test_timeline_answers_for_every_kept_sample():
    sim = SimulatedTime(10.0)
    timeline = timeline_with_blocks(sim, 100)  # 2 s; the last 50 blocks (1 s) are kept
    assert timeline.time_of(100 * 960 - 1) == pytest.approx(12.0 - 1 / 48_000)
    assert timeline.time_of(96_000 - 960 * 10) == pytest.approx(12.0 - 0.2)
    assert timeline.time_of(100 * 960 + 5) is None  # not captured yet
    assert timeline.time_of(0) is None  # forgotten long ago
    assert CaptureTimeline(48_000).time_of(0) is None


def test_a_frame_is_due_when_the_audio_it_shows_was_captured():
    sim = SimulatedTime(0.0)
    timeline = timeline_with_blocks(sim, 20)  # 0.4 s of audio, captured in real time
    clock = CaptureLockedClock(25.0, timeline, lookahead=lambda: 0.1, now=sim.monotonic, sleep=sim.sleep)
    clock.start()
    # frame 2 shows 0.1 s (its middle); with 0.1 s of look-ahead it needs audio up to 0.2 s
    assert clock.due(2) == pytest.approx(0.2, abs=1e-6)
    assert clock.lateness(2) == pytest.approx(0.2, abs=1e-6)  # now is 0.4 s: processing is 0.2 s behind
    assert clock.due(50) == pytest.approx(sim.monotonic())  # audio not captured yet: due now, never waits


def test_a_microphone_that_runs_fast_does_not_make_the_latency_creep():
    sim = SimulatedTime(0.0)
    timeline = CaptureTimeline(48_000, keep=50)
    clock = CaptureLockedClock(25.0, timeline, lookahead=lambda: 0.0, now=sim.monotonic, sleep=sim.sleep)
    clock.start()
    lateness = []
    for b in range(90_000):  # half an hour of 20 ms blocks from a crystal 200 ppm fast
        sim.advance(0.02 / 1.0002)
        timeline.add(AudioBlock(np.zeros(960, np.float32), 48_000, b * 960, sim.monotonic()))
        if b % 2 == 1:
            frame = b // 2
            lateness.append(clock.lateness(frame))
            assert clock.wait_for(frame) >= 0
    assert max(lateness) - min(lateness) < 0.001
