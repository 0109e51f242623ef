"""The MP4 recorder: playable H.264 + AAC, audio and video in sync, nothing left on failure."""

import av
import numpy as np
import pytest

from inference.errors import OutputFileError, SinkError
from inference.motion.factory import create_motion
from inference.motion.readout import mouth_opening
from inference.motion.style import MotionStyle
from inference.offline import OfflineRender, RenderJob
from inference.paths import default_portrait
from inference.render.pose_map import draw_pose_map
from inference.sinks.mp4 import GENERATED_BY, Mp4Sink, check_output_path
from inference.sources.audio_file import ENGINE_SAMPLE_RATE, AudioFileSource
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
    """Render 1 s silence + 1 s voice + 1 s silence: the mouth opens on the frame where the sound starts.

    Three links are checked: the decoded video keeps the frame numbering and timing of the keypoints; the
    decoded audio starts on the same clock; and the keypoints open the mouth when the sound starts.
    """
    out = tmp_path / "sync.mp4"
    style = MotionStyle(framing="head-and-shoulders")
    job = RenderJob(audio=onset_wav, portrait=default_portrait(), output=out, renderer="pose-map", size=256,
                    style=style)
    OfflineRender(job).run()
    frames, audio, rate, _ = decode(out)

    # The keypoints the render drew (the motion stage is deterministic for a file).
    motion = create_motion(style, ENGINE_SAMPLE_RATE, 25.0, mode="offline")
    source = AudioFileSource(onset_wav)
    keypoints = []
    while (block := source.read()) is not None:
        motion.accept_audio(block)
        keypoints += motion.pop_frames()
    keypoints += motion.finish()
    assert len(frames) == len(keypoints) == 75

    # 1. Decoded frame i is the drawing of keypoint frame i (not a neighbour), stamped i/25 from the origin.
    origin = frames[1][1] - 1 / 25  # frame 0 may be stretched to cover the AAC priming shift; frame 1 is exact
    for i in (10, 24, 25, 26, 40, 60):
        drawn = [draw_pose_map(keypoints[k].keypoints, (256, 256)).astype(np.float32) for k in range(i - 2, i + 3)]
        errors = [np.abs(frames[i][0].astype(np.float32) - d).mean() for d in drawn]
        assert int(np.argmin(errors)) == 2, (i, errors)
        assert frames[i][1] - origin == pytest.approx(i / 25, abs=1e-3)

    # 2. The decoded audio is on the same clock: its onset is 1.0 s after the origin.
    hop = rate // 100
    rms = np.sqrt(np.convolve(audio**2, np.ones(hop) / hop, mode="valid")[::hop])
    audio_onset = _onset(rms, 0.05) / 100 - origin
    assert audio_onset == pytest.approx(1.0, abs=0.02)

    # 3. The mouth opens within one frame of the sound and is closed before it and after it.
    opening = mouth_opening(np.stack([k.keypoints for k in keypoints]))
    mouth_onset = _onset(opening, 0.5 * opening.max()) / 25
    assert abs(mouth_onset - audio_onset) <= 0.041, (mouth_onset, audio_onset)
    assert opening[:20].max() < 0.2 * opening.max() and opening[-10:].max() < 0.2 * opening.max()
