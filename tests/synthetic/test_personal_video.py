"""The personal-video path: mediapipe → DWPose mapping, region masks, filtering, and broken videos."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from inference import keypoints as kp
from inference.errors import InputFileError
from inference.motion.landmark_mapping import dwpose_from_mediapipe
from inference.paths import default_portrait
from inference.sources.portrait import load_portrait
from training.data.keypoint_regions import region_masks_from_keypoints
from training.data.landmark_confidence import face_confidence, hand_scores, occlude_face_by_hands, refine_confidences
from training.data.personal_video import FilterRules, build_personal_dataset, check_frame, main, open_video
from training.data.shards import list_shards, read_shard
from training.synthetic.regions import region_mask


def _write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _pose(visibility: float = 0.99) -> np.ndarray:
    pose = np.zeros((33, 4))
    pose[:, 0] = np.linspace(0.2, 0.8, 33)
    pose[:, 1] = 0.5
    pose[:, 3] = visibility
    return pose


def test_dataset_confidences_refine_the_shared_mapping() -> None:
    pose = _pose()
    pose[[11, 12], :2] = [(0.7, 0.6), (0.3, 0.62)]
    pose[[2, 7], 3] = 0.5  # the subject's left eye and ear are hard to see
    face = np.random.default_rng(0).uniform(0.3, 0.7, (478, 3))
    hand = np.random.default_rng(1).uniform(0.1, 0.2, (21, 3))
    mapped = dwpose_from_mediapipe(400, 400, face=face, pose=pose, hands=[hand])
    scores = hand_scores(mapped, [hand], [0.8], 400, 400)
    assert list(scores.values()) == [0.8]
    out = refine_confidences(mapped, pose, scores)
    conf = out[kp.FACE, 2]
    assert np.allclose(conf[[0, 17, 36]], 0.99) and np.allclose(conf[[16, 26, 45]], 0.5) and conf[30] > 0.9
    side = kp.LEFT_HAND if mapped[kp.LEFT_HAND.start, 2] > 0 else kp.RIGHT_HAND
    assert np.allclose(out[side, 2], 0.8)
    assert np.array_equal(out[:, :2], mapped[:, :2]), "only confidences change"
    assert (refine_confidences(mapped, None, {})[:, 2] == 0).all(), "no person, no confidence"
    assert face_confidence(pose).shape == (68,)


def test_a_hand_over_the_face_lowers_those_face_points() -> None:
    frame = np.zeros((134, 3), np.float32)
    frame[kp.FACE, :2] = np.stack([np.linspace(0.3, 0.7, 68), np.full(68, 0.5)], axis=1)
    frame[kp.FACE, 2] = 0.99
    frame[kp.RIGHT_HAND, :2] = np.random.default_rng(2).uniform((0.25, 0.45), (0.45, 0.55), (21, 2))
    frame[kp.RIGHT_HAND, 2] = 0.9
    out = occlude_face_by_hands(frame)
    covered = out[kp.FACE, 2] <= 0.2
    assert covered.any() and not covered.all()
    assert (out[kp.FACE, 0][covered] < 0.5).all()


def test_region_masks_from_keypoints(neutral: np.ndarray) -> None:
    masks = region_masks_from_keypoints(neutral, 128)
    for region in ("face", "mouth", "torso", "background", "left_hand", "right_hand"):
        assert region_mask(masks, region).any(), region
    nose = (neutral[kp.NOSE, :2] * 128).astype(int)
    assert region_mask(masks, "face")[nose[1], nose[0]]
    assert region_mask(masks, "background")[0, 0]


def test_filter_rules_name_the_failing_rule(neutral: np.ndarray) -> None:
    from training.data.personal_video import UPPER_BODY_POINTS

    rules, points = FilterRules(), UPPER_BODY_POINTS["half-body"]
    assert check_frame(neutral, rules, points)[:2] == (True, "kept")
    low_face = neutral.copy()
    low_face[kp.FACE, 2] = 0.85
    assert check_frame(low_face, rules, points)[1] == "face confidence <= 0.9"
    hidden = neutral.copy()
    hidden[[kp.R_WRIST, kp.L_WRIST], 2] = 0.0
    assert check_frame(hidden, rules, points)[1] == "upper body < 90% visible"
    assert check_frame(np.zeros((134, 3)), rules, points)[1] == "no person found"


def test_missing_empty_and_corrupt_videos(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        open_video(tmp_path / "missing.mp4")
    with pytest.raises(InputFileError, match="is a folder"):
        open_video(tmp_path)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="is empty"):
        open_video(empty)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(InputFileError, match="not a video PyAV can read"):
        open_video(corrupt)


def test_cli_reports_errors_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing.mp4"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no such file" in err and "Check the path" in err
    assert not (tmp_path / "out").exists()


def test_a_video_without_a_face_is_refused_after_writing_the_report(tmp_path: Path) -> None:
    t = np.linspace(0, 1, 96, dtype=np.float32)
    frames = [np.stack(np.broadcast_arrays((t[None, :] * 255 + 20 * i) % 255, t[:, None] * 200, 80.0), axis=-1)
              .astype(np.uint8) for i in range(6)]
    video = _write_video(tmp_path / "noface.mp4", frames)
    with pytest.raises(InputFileError, match="no face was found in any of the 6 frames"):
        build_personal_dataset(video, tmp_path / "out", size=64)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["frames_checked"] == 6 and report["frames_kept"] == 0
    assert not list((tmp_path / "out").glob("shard_*.npz"))


@pytest.mark.slow
def test_a_portrait_video_becomes_a_dataset(tmp_path: Path) -> None:
    portrait = load_portrait(default_portrait(), max_side=256)
    frames = [np.roll(portrait, 2 * i, axis=1) for i in range(8)]
    video = _write_video(tmp_path / "talk.mp4", frames)
    report = build_personal_dataset(video, tmp_path / "out", size=96, rules=FilterRules(points="head"))
    assert report.frames_checked == 8 and report.frames_kept >= 6, report.rejected
    assert report.crop is not None and report.reference_frame is not None
    shard = read_shard(list_shards(tmp_path / "out")[0])
    assert shard.frames.shape[1:] == (96, 96, 3) and len(shard) == report.frames_kept
    assert shard.meta["source"] == "personal-video" and (shard.identity == -1).all()
    kp.validate_sequence(shard.keypoints)
    face = shard.keypoints[:, kp.FACE]
    assert (face[..., 2] > 0.9).mean() > 0.9 and ((face[..., :2] > 0) & (face[..., :2] < 1)).all()
    assert region_mask(shard.masks, "mouth").any() and region_mask(shard.masks, "face").any()
