"""The student as one module (autoencoder + transformer) and its streaming loop in torch.

:class:`TorchStream` renders keypoint chunks exactly as the ONNX Runtime engine does
(``inference/render/student/engine.py``): the same planner (frame selection, token layout, block
mask, cache slots), the same schedule and noise, the same cache refresh at the clean time. It is the
reference the exported graphs are checked against, and the loop a causal student is trained in.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from inference.render.pose_map import draw_pose_map
from inference.render.student.planner import ChunkPlan, StreamPlanner
from inference.render.student.sampling import CLEAN_TIME, chunk_noise, schedule
from training.models.attention import DenseAttention, SparseAttention
from training.models.autoencoder import Autoencoder, rgb_from_uint8, rgb_to_uint8
from training.models.config import StudentConfig
from training.models.transformer import KeyValue, ReferenceEncoding, VideoTransformer


class Student(nn.Module):
    """Autoencoder and latent video transformer of one configuration."""

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.config = config
        self.autoencoder = Autoencoder(config)
        self.transformer = VideoTransformer(config)


def planner_for(config: StudentConfig, *, sparse: bool) -> StreamPlanner:
    """The stream planner of a configuration (sparse: top-K positions; dense: the whole cache)."""
    return StreamPlanner(grid=config.grid, reference_tokens=config.tokens_per_frame, chunk_size=config.chunk_frames,
                         cache_frames=config.cache_frames, top_k=config.top_k, keep_recent=config.keep_recent,
                         positions=config.top_k if sparse else config.cache_frames, sparse=sparse)


def csr_tensors(block_mask: np.ndarray, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Dense block mask ``[R, C]`` → the padded CSR the student graph takes (``[1, R + 1]``, ``[1, R · C]``)."""
    from inference.render.student.masks import block_mask_to_padded_csr

    row_ptr = np.zeros((1, block_mask.shape[0] + 1), dtype=np.int32)
    col_idx = np.zeros((1, block_mask.size), dtype=np.int32)
    block_mask_to_padded_csr(block_mask, row_ptr, col_idx)
    return torch.from_numpy(row_ptr).to(device), torch.from_numpy(col_idx).to(device)


class TorchStream:
    """Keypoint chunks → RGB frames with a torch :class:`Student` (the ORT engine's reference)."""

    def __init__(self, student: Student, *, sparse: bool = True, seed: int = 0) -> None:
        self.student = student
        self.config = student.config
        self.sparse = sparse
        self.planner = planner_for(self.config, sparse=sparse)
        self.rng = np.random.default_rng(seed)
        self.slots: dict[int, list[KeyValue]] = {}
        self.reference: ReferenceEncoding | None = None
        self.next_index = 0
        self.plans: list[ChunkPlan] = []

    @torch.no_grad()
    def set_reference(self, portrait: np.ndarray) -> None:
        """uint8 ``[H, W, 3]`` at the configured size."""
        image = torch.from_numpy(np.ascontiguousarray(portrait))[None]
        latent = self.student.autoencoder.encode(rgb_from_uint8(image))
        self.reference = self.student.transformer.encode_reference(latent)

    @torch.no_grad()
    def render(self, keypoints: np.ndarray) -> np.ndarray:
        """One chunk: float ``[F, 134, 3]`` → uint8 ``[F, H, W, 3]``."""
        assert self.reference is not None, "set_reference first"
        config = self.config
        plan = self.planner.plan(keypoints, self.next_index)
        self.plans.append(plan)
        pose = torch.from_numpy(np.stack([draw_pose_map(k, (config.size, config.size), style=config.pose_style)
                                           for k in keypoints]))
        depth = config.depth
        past = [[self.slots[s][layer] for s in plan.position_slots if s is not None] for layer in range(depth)]
        if self.sparse:
            row_ptr, col_idx = csr_tensors(plan.block_mask)
            attention = SparseAttention(row_ptr, col_idx, config.block_size)
        else:
            attention = DenseAttention(torch.tensor([plan.key_length], dtype=torch.int32))
        order, restore = torch.from_numpy(plan.order), torch.from_numpy(plan.restore)
        noise = chunk_noise(self.rng, len(config.timesteps), (config.chunk_frames, config.latent_channels,
                                                              config.latent_size, config.latent_size))
        latent = torch.from_numpy(noise[0])
        transformer = self.student.transformer
        x0 = latent
        for step, (t, (a, b, c)) in enumerate(schedule(config.timesteps, config.sampler)):
            timestep = torch.full((config.chunk_frames,), t)
            x0, _ = transformer(latent, timestep, pose, self.reference, past, order, restore, attention)
            update = torch.from_numpy(noise[step + 1]) if step + 1 < len(noise) else torch.zeros_like(latent)
            latent = float(a) * x0 + float(b) * latent + float(c) * update
        frames = rgb_to_uint8(self.student.autoencoder.decode(x0)).numpy()
        clean = torch.full((config.chunk_frames,), CLEAN_TIME)
        _, present = transformer(x0, clean, pose, self.reference, past, order, restore, attention)
        tokens = config.tokens_per_frame
        for f, slot in enumerate(plan.destination_slots):
            self.slots[slot] = [(k[:, :, f * tokens:(f + 1) * tokens], v[:, :, f * tokens:(f + 1) * tokens])
                                for k, v in present]
        for slot in self.planner.commit(plan):
            self.slots.pop(slot, None)
        self.next_index += config.chunk_frames
        return frames
