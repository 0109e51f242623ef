"""The teacher's input-aware sparse attention over whole clips (paper §4.2-4.4, bidirectional or causal).

The teacher denoises a clip of ``T`` frames at once (:meth:`VideoTransformer.denoise_clips`): every frame's
tokens attend to the clip's reference tokens and to the clip's frames. The masks here restrict that with
the same functions the runtime uses (:mod:`inference.render.student.masks`), so the fine-tuned teacher
and the streaming student see one definition of "similar frame" and "same region":

* ``dense``: everything (the teacher as trained);
* ``global``: a frame attends to its own tokens and, of the other frames, only to the ``top_k`` nearest in
  pose after rigid Procrustes alignment (:func:`~inference.render.student.masks.select_within_clip`; with
  ``causal``, only to earlier frames, the paper's "top-K past frames"), with every token of them;
* ``local``: the global selection and, across frames, only token pairs of the same body region
  (regions rasterised from the keypoints, laid out region by region so each fills whole blocks).

A clip's mask is a block mask over ``[reference | clip frames]`` keys, the layout of
:func:`~inference.render.student.masks.build_block_mask` with no past positions; :class:`ClipAttention`
applies a batch of them inside ``denoise_clips`` by permuting each clip's tokens into its region layout,
running :func:`training.sparse_attention.block_sparse_attention`, and permuting back. This is the same
computation as :meth:`VideoTransformer.forward` over the clip with the layout as ``token_order``, which is
how the ablation exports a sparse teacher to ONNX (``extra_positions``: empty past positions, never kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from inference.render.student import masks
from inference.render.student.masks import TokenGrid
from training import sparse_attention
from training.models.attention import FullAttention
from training.models.config import StudentConfig

MASKS = ("dense", "global", "local")
#: Block bits that make every block "one region": the global mask without the local restriction.
_ANY_REGION = np.uint8(1 << masks.FACE_REGION)


@dataclass(frozen=True)
class ClipMaskSpec:
    """Which mask, on which token grid.

    Attributes:
        grid: the frame's token grid and block size.
        reference_tokens: tokens of the reference segment (a whole number of blocks).
        mask: one of :data:`MASKS`.
        top_k: other frames each frame attends to (global selection).
        causal: attend only to earlier frames of the clip (and to the frame itself).
        aspect: frame width / height.
    """

    grid: TokenGrid
    reference_tokens: int
    mask: str = "local"
    top_k: int = 4
    causal: bool = False
    aspect: float = 1.0

    def __post_init__(self) -> None:
        if self.mask not in MASKS:
            raise ValueError(f"unknown attention mask {self.mask!r}; choose one of {', '.join(MASKS)}")
        if self.reference_tokens % self.grid.block_size:
            raise ValueError(f"the reference's {self.reference_tokens} tokens are not whole blocks of "
                             f"{self.grid.block_size}")

    @property
    def sparse(self) -> bool:
        return self.mask != "dense"


@dataclass(frozen=True)
class ClipMask:
    """One clip's mask.

    Attributes:
        order, restore: int64 ``[T · N]`` token layout (:func:`~inference.render.student.masks.chunk_token_order`;
            the identity for the global mask, whose blocks are whole frames anyway).
        block_mask: bool ``[T · nb, reference_blocks + (T + extra_positions) · nb]``.
        allowed: bool ``[T, T]``, the frames each frame attends to across frames (global selection).
    """

    order: np.ndarray
    restore: np.ndarray
    block_mask: np.ndarray
    allowed: np.ndarray


def frame_selection(keypoints: np.ndarray, top_k: int, *, causal: bool = False, aspect: float = 1.0) -> np.ndarray:
    """The global mask of a clip: bool ``[T, T]``, ``allowed[q, f]`` for the ``top_k`` frames nearest to ``q`` in
    pose (Procrustes distance of the upper-body keypoints; ties to the nearer frame in time). With ``causal``,
    only frames before ``q`` are candidates. The diagonal is False (a frame's own tokens are always dense).

    Args:
        keypoints: float ``[T, 134, 3]``.
    """
    xy, visible = masks.upper_body_points(keypoints, aspect)
    distances = masks.procrustes_distances(xy, visible, xy, visible)
    if not causal:
        return masks.select_within_clip(distances, top_k)
    frames = len(keypoints)
    allowed = np.zeros((frames, frames), dtype=bool)
    for q in range(1, frames):
        earlier = np.arange(q)
        ranked = earlier[np.lexsort((q - earlier, distances[q, earlier]))]
        allowed[q, ranked[:top_k]] = True
    return allowed


def clip_mask(keypoints: np.ndarray, spec: ClipMaskSpec, extra_positions: int = 0) -> ClipMask:
    """The sparse mask of one clip (``spec.mask`` "global" or "local").

    Args:
        keypoints: float ``[T, 134, 3]``, the clip's frames.
        spec: the mask and the grid.
        extra_positions: empty past positions appended to the keys (never attended; for exported graphs
            that carry them).
    """
    if not spec.sparse:
        raise ValueError("a dense clip has no block mask")
    grid = spec.grid
    frames = len(keypoints)
    allowed = frame_selection(keypoints, spec.top_k, causal=spec.causal, aspect=spec.aspect)
    if spec.mask == "local":
        layouts = [masks.layout_frame(masks.rasterise_regions(k, grid, spec.aspect), grid) for k in keypoints]
        order, restore = masks.chunk_token_order(layouts)
        bits = np.stack([layout.block_bits for layout in layouts])
    else:
        order = np.arange(frames * grid.tokens, dtype=np.int64)
        restore = order.copy()
        bits = np.full((frames, grid.blocks), _ANY_REGION, dtype=np.uint8)
    block_mask = masks.build_block_mask(bits, np.zeros((extra_positions, grid.blocks), dtype=np.uint8),
                                        np.zeros((frames, extra_positions), dtype=bool),
                                        spec.reference_tokens // grid.block_size, chunk_allowed=allowed)
    return ClipMask(order=order, restore=restore, block_mask=block_mask, allowed=allowed)


def padded_csr(block_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A block mask ``[R, C]`` in the op's CSR form padded to ``R · C`` entries: int32 ``[R + 1]``, ``[R · C]``
    (fixed sizes, so the masks of several clips stack)."""
    row_ptr = np.zeros((1, block_mask.shape[0] + 1), dtype=np.int32)
    col_idx = np.zeros((1, block_mask.size), dtype=np.int32)
    masks.block_mask_to_padded_csr(block_mask, row_ptr, col_idx)
    return row_ptr[0], col_idx[0]


def mask_arrays(keypoints: np.ndarray, spec: ClipMaskSpec) -> dict[str, np.ndarray]:
    """What :class:`ClipAttention` needs of one clip, as arrays that stack (computed in data-loader workers):
    ``token_order``, ``token_restore`` int64 ``[T · N]``, ``row_ptr`` int32 ``[T · nb + 1]``, ``col_idx`` int32."""
    mask = clip_mask(keypoints, spec)
    row_ptr, col_idx = padded_csr(mask.block_mask)
    return {"token_order": mask.order, "token_restore": mask.restore, "row_ptr": row_ptr, "col_idx": col_idx}


class ClipAttention:
    """A batch of clips' sparse masks, as the ``attention`` of :meth:`VideoTransformer.denoise_clips`.

    Called with q ``[B, H, T · N, D]`` and keys/values ``[B, H, R + T · N, D]`` (R reference tokens), row-major
    tokens: permutes each clip's queries and frame keys into its region layout, applies the block mask, and
    permutes the output back. The reference's own attention inside ``denoise_clips`` (as many keys as
    queries) is dense.

    Args:
        token_order, token_restore: int64 ``[B, T · N]``.
        row_ptr: int32 ``[B, T · nb + 1]``; col_idx: int32 ``[B, capacity]`` (:func:`padded_csr`).
        block_size: tokens per block.
        permute: False when every order is the identity (the global mask), to skip the gathers.
    """

    def __init__(self, token_order: torch.Tensor, token_restore: torch.Tensor, row_ptr: torch.Tensor,
                 col_idx: torch.Tensor, block_size: int, *, permute: bool = True) -> None:
        self.token_order = token_order
        self.token_restore = token_restore
        self.row_ptr = row_ptr
        self.col_idx = col_idx
        self.block_size = block_size
        self.permute = permute
        self._masks: dict[tuple[int, int], torch.Tensor] = {}

    @classmethod
    def from_arrays(cls, arrays: dict[str, torch.Tensor], spec: ClipMaskSpec, device: torch.device | str) -> ClipAttention:
        """From a batch of :func:`mask_arrays` (collated, ``[B, ...]``)."""
        return cls(*(arrays[k].to(device, non_blocking=True) for k in ("token_order", "token_restore", "row_ptr",
                                                                      "col_idx")),
                   spec.grid.block_size, permute=spec.mask == "local")

    @classmethod
    def for_clips(cls, keypoints: np.ndarray, spec: ClipMaskSpec, device: torch.device | str = "cpu") -> ClipAttention:
        """Masks of clips ``[B, T, 134, 3]`` computed here."""
        per_clip = [mask_arrays(k, spec) for k in keypoints]
        arrays = {key: torch.from_numpy(np.stack([a[key] for a in per_clip])) for key in per_clip[0]}
        return cls.from_arrays(arrays, spec, device)

    def select(self, clips: torch.Tensor | slice) -> ClipAttention:
        """The masks of some of the clips (``clips`` indexes the batch)."""
        return ClipAttention(self.token_order[clips], self.token_restore[clips], self.row_ptr[clips],
                             self.col_idx[clips], self.block_size, permute=self.permute)

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if k.shape[2] == q.shape[2]:  # the reference attending to itself
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)
        if self.permute:
            reference = k.shape[2] - q.shape[2]
            q = _gather_tokens(q, self.token_order)
            key_order = torch.cat([torch.arange(reference, device=k.device).expand(len(self.token_order), -1),
                                   self.token_order + reference], dim=1)
            k, v = _gather_tokens(k, key_order), _gather_tokens(v, key_order)
        lengths = (q.shape[2], k.shape[2])
        mask = self._masks.get(lengths)
        if mask is None:  # once per shape: every layer and step of these clips reuses it
            mask = sparse_attention.token_mask(self.row_ptr, self.col_idx, *lengths, self.block_size)
            self._masks[lengths] = mask
        out = sparse_attention.masked_attention(q, k, v, mask)
        return _gather_tokens(out, self.token_restore) if self.permute else out


def _gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, :, index[b]]`` for ``x`` ``[B, H, L, D]`` and ``index`` ``[B, L']``."""
    expanded = index[:, None, :, None].expand(-1, x.shape[1], -1, x.shape[3])
    return torch.gather(x, 2, expanded)


def clip_attention(spec: ClipMaskSpec, keypoints: np.ndarray | None = None,
                   arrays: dict[str, torch.Tensor] | None = None,
                   device: torch.device | str = "cpu") -> ClipAttention | FullAttention:
    """The attention of a batch of clips: :class:`~training.models.attention.FullAttention` for the dense mask,
    else a :class:`ClipAttention` from precomputed ``arrays`` or from the clips' ``keypoints`` ``[B, T, 134, 3]``."""
    if not spec.sparse:
        return FullAttention()
    if arrays is not None:
        return ClipAttention.from_arrays(arrays, spec, device)
    if keypoints is None:
        raise ValueError("a sparse clip attention needs the clips' keypoints or their mask arrays")
    return ClipAttention.for_clips(keypoints, spec, device)


def spec_for(config: StudentConfig, mask: str, *, causal: bool = False) -> ClipMaskSpec:
    """The mask spec of a network configuration: its grid, one frame of reference tokens, its ``top_k``."""
    return ClipMaskSpec(grid=config.grid, reference_tokens=config.tokens_per_frame, mask=mask, top_k=config.top_k,
                        causal=causal)
