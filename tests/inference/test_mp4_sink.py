"""The MP4 recorder: playable H.264 + AAC, audio and video in sync, nothing left on failure."""

import av
import numpy as np
import pytest

from inference import keypoints as kp
from inference.errors import OutputFileError, SinkError
from inference.motion.rig import Framing, RigControls, pose_keypoints
from inference.motion.style import MotionStyle
from inference.offline import OfflineRender, RenderJob
from inference.paths import default_portrait
from inference.sinks.mp4 import GENERATED_BY, Mp4Sink, check_output_path
from inference.types import AudioBlock, VideoFrame


def decode(path):
    """Video frames (RGB, presentation time in s) and the audio laid out on the same clock, as a player would.

    Audio samples are placed at their packets' timestamps, so the encoder's priming delay is accounted
    for exactly as a player accounts for it.
    """
    with av.open(str(path)) as c:
        meta = dict(c.metadata)
        frames = [(f.to_ndarray(format="rgb24"), float(f.pts * f.time_base)) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        placed, rate = [], None
        for f in c.decode(audio=0):
            rate = f.sample_rate
            placed.append((int(round(float(f.pts * f.time_base) * rate)), f.to_ndarray().mean(axis=0)))
    end = max(start + len(x) for start, x in placed)
    audio = np.zeros(end, dtype=np.float32)
    for start, x in placed:
        audio[start : start + len(x)] = x
    return frames, audio, rate, meta


def test_writes_playable_h264_aac(tmp_path):
    sink = Mp4Sink(tmp_path / "out.mp4")
    sink.open((64, 48), 25.0, 48_000)
    for i in range(50):
        sink.write_audio(AudioBlock(np.zeros(1920, np.float32), 48_000, i * 1920))
        sink.write_video(VideoFrame(np.full((48, 64, 3), i * 5, np.uint8), i, 25.0))
    sink.close()
    with av.open(str(tmp_path / "out.mp4")) as c:
        kinds = {s.type: s.codec_context.name for s in c.streams}
        assert kinds == {"video": "h264", "audio": "aac"}
        assert c.metadata.get("comment") == GENERATED_BY
    frames, _, rate, _ = decode(tmp_path / "out.mp4")
    assert len(frames) == 50 and rate == 48_000
    assert abs(frames[30][0].mean() - 150) < 3
    assert not (tmp_path / "out.partial.mp4").exists()


def test_abort_leaves_nothing(tmp_path):
    sink = Mp4Sink(tmp_path / "out.mp4")
    sink.open((64, 48), 25.0, 48_000)
    sink.write_video(VideoFrame(np.zeros((48, 64, 3), np.uint8), 0, 25.0))
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_odd_frame_size_is_refused(tmp_path):
    with pytest.raises(SinkError, match="even"):
        Mp4Sink(tmp_path / "o.mp4").open((63, 48), 25.0, 48_000)


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing/out.mp4", "does not exist"), ("out.avi", "unsupported file type"), ("folder.mp4", "is a folder")],
)
def test_bad_output_paths(tmp_path, name, message):
    (tmp_path / "folder.mp4").mkdir()
    with pytest.raises(OutputFileError, match=message):
        check_output_path(tmp_path / name)


def test_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        import os

        if os.access(ro, os.W_OK):
            pytest.skip("running as a user that can write anywhere (root)")
        with pytest.raises(OutputFileError, match="not writable"):
            check_output_path(ro / "out.mp4")
    finally:
        ro.chmod(0o700)


def _onset(values: np.ndarray, threshold: float) -> int:
    return int(np.argmax(values > threshold))


def test_audio_and_video_line_up_at_a_loud_onset(tmp_path, onset_wav):
    """Render 1 s silence + 1 s buzz; the mouth must open on the frame where the sound starts."""
    out = tmp_path / "sync.mp4"
    style = MotionStyle(framing="head-and-shoulders")
    job = RenderJob(audio=onset_wav, portrait=default_portrait(), output=out, renderer="pose-map", size=512,
                    style=style)
    OfflineRender(job).run()
    frames, audio, rate, _ = decode(out)
    assert len(frames) == 75
    # audio onset, 10 ms resolution
    hop = rate // 100
    rms = np.sqrt(np.convolve(audio**2, np.ones(hop) / hop, mode="valid")[::hop])
    audio_onset = _onset(rms, 0.05) / 100
    start = frames[0][1]  # the container may start both streams a little after 0 (B-frame and AAC delays)
    assert audio_onset - start == pytest.approx(1.0, abs=0.02)
    # video onset: the lips part. Change of the mouth region against the first (silent) frame; idle sway moves
    # it by a pixel or two, an open jaw by tens, so half the largest change marks the opening.
    rest = pose_keypoints(RigControls(), Framing.named("head-and-shoulders"))
    lips = rest[kp.FACE][48:68, :2] * 512
    x0, x1 = int(lips[:, 0].min()) - 4, int(lips[:, 0].max()) + 4
    y0, y1 = int(lips[:, 1].min()) - 6, int(lips[:, 1].max()) + 30
    base = frames[0][0][y0:y1, x0:x1].astype(np.float32)
    change = np.array([np.abs(rgb[y0:y1, x0:x1].astype(np.float32) - base).mean() for rgb, _ in frames])
    video_onset = frames[_onset(change, 0.5 * change.max())][1]
    assert abs(video_onset - audio_onset) <= 0.041, (video_onset, audio_onset)
    # the mouth closes again in the silence after the sound
    assert change[:20].max() < 0.25 * change.max() and change[-1] < 0.25 * change.max()
