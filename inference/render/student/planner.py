"""Host-side planning of a stream of chunks: which cached frames a chunk attends to, where they are
bound, its token layout and its block mask, and where its own keys and values will be cached.

The planner only does bookkeeping (numpy, no ONNX Runtime, no torch), so the runtime engine and the
torch reference stream in training plan identically. Memory: ``cache_frames + chunk_size`` *slots*
hold one frame's keys and values each; a chunk writes its frames into free slots (never into a slot
it reads), then the oldest frames beyond ``cache_frames`` are evicted: cost and memory stay flat
however long the stream.

Attention calls bind the cached frames at ``positions`` (the graph's past inputs): the top-K
selection for the sparse student (``positions = top_k``), every cached frame for the dense one
(``positions = cache_frames``; filled positions come first, so a 1-D key length masks the rest). A
slot keeps its position from one chunk to the next when it stays selected, so few are copied in anew.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from inference.render.student import masks
from inference.render.student.masks import TokenGrid


@dataclass(frozen=True)
class CachedFrame:
    """One frame whose keys and values sit in a slot."""

    index: int  # frame number in the stream
    slot: int
    xy: np.ndarray  # float64 [B, 2] upper-body points
    visible: np.ndarray  # bool [B]
    block_bits: np.ndarray  # uint8 [blocks per frame], of its laid-out tokens


@dataclass
class ChunkPlan:
    """Everything one chunk's attention calls need.

    Attributes:
        first_index: stream index of the chunk's first frame.
        layouts: per frame, its token layout.
        order, restore: int64 ``[F · N]`` gather / scatter indices (:func:`masks.chunk_token_order`).
        position_slots: per past position, the slot bound there (None: nothing; the engine binds zeros).
        block_mask: bool ``[F · nb, reference_blocks + (F + P) · nb]`` (sparse attention), else None.
        key_length: keys that hold data (dense attention): reference, chunk and filled positions.
        destination_slots: where the chunk's frames' keys and values go.
        selected_frames: stream indices of the cached frames bound at the positions.
        seconds: host time spent planning.
    """

    first_index: int
    layouts: list[masks.FrameLayout]
    order: np.ndarray
    restore: np.ndarray
    position_slots: list[int | None]
    block_mask: np.ndarray | None
    key_length: int
    destination_slots: list[int]
    selected_frames: list[int]
    xy: np.ndarray
    visible: np.ndarray
    seconds: float = 0.0


@dataclass
class StreamPlanner:
    """Plans chunk after chunk of one stream (see the module docstring).

    Attributes:
        grid: a frame's token grid and block size.
        reference_tokens: tokens of the reference segment (a multiple of the block size).
        chunk_size: frames a chunk (F); cache_frames: frames kept (M); top_k: frames attended (K);
        keep_recent: of those, always the newest.
        positions: past inputs of the graph (K for sparse, M for dense).
        sparse: plan block masks (True) or key lengths (False).
        aspect: frame width / height (for pose distances and regions).
    """

    grid: TokenGrid
    reference_tokens: int
    chunk_size: int
    cache_frames: int
    top_k: int
    keep_recent: int
    positions: int
    sparse: bool
    aspect: float = 1.0
    entries: list[CachedFrame] = field(default_factory=list)  # oldest first
    position_slots: list[int | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.reference_tokens % self.grid.block_size:
            raise ValueError(f"the reference's {self.reference_tokens} tokens are not whole blocks of "
                             f"{self.grid.block_size}")
        if not self.sparse and self.positions < self.cache_frames:
            raise ValueError("dense attention binds every cached frame: positions must be >= cache_frames")
        self.position_slots = [None] * self.positions

    @property
    def slots(self) -> int:
        """Physical slots needed: the cache plus one chunk being written."""
        return self.cache_frames + self.chunk_size

    def reset(self) -> None:
        """Forgets every cached frame (a new stream)."""
        self.entries.clear()
        self.position_slots = [None] * self.positions

    def plan(self, keypoints: np.ndarray, first_index: int) -> ChunkPlan:
        """Plans the chunk of ``keypoints`` (float ``[F, 134, 3]``, exactly ``chunk_size`` frames)."""
        start = time.perf_counter()
        keypoints = np.asarray(keypoints)
        if keypoints.shape[0] != self.chunk_size:
            raise ValueError(f"a chunk has {self.chunk_size} frames, got {keypoints.shape[0]}")
        xy, visible = masks.upper_body_points(keypoints, self.aspect)
        layouts = [masks.layout_frame(masks.rasterise_regions(k, self.grid, self.aspect), self.grid)
                   for k in keypoints]
        order, restore = masks.chunk_token_order(layouts)

        if self.sparse:
            chosen = self._select(xy, visible, first_index)
        else:
            chosen = [entry.slot for entry in self.entries]
        self._assign_positions(chosen)
        by_slot = {entry.slot: entry for entry in self.entries}
        bound = [by_slot[s] if s is not None else None for s in self.position_slots]

        block_mask = None
        if self.sparse:
            past_bits = np.zeros((self.positions, self.grid.blocks), dtype=np.uint8)
            past_allowed = np.zeros((self.chunk_size, self.positions), dtype=bool)
            for p, entry in enumerate(bound):
                if entry is not None:
                    past_bits[p] = entry.block_bits
                    past_allowed[:, p] = True
            chunk_bits = np.stack([layout.block_bits for layout in layouts])
            block_mask = masks.build_block_mask(chunk_bits, past_bits, past_allowed,
                                                self.reference_tokens // self.grid.block_size)
        filled = sum(entry is not None for entry in bound)
        key_length = self.reference_tokens + (self.chunk_size + filled) * self.grid.tokens
        used = {entry.slot for entry in self.entries}
        destination = [s for s in range(self.slots) if s not in used][: self.chunk_size]
        return ChunkPlan(first_index=first_index, layouts=layouts, order=order, restore=restore,
                         position_slots=list(self.position_slots), block_mask=block_mask, key_length=key_length,
                         destination_slots=destination,
                         selected_frames=[entry.index for entry in bound if entry is not None],
                         xy=xy, visible=visible, seconds=time.perf_counter() - start)

    def commit(self, plan: ChunkPlan) -> list[int]:
        """Records the chunk's frames as cached (their keys and values are now in the destination slots)
        and evicts the oldest beyond ``cache_frames``; returns the freed slots."""
        for f, slot in enumerate(plan.destination_slots):
            self.entries.append(CachedFrame(index=plan.first_index + f, slot=slot, xy=plan.xy[f],
                                            visible=plan.visible[f], block_bits=plan.layouts[f].block_bits))
        evicted = self.entries[: max(0, len(self.entries) - self.cache_frames)]
        del self.entries[: len(evicted)]
        freed = [entry.slot for entry in evicted]
        self.position_slots = [None if s in freed else s for s in self.position_slots]
        return freed

    def _select(self, xy: np.ndarray, visible: np.ndarray, first_index: int) -> list[int]:
        if not self.entries:
            return []
        past_xy = np.stack([entry.xy for entry in self.entries])
        past_visible = np.stack([entry.visible for entry in self.entries])
        distances = masks.procrustes_distances(xy, visible, past_xy, past_visible)
        ages = np.array([first_index - entry.index for entry in self.entries])
        picked = masks.select_past_frames(distances, ages, self.top_k, self.keep_recent)
        return [self.entries[i].slot for i in picked]

    def _assign_positions(self, chosen: list[int]) -> None:
        """Binds the chosen slots, keeping each at its previous position where possible; the lowest free
        positions are filled first, so the filled positions form a prefix while the cache grows."""
        keep = set(chosen)
        positions = [s if s in keep else None for s in self.position_slots]
        placed = {s for s in positions if s is not None}
        free = iter(p for p, s in enumerate(positions) if s is None)
        for slot in chosen:
            if slot not in placed:
                positions[next(free)] = slot
        self.position_slots = positions
