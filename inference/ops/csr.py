"""Block masks in the CSR form that ``BlockSparseAttention`` reads.

A block mask says, for each query block (``block_size`` consecutive queries), which key blocks it
attends to. Dense form: a boolean array ``[B, q_blocks, kv_blocks]`` (one mask for all heads) or
``[B, H, q_blocks, kv_blocks]`` (one per head). CSR form, as the op takes it:

- ``row_ptr`` int32 ``[B, q_blocks + 1]`` (or ``[B, H, q_blocks + 1]``): the kept key blocks of query
  block ``r`` are ``col_idx[..., row_ptr[..., r]:row_ptr[..., r + 1]]``; ``row_ptr[..., 0] == 0``.
- ``col_idx`` int32 ``[B, nnz]`` (or ``[B, H, nnz]``): key-block indices, strictly increasing within
  a row. ``nnz`` is the largest count over the batch; entries past ``row_ptr[..., -1]`` are padding.

``q_blocks = ceil(q_len / block_size)``, ``kv_blocks = ceil(kv_len / block_size)``: the last block
of a sequence may be partial. A query block with no kept key block gets zeros.
"""

from __future__ import annotations

import numpy as np


def num_blocks(length: int, block_size: int) -> int:
    """Blocks needed to cover ``length`` tokens (the last one may be partial)."""
    return -(-length // block_size)


def block_mask_to_csr(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense boolean block mask ``[B, (H,) q_blocks, kv_blocks]`` → ``(row_ptr, col_idx)``, int32."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim not in (3, 4):
        raise ValueError(f"a block mask has shape [B, q_blocks, kv_blocks] or [B, H, q_blocks, kv_blocks], "
                         f"got {list(mask.shape)}")
    lead, (q_blocks, _) = mask.shape[:-2], mask.shape[-2:]
    flat = mask.reshape(int(np.prod(lead)), *mask.shape[-2:])
    row_ptr = np.zeros((flat.shape[0], q_blocks + 1), dtype=np.int32)
    np.cumsum(flat.sum(axis=2), axis=1, out=row_ptr[:, 1:])
    nnz = int(row_ptr[:, -1].max(initial=0))
    col_idx = np.zeros((flat.shape[0], nnz), dtype=np.int32)
    for s, slice_mask in enumerate(flat):
        cols = np.nonzero(slice_mask)[1]  # row-major order: by query block, then increasing key block
        col_idx[s, : cols.size] = cols
    return row_ptr.reshape(*lead, q_blocks + 1), col_idx.reshape(*lead, nnz)


def validate_csr(row_ptr: np.ndarray, col_idx: np.ndarray, kv_blocks: int) -> None:
    """Raises ``ValueError`` naming the first entry that breaks the CSR rules the op checks."""
    row_ptr = np.asarray(row_ptr)
    col_idx = np.asarray(col_idx)
    if row_ptr.ndim not in (2, 3) or col_idx.shape[:-1] != row_ptr.shape[:-1]:
        raise ValueError(f"row_ptr {list(row_ptr.shape)} and col_idx {list(col_idx.shape)} must be "
                         f"[B, q_blocks + 1] and [B, nnz] (or [B, H, q_blocks + 1] and [B, H, nnz])")
    for dtype_name, array in (("row_ptr", row_ptr), ("col_idx", col_idx)):
        if array.dtype != np.int32:
            raise ValueError(f"{dtype_name} must be int32, got {array.dtype}")
    nnz = col_idx.shape[-1]
    rows = row_ptr.reshape(-1, row_ptr.shape[-1]).astype(np.int64)
    cols = col_idx.reshape(rows.shape[0], nnz).astype(np.int64)
    lead = row_ptr.shape[:-1]
    for s in range(rows.shape[0]):
        where = ", ".join(str(i) for i in np.unravel_index(s, lead))
        rp, ci = rows[s], cols[s]
        if rp[0] != 0:
            raise ValueError(f"row_ptr[{where}, 0] is {rp[0]}, but a row-pointer array starts at 0")
        bad = np.nonzero((rp < 0) | (rp > nnz))[0]
        if bad.size:
            r = bad[0]
            raise ValueError(f"row_ptr[{where}, {r}] = {rp[r]} is outside [0, {nnz}], the length of a col_idx row")
        bad = np.nonzero(np.diff(rp) < 0)[0]
        if bad.size:
            r = bad[0] + 1
            raise ValueError(f"row_ptr[{where}, {r}] = {rp[r]} is smaller than the row pointer before it")
        used = ci[: rp[-1]]
        bad = np.nonzero((used < 0) | (used >= kv_blocks))[0]
        if bad.size:
            j = bad[0]
            raise ValueError(f"col_idx[{where}, {j}] = {used[j]} is not a key block (there are {kv_blocks})")
        same_row = np.repeat(np.arange(rp.size - 1), np.diff(rp))
        bad = np.nonzero((np.diff(used) <= 0) & (np.diff(same_row) == 0))[0]
        if bad.size:
            j = bad[0] + 1
            raise ValueError(f"col_idx[{where}, {j}] = {used[j]} is not greater than the key block before it; "
                             f"the key blocks of a query block must be strictly increasing")


def csr_to_block_mask(row_ptr: np.ndarray, col_idx: np.ndarray, kv_blocks: int) -> np.ndarray:
    """``(row_ptr, col_idx)`` → dense boolean block mask ``[B, (H,) q_blocks, kv_blocks]``; validates first."""
    validate_csr(row_ptr, col_idx, kv_blocks)
    lead, q_blocks = row_ptr.shape[:-1], row_ptr.shape[-1] - 1
    rows = np.asarray(row_ptr).reshape(-1, q_blocks + 1)
    cols = np.asarray(col_idx).reshape(rows.shape[0], np.shape(col_idx)[-1])
    mask = np.zeros((rows.shape[0], q_blocks, kv_blocks), dtype=bool)
    for s in range(rows.shape[0]):
        row_of_entry = np.repeat(np.arange(q_blocks), np.diff(rows[s]))
        mask[s, row_of_entry, cols[s, : rows[s, -1]]] = True
    return mask.reshape(*lead, q_blocks, kv_blocks)


def block_mask_to_token_mask(block_mask: np.ndarray, q_len: int, kv_len: int, block_size: int) -> np.ndarray:
    """Dense block mask → token mask ``[B, (H,) q_len, kv_len]`` (True: the query attends to the key)."""
    expanded = np.repeat(np.repeat(np.asarray(block_mask, dtype=bool), block_size, axis=-2), block_size, axis=-1)
    return expanded[..., :q_len, :kv_len]
