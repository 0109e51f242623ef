"""The reference warped to a frame's keypoints (the evaluation's learning-free baseline)."""

import cv2
import numpy as np
import pytest

from inference import keypoints as kp
from tests.synthetic.conftest import neutral, small_bank  # noqa: F401 - shared fixtures
from training.data.reference_warp import warp_reference

SIZE = 256


def _portrait(seed: int = 0) -> np.ndarray:
    """A smooth random RGB image (every pixel differs from its neighbours, so a misplaced pixel shows)."""
    noise = np.random.default_rng(seed).uniform(0, 255, (SIZE // 8, SIZE // 8, 3)).astype(np.float32)
    return cv2.resize(noise, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


def _face_box(keypoints: np.ndarray, inset: int) -> tuple[slice, slice]:
    face = keypoints[[kp.face_index(i) for i in range(68)], :2] * SIZE
    (x0, y0), (x1, y1) = face.min(axis=0), face.max(axis=0)
    return slice(int(y0) + inset, int(y1) - inset), slice(int(x0) + inset, int(x1) - inset)


def test_the_same_pose_gives_the_reference_back(neutral):  # noqa: F811
    reference = _portrait()
    out = warp_reference(reference, neutral, neutral)
    inner = (slice(3, -3), slice(3, -3))  # the mapping's outermost half cell is clamped
    assert out.shape == reference.shape and out.dtype == np.uint8
    assert np.abs(out[inner].astype(int) - reference[inner].astype(int)).max() <= 1


def test_a_moved_face_brings_the_portraits_face_along(neutral):  # noqa: F811
    reference = _portrait(1)
    moved = neutral.copy()
    moved[:, 0] += 8 / SIZE  # every keypoint 8 pixels to the right
    out = warp_reference(reference, neutral, moved)
    rows, cols = _face_box(moved, inset=6)  # inside the face mesh every triangle moves rigidly
    shifted = reference[rows, cols.start - 8:cols.stop - 8]
    assert np.abs(out[rows, cols].astype(int) - shifted.astype(int)).max() <= 2
    assert np.abs(out[rows, cols].astype(int) - reference[rows, cols].astype(int)).mean() > 10  # it did move


def test_without_shared_points_the_reference_comes_back_unchanged(neutral):  # noqa: F811
    reference = _portrait(2)
    unseen = neutral.copy()
    unseen[:, 2] = 0.0
    out = warp_reference(reference, unseen, neutral)
    assert np.array_equal(out, reference) and out is not reference


def test_broken_inputs_are_refused_with_a_message(neutral):  # noqa: F811
    reference = _portrait()
    with pytest.raises(ValueError, match="square RGB"):
        warp_reference(reference[:, :100], neutral, neutral)
    with pytest.raises(ValueError, match=r"keypoints must be DWPose-134 keypoints \[134, 3\]"):
        warp_reference(reference, neutral, neutral[:100])
    with pytest.raises(ValueError, match="reference_keypoints"):
        warp_reference(reference, neutral[:, :2], neutral)


def test_the_loader_warps_the_reference_to_every_frame(small_bank):  # noqa: F811
    from training.data.clips import ClipConfig, ClipSampler
    from training.data.torch_dataset import SyntheticClipDataset

    sampler = ClipSampler(small_bank, "train", ClipConfig(length=3, seed=4))
    item = SyntheticClipDataset(sampler, size=SIZE, num_clips=1, pose_maps=False, warped_reference=True)[0]
    warped = item["warped_reference"].numpy()
    assert warped.shape == (3, 3, SIZE, SIZE) and warped.dtype == np.uint8
    reference = item["reference"].permute(1, 2, 0).numpy()
    for t in range(3):
        expected = warp_reference(reference, item["reference_keypoints"].numpy(), item["keypoints"][t].numpy())
        assert np.array_equal(warped[t].transpose(1, 2, 0), expected)
    assert "warped_reference" not in SyntheticClipDataset(sampler, size=SIZE, num_clips=1, pose_maps=False)[0]
