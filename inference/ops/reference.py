"""The float64 references of ``BlockSparseAttention`` and ``SplitHeadsNorm`` (numpy only), for tests and checks.

Same contract as the op: q ``[B, H, q_len, D]``, k and v ``[B, H, kv_len, D]``, the block mask in
CSR form (see :mod:`inference.ops.csr`), ``softmax(scale * q k^T)`` over the kept keys only, and
zeros for a query block with no kept key block. Dense and slow: one ``q_len x kv_len`` score matrix
per (batch, head).
"""

from __future__ import annotations

import numpy as np

from inference.ops.csr import block_mask_to_token_mask, csr_to_block_mask, num_blocks


def reference_block_sparse_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, row_ptr: np.ndarray,
                                     col_idx: np.ndarray, block_size: int,
                                     scale: float | None = None) -> np.ndarray:
    """Block-sparse attention in float64; returns ``[B, H, q_len, D]`` float64."""
    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    batch, heads, q_len, head_dim = q.shape
    kv_len = k.shape[2]
    if scale is None:
        scale = 1.0 / np.sqrt(head_dim)
    block_mask = csr_to_block_mask(row_ptr, col_idx, num_blocks(kv_len, block_size))
    token_mask = block_mask_to_token_mask(block_mask, q_len, kv_len, block_size)
    per_head = token_mask.ndim == 4
    out = np.zeros((batch, heads, q_len, head_dim), dtype=np.float64)
    for b in range(batch):
        for h in range(heads):
            mask = token_mask[b, h] if per_head else token_mask[b]
            scores = np.where(mask, scale * (q[b, h] @ k[b, h].T), -np.inf)
            kept = mask.any(axis=1)
            shifted = np.exp(scores[kept] - scores[kept].max(axis=1, keepdims=True))
            out[b, h, kept] = (shifted / shifted.sum(axis=1, keepdims=True)) @ v[b, h]
    return out


def reference_split_heads_norm(qkv: np.ndarray, q_weight: np.ndarray, k_weight: np.ndarray, heads: int,
                               epsilon: float = 1e-6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``SplitHeadsNorm`` in float64: qkv ``[B, N, 3 · heads · D]`` → q, k, v ``[B, heads, N, D]``, with q and k
    divided by their root mean square over D (plus ``epsilon``) and scaled by their weights."""
    qkv = np.asarray(qkv, dtype=np.float64)
    batch, tokens, width = qkv.shape
    parts = qkv.reshape(batch, tokens, 3, heads, width // (3 * heads)).transpose(2, 0, 3, 1, 4)
    q, k, v = parts

    def rms_norm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
        return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + epsilon) * np.asarray(weight, dtype=np.float64)

    return rms_norm(q, q_weight), rms_norm(k, k_weight), v.copy()
