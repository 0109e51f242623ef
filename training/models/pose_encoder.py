"""Pose-map encoder (MimicMotion's PoseNet idea): a small conv stack from the DWPose-style pose map
(drawn by :func:`inference.render.pose_map.draw_pose_map`) down to the token grid, added to the tokens.

Three stride-2 stages bring the map to the latent size, a ``patch × patch`` stride-``patch`` convolution
to the token grid and the transformer width. That last layer starts at zero, so an untrained pose
path adds nothing.
"""

from __future__ import annotations

import torch
from torch import nn


class PoseEncoder(nn.Module):
    """uint8 pose maps ``[F, H, W, 3]`` → tokens ``[F, N, width]`` (row-major token order)."""

    def __init__(self, channels: tuple[int, int, int], width: int, patch: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.SiLU(),
                       nn.Conv2d(c_out, c_out, 3, padding=1), nn.SiLU()]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.to_tokens = nn.Conv2d(c_in, width, patch, stride=patch)
        nn.init.zeros_(self.to_tokens.weight)
        nn.init.zeros_(self.to_tokens.bias)

    def forward(self, pose: torch.Tensor) -> torch.Tensor:
        image = pose.permute(0, 3, 1, 2).to(self.to_tokens.weight.dtype) / 255.0
        tokens = self.to_tokens(self.features(image))  # [F, width, rows, cols]
        return tokens.flatten(2).transpose(1, 2)
