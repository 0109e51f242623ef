"""Delayed audio out: the voice plays as late as the video, following the measured latency; no device → message."""

import numpy as np
import pytest

from inference.clock import SimulatedTime
from inference.errors import DeviceError
from inference.sinks.audio_out import DelayedAudioOut
from inference.types import AudioBlock


class FakeOutput:
    """A sounddevice module whose output stream is pulled by the test."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.stream = None

    def OutputStream(self, **kwargs):  # noqa: N802 - mirrors sounddevice
        if self.fail:
            raise ValueError("No output device matching 'Virtual mic'")
        outer = self

        class Stream:
            latency = 0.01

            def start(self):
                outer.stream = self

            def stop(self):
                pass

            def close(self):
                pass

        return Stream()


def longest_gap(x: np.ndarray) -> int:
    """Longest run of silent samples in ``x``."""
    silent = np.abs(x) < 1e-6
    longest = run = 0
    for value in silent:
        run = run + 1 if value else 0
        longest = max(longest, run)
    return longest


def run(sink: DelayedAudioOut, sim: SimulatedTime, seconds: float, signal_start: int) -> tuple[np.ndarray, int]:
    """Capture 20 ms blocks and let the device pull 10 ms at a time, in simulated time."""
    out = []
    position = signal_start
    for step in range(int(seconds * 100)):
        sim.advance(0.01)
        if step % 2 == 1:
            t = np.arange(position, position + 960) / 48_000
            sink.write_audio(AudioBlock((0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 48_000, position,
                                        sim.monotonic()))
            position += 960
        out.append(sink.pull(480))
    return np.concatenate(out), position


def test_the_delay_follows_the_video_latency():
    sim = SimulatedTime(100.0)
    target = {"value": 0.10}
    sink = DelayedAudioOut("Virtual mic", target_delay=lambda: target["value"], backend=FakeOutput(),
                           now=sim.monotonic)
    sink.open((512, 512), 25.0, 48_000)
    played, position = run(sink, sim, 2.0, 0)
    assert abs(sink.last_delay - 0.10) < 0.006
    first_sound = np.flatnonzero(played)[0] / 48_000
    assert 0.08 < first_sound < 0.13  # silence until the voice is old enough, then it plays
    assert longest_gap(played[int(0.15 * 48_000):]) < 3  # once playing, no gaps
    target["value"] = 0.16  # the video got slower: the voice follows within a few seconds, without a gap
    played, position = run(sink, sim, 4.0, position)
    assert abs(sink.last_delay - 0.16) < 0.006
    assert longest_gap(played) < 3 and sink.underruns == 0
    target["value"] = 0.5  # a big jump is taken at once
    run(sink, sim, 0.5, position)
    assert abs(sink.last_delay - 0.5) < 0.01
    sink.close()


def test_no_output_device_says_what_to_do():
    sink = DelayedAudioOut("Virtual mic", backend=FakeOutput(fail=True))
    with pytest.raises(DeviceError) as info:
        sink.open((512, 512), 25.0, 48_000)
    message = str(info.value)
    assert "Virtual mic" in message and "module-null-sink" in message and "VB-Cable" in message
