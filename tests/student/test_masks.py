"""The input-aware masks against float64 references written from the definitions (paper Eq. 1-3)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from inference.keypoints import LEFT_HAND, NOSE, RIGHT_HAND
from inference.ops.csr import csr_to_block_mask
from inference.render.student import masks
from tests.student.poses import presenter_clip, presenter_pose

GRID = masks.TokenGrid(16, 16, 64)  # 256x256 frames: 256 tokens, 4 blocks a frame


# -- Procrustes -----------------------------------------------------------------------------------------

def kabsch_distance(query: np.ndarray, past: np.ndarray) -> float:
    """float64 reference: SVD-based rigid alignment of ``past`` onto ``query``, mean squared residual."""
    x_mean, y_mean = past.mean(axis=0), query.mean(axis=0)
    x, y = past - x_mean, query - y_mean
    u, _, vt = np.linalg.svd(x.T @ y)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1.0, d]) @ u.T
    aligned = (rotation @ past.T).T + (y_mean - rotation @ x_mean)
    return float(((query - aligned) ** 2).sum(axis=1).mean())


def rigid(points: np.ndarray, angle: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]]) + np.array(shift)


def test_procrustes_matches_the_svd_reference_on_random_poses_and_visibility():
    rng = np.random.default_rng(7)
    query, past = rng.random((3, 12, 2)), rng.random((5, 12, 2))
    query_visible, past_visible = rng.random((3, 12)) > 0.2, rng.random((5, 12)) > 0.2
    past_visible[4, :10] = False  # fewer than three common points
    got = masks.procrustes_distances(query, query_visible, past, past_visible)
    for q, p in itertools.product(range(3), range(5)):
        common = query_visible[q] & past_visible[p]
        if common.sum() < masks.MIN_COMMON_POINTS:
            assert got[q, p] == np.inf
        else:
            assert got[q, p] == pytest.approx(kabsch_distance(query[q, common], past[p, common]), rel=1e-9, abs=1e-12)


def test_procrustes_ignores_rotation_and_translation_but_not_a_change_of_pose():
    xy, visible = masks.upper_body_points(presenter_clip(40))
    moved = rigid(xy[0], 0.4, (0.1, -0.05))
    distances = masks.procrustes_distances(xy[:1], visible[:1], np.stack([moved, xy[20]]), visible[[0, 20]])
    assert distances[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert distances[0, 1] > 1e-4
    swapped = masks.procrustes_distances(xy[20:21], visible[20:21], xy[:1], visible[:1])
    assert swapped[0, 0] == pytest.approx(distances[0, 1], rel=1e-9)  # symmetric


def test_selection_keeps_the_newest_then_the_most_similar_with_ties_to_the_newer():
    distances = np.array([[0.5, 0.1, 0.3, 0.1, 0.9]])
    ages = np.array([5, 4, 3, 2, 1])
    assert masks.select_past_frames(distances, ages, k=3, keep_recent=1).tolist() == [4, 3, 1]
    assert masks.select_past_frames(distances, ages, k=2, keep_recent=0).tolist() == [3, 1]
    assert masks.select_past_frames(distances, ages, k=9, keep_recent=1).tolist() == [4, 3, 1, 2, 0]
    assert masks.select_past_frames(np.zeros((1, 0)), np.zeros(0), k=3).size == 0


def test_clip_selection_picks_k_others_per_frame_never_itself():
    xy, visible = masks.upper_body_points(presenter_clip(8))
    allowed = masks.select_within_clip(masks.procrustes_distances(xy, visible, xy, visible), k=3)
    assert not allowed.diagonal().any()
    assert (allowed.sum(axis=1) == 3).all()


# -- regions and layout ---------------------------------------------------------------------------------

def token_of(point: np.ndarray) -> tuple[int, int]:
    return int(point[1] * GRID.rows), int(point[0] * GRID.cols)


def test_regions_cover_their_keypoints():
    pose = presenter_pose(0.3)
    labels = masks.rasterise_regions(pose, GRID)
    assert labels[token_of(pose[NOSE])] == masks.FACE_REGION
    for hand, region in ((LEFT_HAND, masks.LEFT_HAND_REGION), (RIGHT_HAND, masks.RIGHT_HAND_REGION)):
        cells = {token_of(p) for p in pose[hand][:, :2]}
        assert all(labels[c] == region for c in cells), region
    assert labels[0, 0] == masks.BACKGROUND
    assert set(np.unique(labels)) <= set(range(len(masks.REGION_NAMES)))
    assert (labels == masks.TORSO_REGION).sum() > 10 and (labels == masks.ARMS_REGION).sum() > 5


def test_a_frame_without_visible_keypoints_is_all_background():
    assert not masks.rasterise_regions(np.zeros((134, 3), np.float32), GRID).any()


def test_layout_grows_regions_into_nearest_background_to_fill_whole_blocks():
    labels = masks.rasterise_regions(presenter_pose(0.0), masks.TokenGrid(32, 32, 64))
    grid = masks.TokenGrid(32, 32, 64)
    layout = masks.layout_frame(labels, grid)
    before, after = labels.ravel(), layout.labels
    assert (after[before != masks.BACKGROUND] == before[before != masks.BACKGROUND]).all()  # nothing shrinks
    counts = np.bincount(after, minlength=6)
    assert all(counts[r] % grid.block_size == 0 for r in range(1, 6) if counts[r])
    bits = layout.block_bits
    assert ((bits & (bits - 1)) == 0).all() and bits.all()  # every block holds exactly one region
    # The tokens a region took are the background tokens nearest to it.
    rows, cols = np.divmod(np.arange(grid.tokens), grid.cols)
    for region in range(1, 6):
        grown = np.flatnonzero((after == region) & (before == masks.BACKGROUND))
        if grown.size == 0:
            continue
        own = np.flatnonzero(before == region)
        distance = np.hypot(rows[:, None] - rows[own][None], cols[:, None] - cols[own][None]).min(axis=1)
        still_background = np.flatnonzero(after == masks.BACKGROUND)
        assert distance[grown].max() <= distance[still_background].min() + 0.1
    assert sorted(layout.order.tolist()) == list(range(grid.tokens))
    ranks = np.array([masks.LAYOUT_ORDER.index(label) for label in after[layout.order]])
    assert (np.diff(ranks) >= 0).all()


def test_chunk_order_and_restore_are_inverse_and_stay_inside_frames():
    layouts = [masks.layout_frame(masks.rasterise_regions(k, GRID), GRID) for k in presenter_clip(3)]
    order, restore = masks.chunk_token_order(layouts)
    assert (order[restore] == np.arange(order.size)).all()
    assert (order // GRID.tokens == np.repeat(np.arange(3), GRID.tokens)).all()


# -- the block mask against the token-level definition --------------------------------------------------

def token_mask_reference(chunk_labels: list[np.ndarray], past_labels: list[np.ndarray | None],
                         reference_tokens: int, chunk_allowed: np.ndarray) -> np.ndarray:
    """The combined mask M = M_global + M_local at token level, one pair at a time (laid-out orders)."""
    n = chunk_labels[0].size
    frames = len(chunk_labels)
    key_labels = chunk_labels + past_labels
    mask = np.zeros((frames * n, reference_tokens + len(key_labels) * n), dtype=bool)
    for f, i in itertools.product(range(frames), range(n)):
        row = f * n + i
        mask[row, :reference_tokens] = True  # the reference: always
        for g, labels in enumerate(key_labels):
            if labels is None:
                continue  # an empty past position
            allowed_frame = g == f or (chunk_allowed[f, g] if g < frames else True)
            for j in range(n):
                same_region = chunk_labels[f][i] != masks.BACKGROUND and chunk_labels[f][i] == labels[j]
                if g == f or (allowed_frame and same_region):
                    mask[row, reference_tokens + g * n + j] = True
    return mask


def max_pool(mask: np.ndarray, block: int) -> np.ndarray:
    rows, cols = mask.shape[0] // block, mask.shape[1] // block
    return mask.reshape(rows, block, cols, block).any(axis=(1, 3))


@pytest.mark.parametrize("clip_allowed", [False, True])
def test_block_mask_is_the_max_pooled_token_mask(clip_allowed):
    clip = presenter_clip(6)
    layouts = [masks.layout_frame(masks.rasterise_regions(k, GRID), GRID) for k in clip]
    chunk, past = layouts[4:], [layouts[0], None, layouts[2]]
    laid_out = [layout.labels[layout.order] for layout in layouts]
    chunk_allowed = np.ones((2, 2), dtype=bool)
    if clip_allowed:
        chunk_allowed[0, 1] = False  # frame 0 may not look at frame 1 (a teacher-style selection)
    past_bits = np.stack([p.block_bits if p is not None else np.zeros(GRID.blocks, np.uint8) for p in past])
    past_allowed = np.array([[p is not None for p in past]] * 2)
    got = masks.build_block_mask(np.stack([c.block_bits for c in chunk]), past_bits, past_allowed,
                                 reference_blocks=GRID.blocks, chunk_allowed=chunk_allowed)
    reference = token_mask_reference(laid_out[4:], [laid_out[0], None, laid_out[2]], GRID.tokens, chunk_allowed)
    assert (got == max_pool(reference, GRID.block_size)).all()


def test_padded_csr_round_trips_through_the_ops_csr_helpers():
    rng = np.random.default_rng(3)
    mask = rng.random((8, 20)) < 0.3
    mask[2] = False  # a query block with no key block
    row_ptr = np.zeros((1, 9), np.int32)
    col_idx = np.full((1, 160), 77, np.int32)
    kept = masks.block_mask_to_padded_csr(mask, row_ptr, col_idx)
    assert kept == mask.sum() and (col_idx[0, kept:] == 0).all()
    assert (csr_to_block_mask(row_ptr, col_idx, 20)[0] == mask).all()


def test_token_grid_rejects_frames_that_are_not_whole_blocks():
    with pytest.raises(ValueError, match="whole number of blocks"):
        masks.TokenGrid(10, 10, 64)
