"""Training data: perturbations, speech splits, motion banks, clips, shards and the torch datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from inference import keypoints as kp
from inference.errors import InputFileError
from training.data.clips import ClipConfig, ClipSampler, identity_seed
from training.data.make_synthetic import main as make_synthetic_main
from training.data.make_synthetic import make_synthetic
from training.data.motion_bank import MotionBank, motion_stream, style_named
from training.data.perturb import apply_camera, perturb_stream
from training.data.shards import list_shards, read_shard
from training.data.speech import SpeechClip, speech_clips
from training.data.torch_dataset import ShardClipDataset, SyntheticClipDataset
from training.synthetic.regions import region_mask


def test_perturbation_is_deterministic_smooth_and_valid(neutral: np.ndarray) -> None:
    base = np.repeat(neutral[None], 50, axis=0)
    a = perturb_stream(base, np.random.default_rng(4))
    b = perturb_stream(base, np.random.default_rng(4))
    assert np.array_equal(a, b)
    kp.validate_sequence(a)
    assert np.array_equal(perturb_stream(base, np.random.default_rng(4), strength=0.0), base)
    moved = np.abs(a[..., :2] - base[..., :2]).max(axis=0).max(axis=1)
    for block in (kp.FACE, kp.LEFT_HAND, kp.RIGHT_HAND):
        assert moved[block].max() > 0.01, f"{block} should move"
    step = np.abs(np.diff(a[:, kp.FACE, :2], axis=0)).max()
    assert step < 0.03, "perturbations must be smooth between frames"
    assert (a[:, kp.UNDRIVEN, 2] == 0).all()


def test_camera_keeps_points_and_marks_those_it_pushes_out(neutral: np.ndarray) -> None:
    zoomed = apply_camera(neutral, 2.0, (0.0, 0.02))
    assert np.allclose(zoomed[kp.NOSE, :2], (neutral[kp.NOSE, :2] - 0.5) * 2.0 + 0.5 + (0.0, 0.02), atol=1e-6)
    outside = ((zoomed[:, :2] < -0.02) | (zoomed[:, :2] > 1.02)).any(axis=1)
    assert outside.any() and (zoomed[outside, 2] == 0).all()
    kept = ~outside & (neutral[:, 2] > 0)
    assert np.array_equal(zoomed[kept, 2], neutral[kept, 2])


def test_a_hand_the_camera_brings_into_a_close_framing_is_visible_in_the_pose() -> None:
    """Head-and-shoulders streams never show their hands; when a zoom-out brings a hand into the frame (the
    renderer draws it), its keypoints must be visible too, or the pose map says "no hand" over a drawn hand."""
    from inference.motion.rig import HAND_CONFIDENCE, Framing, RigControls, pose_keypoints

    close = pose_keypoints(RigControls(), Framing.named("head-and-shoulders"))
    for block in (kp.LEFT_HAND, kp.RIGHT_HAND):
        assert (close[block, 2] == 0).all(), "the rest pose's hands are below a close framing"
    zoomed = apply_camera(close[None], 0.45, (0.0, -0.05))[0]
    for block in (kp.LEFT_HAND, kp.RIGHT_HAND):
        inside = ((zoomed[block, :2] >= 0) & (zoomed[block, :2] <= 1)).all(axis=1)
        assert inside.any(), "the zoom-out must bring the hand in for this test to mean anything"
        assert (zoomed[block, 2][inside] == np.float32(HAND_CONFIDENCE)).all()
    assert (zoomed[kp.UNDRIVEN, 2] == 0).all()


def test_identity_seed_streams_never_meet() -> None:
    train = {identity_seed("train", k) for k in range(2000)}
    held = {identity_seed("heldout", k) for k in range(2000)}
    assert not train & held
    assert all(s % 2 == 0 for s in train) and all(s % 2 == 1 for s in held)
    with pytest.raises(ValueError, match="split must be"):
        identity_seed("test", 0)


def test_held_out_speech_never_drives_training() -> None:
    train, held = speech_clips("train", include_system=False), speech_clips("heldout", include_system=False)
    assert train[0].end is not None and held[0].start >= train[0].end
    train_names = {c.name for c in speech_clips("train")}
    assert not train_names & {c.name for c in speech_clips("heldout")}


def test_motion_stage_on_real_speech(demo_audio: Path) -> None:
    clip = SpeechClip("demo-1s", demo_audio, 0.5, 1.5)
    stream = motion_stream(clip, style_named("lively", "head-and-shoulders", 3), 25.0)
    assert 24 <= len(stream) <= 26
    kp.validate_sequence(stream)
    with pytest.raises(ValueError, match="unknown style"):
        style_named("grumpy", "half-body", 0)


def test_motion_bank_round_trip_and_damaged_file(small_bank: MotionBank, tmp_path: Path) -> None:
    path = small_bank.save(tmp_path / "bank.npz")
    loaded = MotionBank.load(path)
    assert len(loaded) == len(small_bank) and loaded.infos == small_bank.infos
    assert all(np.array_equal(a, b) for a, b in zip(loaded.streams, small_bank.streams, strict=True))
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip file at all")
    with pytest.raises(InputFileError, match="not a readable motion bank"):
        MotionBank.load(broken)
    with pytest.raises(InputFileError, match="no such motion bank"):
        MotionBank.load(tmp_path / "missing.npz")


def test_clips_are_deterministic_and_use_their_split(small_bank: MotionBank) -> None:
    sampler = ClipSampler(small_bank, "train", ClipConfig(length=8, clips_per_identity=2))
    assert sampler.spec(5) == sampler.spec(5)
    assert sampler.spec(4).identity_seed == sampler.spec(5).identity_seed != sampler.spec(6).identity_seed
    a, b = sampler.render(3, 96), ClipSampler(small_bank, "train", ClipConfig(length=8, clips_per_identity=2)).render(3, 96)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.masks, b.masks)
    assert a.frames.shape == (8, 96, 96, 3) and a.reference.shape == (96, 96, 3)
    held = ClipSampler(small_bank, "heldout", ClipConfig(length=8))
    assert held.spec(0).identity_seed % 2 == 1
    with pytest.raises(ValueError, match="no motion stream has 100 frames"):
        ClipSampler(small_bank, "train", ClipConfig(length=100))


def test_synthetic_dataset_items_and_workers_agree(small_bank: MotionBank) -> None:
    ds = SyntheticClipDataset(ClipSampler(small_bank, "train", ClipConfig(length=4)), size=64, num_clips=4)
    item = ds[1]
    assert item["frames"].shape == (4, 3, 64, 64) and item["frames"].dtype == torch.uint8
    assert item["masks"].shape == (4, 64, 64) and item["keypoints"].shape == (4, 134, 3)
    assert item["pose_maps"].shape == (4, 3, 64, 64) and item["reference"].shape == (3, 64, 64)
    serial = list(DataLoader(ds, batch_size=2, num_workers=0))
    parallel = list(DataLoader(ds, batch_size=2, num_workers=2))
    assert all(torch.equal(a["frames"], b["frames"]) for a, b in zip(serial, parallel, strict=True))
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["frames"], item["frames"])
    with pytest.raises(IndexError):
        ds[4]


def test_shards_round_trip_into_the_shard_dataset(small_bank: MotionBank, tmp_path: Path) -> None:
    writer = make_synthetic(tmp_path / "set", "train", clips=3, size=64, config=ClipConfig(length=6),
                            bank=small_bank, frames_per_shard=10)
    assert len(writer.paths) == 2 and writer.total_frames == 18
    shard = read_shard(writer.paths[0])
    assert shard.frames.shape[1:] == (64, 64, 3) and len(shard.references) == 2
    assert region_mask(shard.masks, "face").any()
    ds = ShardClipDataset(tmp_path / "set", clip_length=6, pose_maps=False)
    assert len(ds) == 3
    item = ds[2]
    assert item["frames"].shape == (6, 3, 64, 64) and "pose_maps" not in item
    with pytest.raises(ValueError, match="no clip holds 7 consecutive frames"):
        ShardClipDataset(tmp_path / "set", clip_length=7)


def test_damaged_and_missing_shards_say_so(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such dataset folder"):
        list_shards(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="holds no shard"):
        list_shards(tmp_path / "empty")
    bad = tmp_path / "shard_00000.npz"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(InputFileError, match="not a readable shard"):
        read_shard(bad)
    np.savez(tmp_path / "other.npz", frames=np.zeros(3))
    with pytest.raises(InputFileError, match="not a Podium shard"):
        read_shard(tmp_path / "other.npz")


def test_make_synthetic_cli_reports_a_wrong_bank(small_bank: MotionBank, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bank = small_bank.save(tmp_path / "train_bank.npz")
    code = make_synthetic_main([str(tmp_path / "out"), "--split", "heldout", "--bank", str(bank), "--clips", "1"])
    assert code == 1
    assert "motion bank is for the 'train' split" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
