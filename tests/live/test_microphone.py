"""The microphone source: real-time blocks with capture times; no microphone; unplugged and back."""

import threading
import time

import numpy as np
import pytest

from inference.errors import DeviceError
from inference.sources.microphone import MicrophoneSource
from tests.live.fakes import FakeSoundDevice


def read_for(source: MicrophoneSource, seconds: float) -> list:
    blocks, t0 = [], time.monotonic()
    while time.monotonic() - t0 < seconds:
        blocks.append(source.read())
    return blocks


def test_blocks_are_numbered_timestamped_and_carry_the_signal(fake_microphone, speech):
    source = MicrophoneSource(backend=fake_microphone)
    blocks = read_for(source, 0.5)
    source.close()
    assert source.read() is None
    assert all(b.sample_rate == 48_000 and b.samples.dtype == np.float32 and len(b.samples) == 960 for b in blocks)
    assert [b.start for b in blocks] == [i * 960 for i in range(len(blocks))]  # no gap, no overlap
    times = np.array([b.captured_at for b in blocks])
    assert np.all(np.diff(times) >= 0) and 18 <= len(blocks) <= 30  # paced in real time
    heard = np.concatenate([b.samples for b in blocks])
    assert np.array_equal(heard, speech[: heard.size])  # exactly what the microphone played
    assert source.level_db > -60


def test_no_microphone_raises_a_device_error_that_says_what_to_do():
    with pytest.raises(DeviceError) as info:
        MicrophoneSource(backend=FakeSoundDevice(present=False))
    assert "No microphone was found" in str(info.value) and "Plug one in" in str(info.value)


def test_a_missing_named_microphone_is_named():
    class NoSuchDevice(FakeSoundDevice):
        def InputStream(self, **kwargs):  # noqa: N802
            raise ValueError(f"No input device matching {kwargs['device']!r}")

    with pytest.raises(DeviceError, match="'USB mic' is not connected. Plug it in or pick another"):
        MicrophoneSource("USB mic", backend=NoSuchDevice())


@pytest.mark.parametrize("ends_with_finished_callback", [False, True])
def test_unplugged_mid_stream_goes_on_with_silence_and_recovers(speech, ends_with_finished_callback):
    device = FakeSoundDevice(speech + 0.01, fail_with_finished=ends_with_finished_callback)
    events = []
    source = MicrophoneSource(backend=device, wait_for_device=True, on_event=events.append, retry_seconds=0.2,
                              stall_seconds=0.2)
    before = read_for(source, 0.3)
    device.present = False  # unplugged: callbacks stop, reopening fails
    during = read_for(source, 0.8)
    assert [e.kind for e in events] == ["opened", "lost"]
    assert "stopped sending sound" in events[1].message and not source.connected
    device.present = True  # plugged back in
    after = read_for(source, 0.8)
    source.close()
    assert [e.kind for e in events] == ["opened", "lost", "restored"] and "is back" in events[2].message
    blocks = before + during + after
    starts = [b.start for b in blocks]
    assert starts == sorted(starts) and all(b.start == a.end for a, b in zip(blocks, blocks[1:], strict=False))
    silent = [b for b in during if not b.samples.any()]
    assert len(silent) >= 10  # silence carried the stream while the device was gone
    assert any(b.samples.any() for b in after[-10:])  # and the voice is back
    # sample numbers keep following the wall clock through the outage (within a few blocks)
    span = blocks[-1].captured_at - blocks[0].captured_at
    assert abs((blocks[-1].end - blocks[0].start) / 48_000 - span) < 0.25


def test_waits_for_a_microphone_that_is_not_there_yet():
    device = FakeSoundDevice(np.full(960, 0.2, np.float32), present=False)
    events = []
    source = MicrophoneSource(backend=device, wait_for_device=True, on_event=events.append, retry_seconds=0.1)
    assert events[0].kind == "unavailable" and "No microphone was found" in events[0].message
    silence = read_for(source, 0.3)
    assert all(not b.samples.any() for b in silence)
    device.present = True
    voice = read_for(source, 0.4)
    source.close()
    assert events[-1].kind == "restored" and any(b.samples.any() for b in voice)


def test_switching_device_keeps_the_numbering(fake_microphone):
    source = MicrophoneSource(backend=fake_microphone)
    first = read_for(source, 0.2)
    threading.Thread(target=source.set_device, args=("other",)).start()
    second = read_for(source, 0.3)
    source.close()
    blocks = first + second
    assert all(b.start == a.end for a, b in zip(blocks, blocks[1:], strict=False))
    assert fake_microphone.opened == 2
