"""The live recorder: starts and stops mid-stream in sync, survives a crash, keeps what it can on a full disk."""

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from inference.errors import SinkError, StopReason
from inference.sinks.mp4 import GENERATED_BY
from inference.sinks.recorder import Recorder
from inference.types import AudioBlock, VideoFrame
from tests.live.fakes import FullDisk

RATE, FPS, SPF = 48_000, 25.0, 1920
REPO = Path(__file__).resolve().parents[2]


def stream(recorder: Recorder, first_block: int, blocks: int, pending: list | None = None,
           video_lag_frames: int = 3) -> None:
    """Feed a live-like stream: 20 ms audio blocks, video frames arriving ``video_lag_frames`` behind the audio
    (``pending`` holds the frames still on their way, across calls)."""
    pending = [] if pending is None else pending
    for b in range(first_block, first_block + blocks):
        start = b * 960
        t = np.arange(start, start + 960) / RATE
        recorder.write_audio(AudioBlock((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), RATE, start, 0.0))
        if (start + 960) % SPF == 0:
            index = (start + 960) // SPF - 1
            shade = (index * 7) % 255
            pending.append(VideoFrame(np.full((64, 64, 3), shade, np.uint8), index, FPS))
        while len(pending) > video_lag_frames:
            recorder.write_video(pending.pop(0))


def probe(path: Path) -> tuple[float, float, dict]:
    with av.open(str(path)) as c:
        video = sum(1 for _ in c.decode(video=0)) / FPS
    with av.open(str(path)) as c:
        audio = sum(f.samples for f in c.decode(audio=0)) / RATE
        meta = dict(c.metadata)
    return video, audio, meta


def test_starts_and_stops_mid_stream_in_sync(tmp_path):
    out = tmp_path / "talk.mp4"
    recorder = Recorder(out)
    recorder.open((64, 64), FPS, RATE)
    pending = []
    stream(recorder, first_block=101, blocks=150, pending=pending)  # starts mid-frame, 2 s in
    recorder.request_stop()
    stream(recorder, first_block=251, blocks=20, pending=pending)  # the video catches up, then the file is done
    assert recorder.finished
    recorder.close()
    video, audio, meta = probe(out)
    assert recorder.frames == 75 and recorder.samples == 75 * SPF  # frames 51..125 and their audio exactly
    assert abs(video - audio) < 0.04 and 2.95 < audio < 3.05
    assert meta.get("comment") == GENERATED_BY
    with av.open(str(out)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert abs(int(first[32, 32, 0]) - (51 * 7) % 255) <= 3  # the first frame is frame 51, the first whole one


def test_a_crash_loses_at_most_the_last_second(tmp_path):
    """A child process records 4 s (3.88 s of it video: 3 frames were still on their way) and dies without
    closing: the partial file plays all but the last second."""
    out = tmp_path / "crash.mp4"
    code = f"""
import os, sys
sys.path.insert(0, {str(REPO)!r})
from tests.live.test_recorder import stream
from inference.sinks.recorder import Recorder
r = Recorder({str(out)!r}); r.open((64, 64), 25.0, 48000)
stream(r, 0, 200)
os._exit(1)
"""
    subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    partial = out.with_name("crash.partial.mp4")
    assert partial.exists() and not out.exists()
    video, audio, _ = probe(partial)
    assert video >= 3.88 - 1.0 and audio >= 3.88 - 1.0


def test_a_full_disk_stops_the_recording_and_keeps_what_was_written(tmp_path, monkeypatch):
    out = tmp_path / "full.mp4"
    recorder = Recorder(out)
    recorder.open((64, 64), FPS, RATE)
    stream(recorder, 0, 150)  # 3 s on disk

    monkeypatch.setattr(recorder._mp4, "_container", FullDisk(recorder._mp4._container))
    with pytest.raises(SinkError) as info:
        stream(recorder, 150, 100)
    assert info.value.reason is StopReason.NO_SPACE
    message = str(info.value)
    assert "The disk is full" in message and str(out) in message and "Free some space" in message
    assert recorder.finished
    recorder.abort()  # what the engine does next: must not delete the kept file
    video, audio, _ = probe(out)
    assert video >= 2.0 and audio >= 2.0
    assert not out.with_name("full.partial.mp4").exists()


def test_refuses_to_start_on_an_almost_full_disk(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda _p: shutil._ntuple_diskusage(10**9, 10**9 - 5 * 2**20, 5 * 2**20))
    recorder = Recorder(tmp_path / "x.mp4")
    with pytest.raises(SinkError, match="Only 5 MB are free") as info:
        recorder.open((64, 64), FPS, RATE)
    assert info.value.reason is StopReason.NO_SPACE
    assert list(tmp_path.iterdir()) == []
