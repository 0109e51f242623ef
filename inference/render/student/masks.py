"""Input-aware sparse attention masks (paper §4): frame selection, body regions, token layout, block mask.

Numpy only, shared by the runtime and by training (``training/`` imports this module), so both use
exactly the same masks. Every function works on one chunk at a time and is vectorised: a chunk of a
few frames at 512×512 (1024 tokens a frame) costs well under a millisecond.

Terms:

* **token grid**: a frame's ``rows × cols`` transformer tokens (8× autoencoder × 2×2 patches, so one
  token covers 16×16 pixels); tokens are numbered row-major, ``N = rows · cols`` a frame.
* **region labels**: one ``uint8`` per token, :data:`BACKGROUND` or one of the five body regions.
* **layout**: the order in which a frame's tokens enter the transformer: region by region in
  :data:`LAYOUT_ORDER`, background last. Regions are first grown into neighbouring background tokens
  until each fills whole attention blocks, so a block holds one region (unless the frame has too
  little background to grow into; such a block then holds several and the pooled mask keeps it for
  each of them).
* **block bits**: per block of a laid-out frame, the bitwise OR of ``1 << label`` of its tokens.
* **key layout** of one attention call: ``[reference | chunk frame 0 .. F-1 | past position 0 .. P-1]``,
  every segment ``N`` tokens (the reference has its own token count).

The combined mask (paper Eq. 1-3, with the choices stated where the paper leaves a gap):

* a query token attends to every reference token, and densely to its own frame;
* to another frame's token only if that frame is *allowed* (global mask: for past frames, the K
  cached frames most similar in pose after rigid Procrustes alignment of the upper-body keypoints,
  chosen once per chunk; for the other frames of the chunk, always) **and** both tokens lie in the
  same body region (local mask); background tokens get no cross-frame attention;
* a block of queries attends to a block of keys if any of its token pairs may (max-pooling: nothing
  allowed is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from inference.keypoints import (
    FACE,
    L_EAR,
    L_ELBOW,
    L_EYE,
    L_HIP,
    L_SHOULDER,
    L_WRIST,
    LEFT_HAND,
    NECK,
    NOSE,
    R_EAR,
    R_ELBOW,
    R_EYE,
    R_HIP,
    R_SHOULDER,
    R_WRIST,
    RIGHT_HAND,
    UPPER_BODY,
)
from inference.ops.csr import block_mask_to_csr

BACKGROUND, FACE_REGION, LEFT_HAND_REGION, RIGHT_HAND_REGION, ARMS_REGION, TORSO_REGION = range(6)
REGION_NAMES: tuple[str, ...] = ("background", "face", "left hand", "right hand", "arms and shoulders", "torso")
#: Token order inside a laid-out frame: body regions first, background last.
LAYOUT_ORDER: tuple[int, ...] = (FACE_REGION, LEFT_HAND_REGION, RIGHT_HAND_REGION, ARMS_REGION, TORSO_REGION,
                                 BACKGROUND)
#: Bits of the body regions in a block-bits value (background excluded: it never attends across frames).
REGION_BITS = np.uint8(sum(1 << r for r in range(1, len(REGION_NAMES))))

#: A keypoint counts as visible above this confidence (DWPose's rule for body joints).
VISIBLE_CONFIDENCE = 0.3
#: Fewer common visible upper-body points than this and two poses are not compared (distance = inf).
MIN_COMMON_POINTS = 3
#: Regions are rasterised at this many sub-cells per token side; a token belongs to a region if any of
#: its sub-cells does.
SUPERSAMPLE = 4


@dataclass(frozen=True)
class TokenGrid:
    """A frame's token grid and the attention block size.

    Attributes:
        rows, cols: tokens per column and per row (frame height / 16, width / 16).
        block_size: tokens per attention block (64 or 128 for the custom op); must divide ``rows · cols``.
    """

    rows: int
    cols: int
    block_size: int

    def __post_init__(self) -> None:
        if self.rows <= 0 or self.cols <= 0 or self.block_size <= 0:
            raise ValueError(f"token grid {self.rows}x{self.cols} with block size {self.block_size} is empty")
        if self.tokens % self.block_size:
            raise ValueError(f"a frame's {self.tokens} tokens ({self.rows}x{self.cols}) are not a whole number of "
                             f"blocks of {self.block_size}; choose a frame size whose token count it divides")

    @property
    def tokens(self) -> int:
        """Tokens per frame, ``N``."""
        return self.rows * self.cols

    @property
    def blocks(self) -> int:
        """Attention blocks per frame."""
        return self.tokens // self.block_size


# --------------------------------------------------------------------------------------------------
# Global mask: rigid Procrustes pose distance and top-K frame selection
# --------------------------------------------------------------------------------------------------

def upper_body_points(keypoints: np.ndarray, aspect: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The paper's B upper-body keypoints of each frame.

    Args:
        keypoints: float ``[T, 134, 3]`` DWPose-134 frames (x, y normalised to the frame, confidence).
        aspect: frame width / height; x is scaled by it so distances are isotropic (in frame heights).

    Returns:
        ``(xy, visible)``: float64 ``[T, B, 2]`` and bool ``[T, B]`` for the points of
        :data:`inference.keypoints.UPPER_BODY`.
    """
    points = np.asarray(keypoints, dtype=np.float64)[:, UPPER_BODY]
    xy = points[..., :2] * np.array([aspect, 1.0])
    return xy, points[..., 2] > VISIBLE_CONFIDENCE


def procrustes_distances(query_xy: np.ndarray, query_visible: np.ndarray, past_xy: np.ndarray,
                         past_visible: np.ndarray) -> np.ndarray:
    """Pose distance of every query frame to every past frame after rigid alignment (paper Eq. 1).

    For each pair, the past pose is rotated and translated onto the query pose over the points visible
    in both (2-D orthogonal Procrustes, closed form: no SVD needed in 2-D), and the distance is the
    mean squared residual over those points, in squared frame heights.

    Args:
        query_xy: float ``[Q, B, 2]``; query_visible: bool ``[Q, B]``.
        past_xy: float ``[P, B, 2]``; past_visible: bool ``[P, B]``.

    Returns:
        float64 ``[Q, P]``, ``inf`` where a pair shares fewer than :data:`MIN_COMMON_POINTS` points.
    """
    y = np.asarray(query_xy, dtype=np.float64)[:, None]  # [Q, 1, B, 2]
    x = np.asarray(past_xy, dtype=np.float64)[None]  # [1, P, B, 2]
    w = (np.asarray(query_visible, dtype=bool)[:, None] & np.asarray(past_visible, dtype=bool)[None]).astype(
        np.float64)  # [Q, P, B]
    n = w.sum(axis=-1)
    safe_n = np.maximum(n, 1.0)[..., None]  # [Q, P, 1]
    xc = x - ((w[..., None] * x).sum(axis=-2) / safe_n)[..., None, :]  # [Q, P, B, 2]
    yc = y - ((w[..., None] * y).sum(axis=-2) / safe_n)[..., None, :]
    a = (w * (xc[..., 0] * yc[..., 0] + xc[..., 1] * yc[..., 1])).sum(axis=-1)
    b = (w * (xc[..., 0] * yc[..., 1] - xc[..., 1] * yc[..., 0])).sum(axis=-1)
    spread = (w * ((xc ** 2).sum(axis=-1) + (yc ** 2).sum(axis=-1))).sum(axis=-1)
    residual = np.maximum(spread - 2.0 * np.hypot(a, b), 0.0) / safe_n[..., 0]
    return np.where(n >= MIN_COMMON_POINTS, residual, np.inf)


def select_past_frames(distances: np.ndarray, ages: np.ndarray, k: int, keep_recent: int = 1) -> np.ndarray:
    """The cached frames a chunk attends to: the ``keep_recent`` newest, then the most similar in pose.

    One selection serves the whole chunk (its frames are consecutive, so their poses are close): a
    cached frame's score is its mean distance to the chunk's frames. Ties go to the newer frame.
    Keeping the newest frame regardless of pose is a choice of ours (temporal continuity); pass
    ``keep_recent=0`` for the paper's pure top-K.

    Args:
        distances: float ``[F, P]`` from :func:`procrustes_distances` (chunk frames × cached frames).
        ages: int ``[P]``, frames since each cached frame (1 = the frame just before the chunk).
        k: frames to keep (at most ``P`` are kept).
        keep_recent: how many of the newest frames are always kept (at most ``k``).

    Returns:
        int64 indices into the ``P`` cached frames, newest first for the recent ones, then by score.
    """
    ages = np.asarray(ages)
    count = ages.shape[0]
    k = min(k, count)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    by_age = np.argsort(ages, kind="stable")
    recent = by_age[: min(keep_recent, k)]
    score = np.asarray(distances, dtype=np.float64).mean(axis=0) if len(distances) else np.zeros(count)
    rest = np.setdiff1d(np.arange(count), recent, assume_unique=True)
    ranked = rest[np.lexsort((ages[rest], score[rest]))]
    return np.concatenate([recent, ranked[: k - recent.size]]).astype(np.int64)


def select_within_clip(distances: np.ndarray, k: int) -> np.ndarray:
    """Bidirectional frame selection inside one clip (the teacher's global mask).

    Args:
        distances: float ``[F, F]``, :func:`procrustes_distances` of the clip against itself.
        k: other frames each frame attends to.

    Returns:
        bool ``[F, F]``: ``allowed[q, f]`` for the ``k`` frames nearest in pose to ``q`` (itself excluded;
        ties go to the nearer frame in time). The diagonal is False: a frame's own tokens are handled as
        dense by :func:`build_block_mask`.
    """
    frames = distances.shape[0]
    score = np.array(distances, dtype=np.float64)
    np.fill_diagonal(score, np.inf)
    gap = np.abs(np.arange(frames)[:, None] - np.arange(frames)[None])
    order = np.lexsort((gap, score), axis=-1)[:, : min(k, frames - 1)]
    allowed = np.zeros((frames, frames), dtype=bool)
    np.put_along_axis(allowed, order, True, axis=1)
    return allowed


# --------------------------------------------------------------------------------------------------
# Local mask: body regions on the token grid
# --------------------------------------------------------------------------------------------------

_HEAD = np.concatenate([np.arange(FACE.start, FACE.stop), [NOSE, R_EYE, L_EYE, R_EAR, L_EAR]])
_LEFT_HAND = np.concatenate([np.arange(LEFT_HAND.start, LEFT_HAND.stop), [L_WRIST]])
_RIGHT_HAND = np.concatenate([np.arange(RIGHT_HAND.start, RIGHT_HAND.stop), [R_WRIST]])
#: Drawing priority: a token in several regions gets the last of these.
_PRIORITY = (BACKGROUND, TORSO_REGION, ARMS_REGION, FACE_REGION, LEFT_HAND_REGION, RIGHT_HAND_REGION)
_RANK = {region: rank for rank, region in enumerate(_PRIORITY)}
_LABEL_OF_RANK = np.array(_PRIORITY, dtype=np.uint8)
_SHIFT = 4  # sub-pixel bits of the cv2 drawing calls
_ONE = 1 << _SHIFT
_ARM_SEGMENTS = ((NECK, R_SHOULDER), (NECK, L_SHOULDER), (R_SHOULDER, R_ELBOW), (R_ELBOW, R_WRIST),
                 (L_SHOULDER, L_ELBOW), (L_ELBOW, L_WRIST))
FACE_GROWTH = 1.3  # the face hull is scaled about its centre to take in forehead and hair
HAND_GROWTH = 1.4  # hands are scaled about their centre to take in the fingers' thickness
ARM_WIDTH = 0.28  # arm thickness as a fraction of the shoulder width
MIN_ARM_WIDTH = 0.04  # ... and at least this fraction of the frame height


def rasterise_regions(keypoints: np.ndarray, grid: TokenGrid, aspect: float = 1.0) -> np.ndarray:
    """Region label of every token of one frame, from its keypoints.

    Face: the hull of the visible face and head points, scaled by :data:`FACE_GROWTH`. Hands: the hull
    of each hand's visible points and its wrist, scaled by :data:`HAND_GROWTH`. Arms and shoulders:
    capsules along neck-shoulder, shoulder-elbow and elbow-wrist. Torso: the quadrilateral of the
    shoulders and hips (or the frame's bottom edge below the shoulders when the hips are out of view).
    Overlaps go to hands, then face, then arms, then torso.

    Args:
        keypoints: float ``[134, 3]``.
        grid: the token grid.
        aspect: frame width / height.

    Returns:
        uint8 ``[rows, cols]`` labels (:data:`BACKGROUND`, :data:`FACE_REGION`, ...).
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    height, width = grid.rows * SUPERSAMPLE, grid.cols * SUPERSAMPLE
    xy = kp[:, :2] * (width, height)  # sub-cell units
    visible = kp[:, 2] > VISIBLE_CONFIDENCE
    fixed = np.round(xy * _ONE).astype(np.int32)
    # Drawn as priority ranks (later regions over earlier ones); a token takes the highest rank among its cells.
    ranks = np.zeros((height, width), dtype=np.uint8)

    shoulders_visible = visible[R_SHOULDER] and visible[L_SHOULDER]
    if shoulders_visible:  # torso: shoulders, then the hips (or the bottom edge below each shoulder)
        corners = [fixed[R_SHOULDER], fixed[L_SHOULDER]]
        for shoulder, hip in ((L_SHOULDER, L_HIP), (R_SHOULDER, R_HIP)):
            corners.append(fixed[hip] if visible[hip] else (fixed[shoulder][0], int(height * 1.05 * _ONE)))
        cv2.fillConvexPoly(ranks, np.array(corners, dtype=np.int32), _RANK[TORSO_REGION], cv2.LINE_8, _SHIFT)

    shoulder_width = float(np.hypot(*(xy[R_SHOULDER] - xy[L_SHOULDER]))) if shoulders_visible else 0.0
    thickness = max(1, int(round(max(shoulder_width * ARM_WIDTH, MIN_ARM_WIDTH * height))))
    for a, b in _ARM_SEGMENTS:  # arms and shoulders
        if visible[a] and visible[b]:
            cv2.line(ranks, fixed[a], fixed[b], _RANK[ARMS_REGION], thickness, cv2.LINE_8, _SHIFT)

    _fill_hull(ranks, xy[_HEAD][visible[_HEAD]], _RANK[FACE_REGION], FACE_GROWTH)
    for points, region in ((_LEFT_HAND, LEFT_HAND_REGION), (_RIGHT_HAND, RIGHT_HAND_REGION)):
        _fill_hull(ranks, xy[points][visible[points]], _RANK[region], HAND_GROWTH)

    cell_rank = ranks.reshape(height, grid.cols, SUPERSAMPLE).max(axis=2).reshape(grid.rows, SUPERSAMPLE, -1).max(axis=1)
    return _LABEL_OF_RANK[cell_rank]


def _fill_hull(canvas: np.ndarray, points: np.ndarray, value: int, growth: float) -> None:
    """Fills the convex hull of ``points`` scaled by ``growth`` about its centre, and at least a dot there."""
    if len(points) == 0:
        return
    centre = points.mean(axis=0)
    grown = np.round((centre + (points - centre) * growth) * _ONE).astype(np.int32)
    if len(points) >= 3:
        cv2.fillConvexPoly(canvas, cv2.convexHull(grown), int(value), cv2.LINE_8, _SHIFT)
    cv2.circle(canvas, np.round(centre * _ONE).astype(np.int32), _ONE, int(value), -1, cv2.LINE_8, _SHIFT)


# --------------------------------------------------------------------------------------------------
# Token layout: grow regions to whole blocks, order tokens region by region
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FrameLayout:
    """How one frame's tokens are laid out for attention.

    Attributes:
        labels: uint8 ``[N]`` region of each token (row-major), after growing regions to whole blocks.
        order: int64 ``[N]``: laid-out position ``i`` holds token ``order[i]``.
        block_bits: uint8 ``[N / block_size]``, OR of ``1 << label`` over each block's tokens.
    """

    labels: np.ndarray
    order: np.ndarray
    block_bits: np.ndarray


def layout_frame(labels: np.ndarray, grid: TokenGrid) -> FrameLayout:
    """Grows each region into its nearest background tokens until it fills whole blocks, then orders the
    tokens region by region (:data:`LAYOUT_ORDER`, row-major inside a region).

    Growing only adds tokens to a region (it never removes any), so it can only keep more attention, never
    less. When a frame lacks the background to complete every region, the regions first in
    :data:`LAYOUT_ORDER` are completed first and the remaining blocks mix regions.

    Args:
        labels: uint8 ``[rows, cols]`` from :func:`rasterise_regions`.
        grid: the token grid.
    """
    grown = np.array(labels, dtype=np.uint8).reshape(grid.rows, grid.cols)
    counts = np.bincount(grown.ravel(), minlength=len(REGION_NAMES))
    for region in LAYOUT_ORDER[:-1]:
        need = -int(counts[region]) % grid.block_size
        free = int(counts[BACKGROUND])
        if counts[region] == 0 or need == 0 or free == 0:
            continue
        take = min(need, free)
        distance = cv2.distanceTransform((grown != region).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE).ravel()
        candidates = np.flatnonzero(grown.ravel() == BACKGROUND)
        nearest = candidates[np.argsort(distance[candidates], kind="stable")[:take]]
        grown.ravel()[nearest] = region
        counts[region] += take
        counts[BACKGROUND] -= take
    flat = grown.ravel()
    order = np.concatenate([np.flatnonzero(flat == region) for region in LAYOUT_ORDER])
    bits = (np.uint8(1) << flat[order]).reshape(grid.blocks, grid.block_size)
    return FrameLayout(labels=flat, order=order, block_bits=np.bitwise_or.reduce(bits, axis=1))


def chunk_token_order(layouts: list[FrameLayout]) -> tuple[np.ndarray, np.ndarray]:
    """Gather and scatter indices of a chunk of frames.

    Returns:
        ``(order, restore)``, int64 ``[F · N]``: laid-out tokens are ``tokens[order]`` (tokens of frame ``f``
        stay in ``[f·N, (f+1)·N)``) and ``laid_out[restore]`` puts them back in row-major order.
    """
    n = layouts[0].order.size
    order = np.concatenate([layout.order + f * n for f, layout in enumerate(layouts)])
    restore = np.empty_like(order)
    restore[order] = np.arange(order.size, dtype=np.int64)
    return order, restore


# --------------------------------------------------------------------------------------------------
# Block mask
# --------------------------------------------------------------------------------------------------

def build_block_mask(chunk_bits: np.ndarray, past_bits: np.ndarray, past_allowed: np.ndarray,
                     reference_blocks: int, chunk_allowed: np.ndarray | None = None) -> np.ndarray:
    """The pooled block mask of one attention call.

    Queries are the chunk's laid-out frames; keys are laid out as ``[reference | chunk | past positions]``.

    Args:
        chunk_bits: uint8 ``[F, nb]`` block bits of the chunk's frames.
        past_bits: uint8 ``[P, nb]`` block bits of the frames bound at the past positions.
        past_allowed: bool ``[F, P]``: chunk frame ``f`` may attend to past position ``p`` (global mask; False
            for positions holding no frame).
        reference_blocks: blocks of the reference segment (all kept).
        chunk_allowed: bool ``[F, F]``, frames of the chunk that may attend to each other across frames
            (default: all; the diagonal is always dense).

    Returns:
        bool ``[F · nb, reference_blocks + (F + P) · nb]``.
    """
    chunk_bits = np.asarray(chunk_bits, dtype=np.uint8)
    past_bits = np.asarray(past_bits, dtype=np.uint8).reshape(-1, chunk_bits.shape[1])
    frames, nb = chunk_bits.shape
    if chunk_allowed is None:
        chunk_allowed = np.ones((frames, frames), dtype=bool)
    key_bits = np.concatenate([chunk_bits, past_bits])  # [G, nb]
    allowed = np.concatenate([chunk_allowed, np.asarray(past_allowed, dtype=bool).reshape(frames, -1)], axis=1)
    shared = (chunk_bits[:, :, None, None] & key_bits[None, None] & REGION_BITS) != 0  # [F, nb, G, nb]
    shared &= allowed[:, None, :, None]
    own = np.arange(frames)
    shared[own, :, own, :] = True
    mask = np.ones((frames * nb, reference_blocks + key_bits.shape[0] * nb), dtype=bool)
    mask[:, reference_blocks:] = shared.reshape(frames * nb, -1)
    return mask


def block_mask_to_padded_csr(mask: np.ndarray, row_ptr: np.ndarray, col_idx: np.ndarray) -> int:
    """Writes a ``[R, C]`` block mask in the op's CSR form into fixed-size buffers (batch 1).

    Args:
        mask: bool ``[R, C]``.
        row_ptr: int32 ``[1, R + 1]`` (filled).
        col_idx: int32 ``[1, capacity]`` with ``capacity >= R · C``; entries past the last row's end are
            padding (zero), which the op ignores.

    Returns:
        The number of kept blocks.
    """
    exact_row_ptr, exact_col_idx = block_mask_to_csr(mask[None])
    kept = exact_col_idx.shape[1]
    row_ptr[...] = exact_row_ptr
    col_idx[0, :kept] = exact_col_idx[0]
    col_idx[0, kept:] = 0
    return kept
