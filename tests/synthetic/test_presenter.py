"""The synthetic presenter: determinism, masks that agree with the drawing, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from inference import keypoints as kp
from training.synthetic.identity import sample_identity
from training.synthetic.presenter import SyntheticPresenter
from training.synthetic.proportions import apply_proportions
from training.synthetic.regions import REGIONS, masks_to_stack, region_mask

F = kp.FACE.start


def _open_lips(keypoints: np.ndarray, amount: float) -> np.ndarray:
    """Part the inner lips by ``amount`` of the lip height, leaving the outer lip line and the chin where they are."""
    out = keypoints.copy()
    upper_in, lower_in = [F + i for i in (61, 62, 63)], [F + i for i in (67, 66, 65)]
    upper_out, lower_out = [F + i for i in (50, 51, 52)], [F + i for i in (58, 57, 56)]
    out[upper_in, 1] += (out[upper_out, 1] - out[upper_in, 1]) * amount
    out[lower_in, 1] += (out[lower_out, 1] - out[lower_in, 1]) * amount
    return out


@pytest.fixture(scope="module")
def presenter() -> SyntheticPresenter:
    return SyntheticPresenter(sample_identity(3), 256)


def test_same_seed_same_pixels_and_other_seeds_differ(neutral: np.ndarray) -> None:
    a = SyntheticPresenter(sample_identity(42), 256)
    b = SyntheticPresenter(sample_identity(42), 256)
    k = a.personalise(neutral)
    fa, fb = a.render(k), b.render(k)
    assert fa.rgb.dtype == np.uint8 and fa.rgb.shape == (256, 256, 3) and fa.masks.shape == (256, 256)
    assert np.array_equal(fa.rgb, fb.rgb) and np.array_equal(fa.masks, fb.masks)
    assert np.array_equal(a.reference(), b.reference())
    other = SyntheticPresenter(sample_identity(43), 256).render(k)
    assert np.abs(other.rgb.astype(int) - fa.rgb).mean() > 5


def test_identity_seeds_give_varied_people() -> None:
    people = [sample_identity(s) for s in range(40)]
    assert len({p.skin for p in people}) > 30
    assert len({p.hair_style for p in people}) >= 5
    assert 3 <= sum(p.glasses is not None for p in people) <= 25
    assert sample_identity(7) == sample_identity(7)


def test_sizes_and_reference(neutral: np.ndarray) -> None:
    p512 = SyntheticPresenter(sample_identity(5), 512)
    frame = p512.render(p512.personalise(neutral))
    assert frame.rgb.shape == (512, 512, 3)
    ref = p512.reference("head-and-shoulders")
    assert ref.shape == (512, 512, 3) and ref.dtype == np.uint8
    assert p512.reference_keypoints("head-and-shoulders").shape == (134, 3)


def test_every_pixel_has_an_owner_and_regions_agree(presenter: SyntheticPresenter, neutral: np.ndarray) -> None:
    frame = presenter.render(presenter.personalise(neutral))
    stack = masks_to_stack(frame.masks)
    owners = [REGIONS.index(r) for r in ("face", "arms", "torso", "background")]
    hands = [REGIONS.index(r) for r in ("left_hand", "right_hand")]
    assert (stack[owners].any(axis=0) | stack[hands].any(axis=0)).all()
    assert not (region_mask(frame.masks, "face") & region_mask(frame.masks, "background")).any()
    # the drawing covers the middle of the frame; the top corners are backdrop
    assert region_mask(frame.masks, "background")[:10, :10].all()
    assert region_mask(frame.masks, "face")[int(neutral[kp.NOSE, 1] * 256), int(neutral[kp.NOSE, 0] * 256)]


def test_open_mouth_shows_teeth_and_cavity_inside_the_mouth_mask(presenter: SyntheticPresenter,
                                                                  neutral: np.ndarray) -> None:
    closed_kps = presenter.personalise(neutral)
    closed = presenter.render(closed_kps)
    opened = presenter.render(_open_lips(closed_kps, 0.9))
    mouth = region_mask(opened.masks, "mouth")
    changed = np.abs(opened.rgb.astype(int) - closed.rgb.astype(int)).max(axis=2) > 25
    assert changed.sum() > 15, "parting the lips must change the picture"
    assert not (changed & ~mouth).any(), "the mouth's interior must stay inside the mouth mask"
    inside = opened.rgb[mouth].astype(int)
    assert (inside.min(axis=1) > 190).sum() >= 3, "teeth (near-white) must show when the lips part"
    assert (inside.max(axis=1) < 90).sum() >= 3, "the dark cavity must show when the lips part"
    assert region_mask(opened.masks, "mouth").sum() >= region_mask(closed.masks, "mouth").sum()


def test_hand_masks_cover_the_fingers(presenter: SyntheticPresenter, neutral: np.ndarray) -> None:
    keypoints = presenter.personalise(neutral)
    frame = presenter.render(keypoints)
    for block, region in ((kp.RIGHT_HAND, "right_hand"), (kp.LEFT_HAND, "left_hand")):
        mask = region_mask(frame.masks, region)
        pts = np.round(keypoints[block, :2] * 256).astype(int)
        inside = [(x, y) for x, y in pts if 0 <= x < 256 and 0 <= y < 256]
        assert inside, "the rest pose shows the hands"
        assert all(mask[y, x] for x, y in inside), f"every {region} point lies inside its mask"


def test_moving_fingers_changes_pixels_only_inside_the_hand_masks(presenter: SyntheticPresenter,
                                                                  neutral: np.ndarray) -> None:
    keypoints = presenter.personalise(neutral)
    moved = keypoints.copy()
    wrist = moved[kp.RIGHT_HAND.start, :2]
    tips = np.array([4, 8, 12, 16, 20]) + kp.RIGHT_HAND.start
    moved[tips, :2] = wrist + (moved[tips, :2] - wrist) * 0.8  # curl the fingertips in
    a, b = presenter.render(keypoints), presenter.render(moved)
    changed = np.abs(a.rgb.astype(int) - b.rgb.astype(int)).max(axis=2) > 40
    assert changed.sum() > 5
    hands = region_mask(a.masks, "right_hand") | region_mask(b.masks, "right_hand")
    assert not (changed & ~hands).any()


def test_proportions_keep_the_keypoint_contract(neutral: np.ndarray) -> None:
    identity = sample_identity(9)
    out = apply_proportions(np.stack([neutral, neutral]), identity.proportions)
    assert out.shape == (2, 134, 3) and out.dtype == np.float32
    kp.validate_sequence(out)
    assert np.array_equal(out[:, kp.UNDRIVEN, 2], np.zeros((2, len(kp.UNDRIVEN))))


@pytest.mark.parametrize("bad", [np.zeros((133, 3)), np.full((134, 3), np.nan), np.zeros((134, 2))])
def test_bad_keypoints_are_refused_with_a_message(presenter: SyntheticPresenter, bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="keypoints must be a finite"):
        presenter.render(bad)


def test_bad_sizes_and_seeds_are_refused() -> None:
    with pytest.raises(ValueError, match="size must be"):
        SyntheticPresenter(sample_identity(1), 32)
    with pytest.raises(ValueError, match="non-negative integer"):
        sample_identity(-1)
    with pytest.raises(ValueError, match="unknown region"):
        region_mask(np.zeros((4, 4), np.uint8), "elbow")
