"""The latent video transformer of the student (causal, chunked, with a key/value cache, :meth:`forward`)
and of the teacher (the same network over whole clips, bidirectionally, :meth:`denoise_clips`).

Tokens: each frame's latent in 2×2 patches, plus the pose encoder's tokens, plus fixed 2-D sin-cos
positions and a learned segment embedding (plus, with ``aligned_reference``, the reference portrait's own
patch embedding at the same place; with ``warped_reference``, that of the reference warped to the frame's
keypoints; plus, with ``frame_positions``, a learned projection of the sin-cos
embedding of the frame's index in its chunk or clip, so attention can tell one frame's tokens from another's).
The reference portrait's tokens are processed once, at the clean time, attending only to themselves;
every layer's keys and values of them are kept as a prefix of every attention call
(:meth:`VideoTransformer.encode_reference`, a :class:`ReferenceEncoding`), with an optional pooled reference
embedding added to the timestep conditioning.

Blocks: pre-LayerNorm (no affine) with adaLN-single modulation (one timestep MLP gives six modulation
vectors, each block adds a learned 6×width table; gates start at zero), QK-RMSNorm, no biases on the
qkv, output and second MLP projections (ONNX Runtime runs bias-free linears faster), GELU(tanh) MLP.

Attention in a chunk call: queries are the chunk's tokens, laid out region by region per frame
(``token_order``, see :mod:`inference.render.student.masks`); keys and values are
``[reference | chunk | past positions]``. The attention kind (:mod:`training.models.attention`)
decides what is attended: the input-aware block mask, or everything (dense).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import nn

from training.models.attention import DenseAttention, FullAttention
from training.models.config import StudentConfig
from training.models.pose_encoder import PoseEncoder
from training.split_heads import split_heads_norm

KeyValue = tuple[torch.Tensor, torch.Tensor]  # each [1, heads, length, head_dim]
Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
TIME_FREQUENCIES = 256
#: Sin-cos features of a frame's index in its chunk or clip (angular frequencies 1 down to 64^(-31/32) a frame).
FRAME_FREQUENCIES = 64
_DENSE = DenseAttention()
_FULL = FullAttention()


class ReferenceEncoding(NamedTuple):
    """What a chunk or a clip takes from its reference portrait (:meth:`VideoTransformer.encode_reference`).

    Attributes:
        embedding: pooled embeddings ``[R, width]`` (``pooled_reference``), else None.
        kv: every layer's keys and values of the reference tokens, ``[R, heads, N, head_dim]`` each.
        tokens: the aligned reference ``[R, N, width]`` added to every frame's tokens (``aligned_reference``),
            else None.
    """

    embedding: torch.Tensor | None
    kv: list[KeyValue]
    tokens: torch.Tensor | None


def sincos_positions(rows: int, cols: int, width: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding, ``[rows · cols, width]`` (row-major)."""
    quarter = width // 4
    frequencies = 1.0 / (10000.0 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    y, x = torch.meshgrid(torch.arange(rows, dtype=torch.float64), torch.arange(cols, dtype=torch.float64),
                          indexing="ij")
    parts = []
    for coordinate in (y.reshape(-1), x.reshape(-1)):
        angles = coordinate[:, None] * frequencies[None]
        parts += [torch.sin(angles), torch.cos(angles)]
    table = torch.cat(parts, dim=1)
    return torch.nn.functional.pad(table, (0, width - table.shape[1])).float()


def frame_index_features(count: int, dim: int = FRAME_FREQUENCIES) -> torch.Tensor:
    """Sin-cos features of the frame indices ``0 .. count - 1``, float32 ``[count, dim]``."""
    half = dim // 2
    frequencies = torch.exp(-math.log(64.0) * torch.arange(half, dtype=torch.float32) / half)
    angles = torch.arange(count, dtype=torch.float32)[:, None] * frequencies[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


def timestep_embedding(t: torch.Tensor, dim: int = TIME_FREQUENCIES) -> torch.Tensor:
    """Sinusoidal embedding of times in ``[0, 1]`` (scaled to 0..1000), float32 ``[len(t), dim]``."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * 1000.0 * frequencies[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


class Block(nn.Module):
    """One transformer block, split around its attention so the caller assembles the keys."""

    def __init__(self, width: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        head_dim = width // heads
        hidden = int(width * mlp_ratio)
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.q_norm = nn.RMSNorm(head_dim, eps=1e-6)
        self.k_norm = nn.RMSNorm(head_dim, eps=1e-6)
        self.proj = nn.Linear(width, width, bias=False)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, width, bias=False)
        self.table = nn.Parameter(torch.zeros(6, width))

    def modulation(self, condition: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``[F, 6, width]`` global modulation → six ``[F, 1, width]`` (shift, scale, gate; ×2)."""
        return tuple(m[:, None] for m in (condition + self.table[None]).unbind(1))

    def attention_inputs(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                         sequences: int = 1) -> tuple[torch.Tensor, ...]:
        """Tokens ``[F, N, width]`` → q, k, v ``[S, heads, F · N / S, head_dim]`` (q and k RMS-normalised).

        ``sequences`` (S) splits the frames into that many equal runs of consecutive frames, each its own
        attention sequence: 1 for the student's chunk, the number of clips for a batch of teacher clips.
        """
        frames, tokens, width = x.shape
        h = self.norm1(x) * (1 + scale) + shift
        qkv = self.qkv(h).reshape(sequences, -1, 3 * width)
        return split_heads_norm(qkv, self.q_norm.weight, self.k_norm.weight, self.heads, self.q_norm.eps)

    def finish(self, x: torch.Tensor, attended: torch.Tensor, gate: torch.Tensor, shift: torch.Tensor,
               scale: torch.Tensor, mlp_gate: torch.Tensor) -> torch.Tensor:
        """Output projection, residual, modulated MLP, residual (``attended``: ``[S, heads, F · N / S, head_dim]``)."""
        frames, tokens, width = x.shape
        attended = attended.transpose(1, 2).reshape(frames, tokens, width)
        x = x + gate * self.proj(attended)
        h = self.norm2(x) * (1 + scale) + shift
        return x + mlp_gate * self.fc2(self.act(self.fc1(h)))


class VideoTransformer(nn.Module):
    """Pose- and reference-conditioned latent video transformer (x-prediction)."""

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.config = config
        width, patch, channels = config.width, config.patch, config.latent_channels
        grid = config.grid
        self.latent_embed = nn.Linear(channels * patch * patch, width)
        self.reference_embed = nn.Linear(channels * patch * patch, width)
        self.pose_encoder = PoseEncoder(config.pose_channels, width, patch)
        self.register_buffer("positions", sincos_positions(grid.rows, grid.cols, width), persistent=False)
        self.frame_segment = nn.Parameter(torch.zeros(width))
        self.reference_segment = nn.Parameter(torch.zeros(width))
        self.time_embed = nn.Sequential(nn.Linear(TIME_FREQUENCIES, width), nn.SiLU(), nn.Linear(width, width))
        self.time_block = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        self.reference_pool = nn.Linear(width, width) if config.pooled_reference else None
        self.reference_align = nn.Linear(channels * patch * patch, width) if config.aligned_reference else None
        self.reference_warp = nn.Linear(channels * patch * patch, width) if config.warped_reference else None
        self.frame_embed = nn.Linear(FRAME_FREQUENCIES, width, bias=False) if config.frame_positions else None
        self.blocks = nn.ModuleList(Block(width, config.heads, config.mlp_ratio) for _ in range(config.depth))
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.final_table = nn.Parameter(torch.zeros(2, width))
        self.final_linear = nn.Linear(width, channels * patch * patch)
        for zero in (self.time_block[1], self.final_linear, self.reference_pool, self.reference_align,
                     self.reference_warp):
            if zero is not None:
                nn.init.zeros_(zero.weight)
                nn.init.zeros_(zero.bias)

    # -- tokens ---------------------------------------------------------------------------------------

    def patchify(self, latent: torch.Tensor) -> torch.Tensor:
        """``[F, C, h, w]`` → ``[F, N, C · p · p]`` (row-major tokens)."""
        frames, channels, height, width = latent.shape
        p = self.config.patch
        patches = latent.reshape(frames, channels, height // p, p, width // p, p)
        return patches.permute(0, 2, 4, 1, 3, 5).reshape(frames, (height // p) * (width // p), channels * p * p)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[F, N, C · p · p]`` → ``[F, C, h, w]``."""
        frames = tokens.shape[0]
        grid, p, channels = self.config.grid, self.config.patch, self.config.latent_channels
        patches = tokens.reshape(frames, grid.rows, grid.cols, channels, p, p)
        return patches.permute(0, 3, 1, 4, 2, 5).reshape(frames, channels, grid.rows * p, grid.cols * p)

    def condition(self, timestep: torch.Tensor, reference_embedding: torch.Tensor | None) -> torch.Tensor:
        """Per-frame conditioning vector ``[F, width]`` from the times ``[F]`` (and the pooled reference)."""
        dtype = self.latent_embed.weight.dtype
        condition = self.time_embed(timestep_embedding(timestep).to(dtype))
        if self.reference_pool is not None and reference_embedding is not None:
            condition = condition + reference_embedding
        return condition

    def _modulations(self, condition: torch.Tensor) -> torch.Tensor:
        return self.time_block(condition).reshape(condition.shape[0], 6, self.config.width)

    # -- the reference --------------------------------------------------------------------------------

    def encode_reference(self, latent: torch.Tensor, attention: Attention = _DENSE) -> ReferenceEncoding:
        """Reference portraits' latents ``[R, C, h, w]`` → their :class:`ReferenceEncoding`: the pooled
        embeddings, every layer's keys and values at the clean time (each reference attends only to its own
        tokens; the student encodes one, R = 1; a batch of teacher clips one per clip) and the aligned tokens."""
        patches = self.patchify(latent)
        tokens = self.reference_embed(patches) + self.positions + self.reference_segment
        embedding = self.reference_pool(tokens.mean(dim=1)) if self.reference_pool is not None else None
        aligned = self.reference_align(patches) if self.reference_align is not None else None
        clean = torch.ones(1, dtype=torch.float32, device=latent.device)
        modulations = self._modulations(self.condition(clean, embedding))
        x, cache = tokens, []
        for index, block in enumerate(self.blocks):
            shift, scale, gate, mlp_shift, mlp_scale, mlp_gate = block.modulation(modulations)
            q, k, v = block.attention_inputs(x, shift, scale, sequences=latent.shape[0])
            cache.append((k, v))
            if index + 1 < len(self.blocks):
                x = block.finish(x, attention(q, k, v), gate, mlp_shift, mlp_scale, mlp_gate)
        return ReferenceEncoding(embedding, cache, aligned)

    # -- a chunk --------------------------------------------------------------------------------------

    def forward(self, latent: torch.Tensor, timestep: torch.Tensor, pose: torch.Tensor, reference: ReferenceEncoding,
                past_kv: Sequence[Sequence[KeyValue]], token_order: torch.Tensor, token_restore: torch.Tensor,
                attention: Attention) -> tuple[torch.Tensor, list[KeyValue]]:
        """Predict the clean latents of a chunk.

        Args:
            latent: noisy latents ``[F, C, h, w]``; timestep: their times ``[F]`` (0 noise .. 1 clean).
            pose: the frames' pose maps, uint8 ``[F, H, W, 3]``.
            reference: from :meth:`encode_reference`.
            past_kv: per layer, the keys and values of the past frames bound at each position
                (``[1, heads, N, head_dim]`` each; any number of positions, possibly none).
            token_order, token_restore: int64 ``[F · N]`` from
                :func:`inference.render.student.masks.chunk_token_order`.
            attention: :class:`~training.models.attention.SparseAttention` (its mask over the keys
                ``[reference | chunk | past]``) or :class:`~training.models.attention.DenseAttention`.

        Several streams' chunks at once (training): ``token_order`` and ``token_restore`` ``[B, F · N]``, the
        latents, times and pose maps of the B chunks one after the other (``B · F`` frames), the reference's
        tensors and every key/value tensor with B in their first axis, the attention's mask per
        stream. The chunks' keys and values then come back as ``[B, heads, F · N, head_dim]``.

        Returns:
            (predicted clean latents ``[F, C, h, w]``, per layer the chunk's keys and values
            ``[1, heads, F · N, head_dim]`` in laid-out order, for the cache).
        """
        if self.reference_warp is not None:
            raise ValueError("a network with warped_reference denoises whole clips only (the teacher); the streaming "
                             "student does not take a warped reference yet")
        frames = latent.shape[0]
        width = self.config.width
        streams = token_order.shape[0] if token_order.dim() == 2 else 1
        embedding, aligned = reference.embedding, reference.tokens
        if streams > 1 or token_order.dim() == 2:
            embedding = embedding.repeat_interleave(frames // streams, dim=0) if embedding is not None else None
            aligned = aligned.repeat_interleave(frames // streams, dim=0) if aligned is not None else None
        tokens = self.frame_tokens(latent, pose, aligned, frames // streams)
        if streams == 1 and token_order.dim() == 1:  # the exported graph: one stream, a plain gather
            x = tokens.reshape(-1, width)[token_order].reshape(frames, -1, width)
        else:
            x = _gather_rows(tokens.reshape(streams, -1, width), token_order).reshape(frames, -1, width)
        condition = self.condition(timestep, embedding)
        modulations = self._modulations(condition)
        present: list[KeyValue] = []
        for index, block in enumerate(self.blocks):
            shift, scale, gate, mlp_shift, mlp_scale, mlp_gate = block.modulation(modulations)
            q, k, v = block.attention_inputs(x, shift, scale, sequences=streams)
            present.append((k, v))
            past = past_kv[index] if past_kv else ()
            keys = torch.cat([reference.kv[index][0], k, *(p[0] for p in past)], dim=2)
            values = torch.cat([reference.kv[index][1], v, *(p[1] for p in past)], dim=2)
            x = block.finish(x, attention(q, keys, values), gate, mlp_shift, mlp_scale, mlp_gate)
        out = self.head(x, condition)
        if token_restore.dim() == 1:
            out = out.reshape(-1, out.shape[-1])[token_restore].reshape(frames, -1, out.shape[-1])
        else:
            out = _gather_rows(out.reshape(streams, -1, out.shape[-1]), token_restore).reshape(frames, -1, out.shape[-1])
        return self.unpatchify(out), present

    # -- whole clips, bidirectionally (the teacher) ----------------------------------------------------

    def denoise_clips(self, latent: torch.Tensor, timestep: torch.Tensor, pose: torch.Tensor, reference: torch.Tensor,
                      attention: Attention = _FULL, warped: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the clean latents of a batch of clips, every frame attending to every frame of its clip.

        The same network and parameters as :meth:`forward`, with the chunk grown to the whole clip, no
        cache and no token permutation: every token attends to its clip's reference tokens and to all
        the clip's frames, past and future.

        Args:
            latent: noisy latents ``[B, T, C, h, w]``.
            timestep: times ``[B, T]`` (0 noise .. 1 clean); one time per clip is ``t[:, None].expand(B, T)``.
            pose: pose maps, uint8 ``[B, T, H, W, 3]``.
            reference: the reference portraits' clean latents ``[B, C, h, w]``.
            attention: by default :class:`~training.models.attention.FullAttention` (unmasked; the flash
                kernel on a GPU).
            warped: with ``warped_reference`` (and only then), the latents of the reference warped to each
                frame's keypoints ``[B, T, C, h, w]``; zeros stand for "no pose" (guidance, pose dropout).

        Returns:
            predicted clean latents ``[B, T, C, h, w]``.

        Raises:
            ValueError: ``warped`` given to a network without ``warped_reference``, or missing with it.
        """
        if (warped is None) != (self.reference_warp is None):
            raise ValueError("the warped reference is an input exactly when the network has warped_reference "
                             f"(it has{'' if self.reference_warp is not None else ' not'})")
        clips, frames = latent.shape[:2]
        embedding, reference_kv, aligned = self.encode_reference(reference, attention)
        aligned = aligned.repeat_interleave(frames, dim=0) if aligned is not None else None
        if warped is not None:
            moved = self.reference_warp(self.patchify(warped.flatten(0, 1).to(latent.dtype)))
            aligned = moved if aligned is None else aligned + moved
        x = self.frame_tokens(latent.flatten(0, 1), pose.flatten(0, 1), aligned, frames)
        per_frame = embedding.repeat_interleave(frames, dim=0) if embedding is not None else None
        condition = self.condition(timestep.reshape(-1), per_frame)
        modulations = self._modulations(condition)
        for index, block in enumerate(self.blocks):
            shift, scale, gate, mlp_shift, mlp_scale, mlp_gate = block.modulation(modulations)
            q, k, v = block.attention_inputs(x, shift, scale, sequences=clips)
            keys = torch.cat([reference_kv[index][0], k], dim=2)
            values = torch.cat([reference_kv[index][1], v], dim=2)
            x = block.finish(x, attention(q, keys, values), gate, mlp_shift, mlp_scale, mlp_gate)
        return self.unpatchify(self.head(x, condition)).unflatten(0, (clips, frames))

    # -- shared pieces --------------------------------------------------------------------------------

    def frame_tokens(self, latent: torch.Tensor, pose: torch.Tensor, aligned: torch.Tensor | None,
                     sequence_frames: int) -> torch.Tensor:
        """Noisy latents ``[F, C, h, w]``, pose maps uint8 ``[F, H, W, 3]`` and the aligned reference ``[F or 1, N,
        width]`` (or None) → tokens ``[F, N, width]`` (row-major). The F frames are runs of ``sequence_frames``
        (chunks or clips), each frame numbered by its place in its run."""
        tokens = self.latent_embed(self.patchify(latent)) + self.pose_encoder(pose) + self.positions
        if aligned is not None:
            tokens = tokens + aligned
        if self.frame_embed is not None:
            features = frame_index_features(sequence_frames).to(device=latent.device, dtype=self.frame_embed.weight.dtype)
            places = self.frame_embed(features).repeat(latent.shape[0] // sequence_frames, 1)
            tokens = tokens + places[:, None]
        return tokens + self.frame_segment

    def head(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Final modulated norm and linear: tokens ``[F, N, width]`` → patches ``[F, N, C · p · p]``."""
        shift, scale = (condition[:, None] + self.final_table[None]).unbind(1)
        return self.final_linear(self.final_norm(x) * (1 + scale[:, None]) + shift[:, None])


def _gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b]]`` for ``x`` ``[B, L, D]`` and ``index`` int64 ``[B, L']``."""
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[2]))


def randomize_(module: nn.Module, seed: int) -> nn.Module:
    """Re-initialises every parameter with random values of a sensible scale (zero-initialised gates,
    tables and output layers included), so that every path contributes: for benchmarks and export
    checks of untrained models."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if name.endswith(("q_norm.weight", "k_norm.weight")):
                parameter.copy_(1.0 + 0.1 * noise)
            elif name.endswith("table"):
                parameter.copy_(0.5 * noise)
            elif parameter.dim() <= 1:
                parameter.copy_(0.2 * noise)
            else:
                parameter.copy_(noise / math.sqrt(parameter[0].numel()))
    return module
