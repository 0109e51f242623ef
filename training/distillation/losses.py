"""The distillation losses: DMD's distribution-matching gradient and the input-aware region loss.

Flow matching (the teacher's, the sparse fine-tune's and the fake score's denoising loss) is
:func:`training.models.teacher.velocity_loss` on :func:`~training.models.teacher.add_noise` at
:func:`~training.models.teacher.sample_times`.

**DMD** (paper Eq. 4; DMD/DMD2, CausVid): the student's sample ``x̂`` is noised at a random time, the real
score (the teacher) and the fake score (a critic trained on the student's samples) each predict the clean
latent, and ``x̂`` is pushed along ``(μ_fake − μ_real) / mean|x̂ − μ_real|`` (DMD's normaliser):
:func:`dmd_loss`.

**Region loss** (paper Eq. 5): per region ``r`` of the mouth, the face and each hand, with the region's
mask ``m_r`` from each frame's keypoints (:func:`training.data.keypoint_regions.region_masks_from_keypoints`),
a loss between ``m_r ⊙ x`` and ``m_r ⊙ x̂`` on a crop around the region, weighted by ``λ_r``. The paper's
``L_r`` are ArcFace (face) and LPIPS (other regions), whose pretrained weights are not available here;
:class:`RegionLoss` uses what is: pixel L1 inside the mask, ``1 − SSIM`` of the masked crops, and a
perceptual distance on the features of our own autoencoder's encoder (LPIPS-style: channel-normalised
activations after each of its four stages, squared differences averaged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.metrics import ssim
from training.models.autoencoder import Encoder, ResidualBlock
from training.synthetic.regions import REGION_BITS

#: The regions the loss looks at, with the mask bits of each (a frame's masks are bit fields).
LOSS_REGIONS: dict[str, int] = {
    "mouth": REGION_BITS["mouth"],
    "face": REGION_BITS["face"],
    "left_hand": REGION_BITS["left_hand"],
    "right_hand": REGION_BITS["right_hand"],
}
#: Which λ weighs each loss region.
WEIGHT_OF_REGION = {"mouth": "mouth", "face": "face", "left_hand": "hands", "right_hand": "hands"}


def dmd_loss(generated: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """DMD's generator loss for one sample (a clip).

    Args:
        generated: the student's clean latents ``x̂`` (differentiable), any shape.
        real, fake: the real and fake scores' clean-latent predictions at the noised ``x̂`` (no gradients).

    Returns:
        ``(loss, stats)``: ``0.5 · mean‖x̂ − sg(x̂ − g)‖²`` whose gradient with respect to ``x̂`` is
        ``g / numel`` with ``g = (fake − real) / mean|x̂ − real|``; stats: the normaliser and ``|g|``.
    """
    x = generated.float()
    real, fake = real.detach().float(), fake.detach().float()
    normaliser = (x.detach() - real).abs().mean().clamp_min(1e-6)
    gradient = (fake - real) / normaliser
    loss = 0.5 * F.mse_loss(x, (x - gradient).detach())
    return loss, {"dmd_normaliser": float(normaliser), "dmd_gradient": float(gradient.abs().mean())}


@dataclass(frozen=True)
class RegionWeights:
    """The λ of the region loss.

    Attributes:
        mouth, face, hands: λ_r of each region (both hands share ``hands``).
        ssim: weight of ``1 − SSIM`` in each region's loss (pixel L1 has weight 1).
        features: weight of the encoder-feature distance in each region's loss.
    """

    mouth: float = 1.0
    face: float = 0.5
    hands: float = 1.0
    ssim: float = 0.2
    features: float = 0.5


def region_boxes(masks: np.ndarray, margin: float = 0.25, minimum: int = 24) -> np.ndarray:
    """Square crop boxes around each loss region of each frame.

    Args:
        masks: uint8 bit fields ``[N, H, W]``.
        margin: the box is the region's bounding square grown by this fraction (and 4 pixels).
        minimum: smallest box side in pixels (SSIM's window is 11).

    Returns:
        int64 ``[N, len(LOSS_REGIONS), 4]``: ``(top, left, side, present)``, inside the frame; ``present`` is 0
        for a region absent from the frame.
    """
    masks = np.asarray(masks)
    count, height, width = masks.shape
    boxes = np.zeros((count, len(LOSS_REGIONS), 4), dtype=np.int64)
    for n in range(count):
        for r, bits in enumerate(LOSS_REGIONS.values()):
            rows, cols = np.nonzero(masks[n] & bits)
            if rows.size == 0:
                continue
            side = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
            side = int(min(min(height, width), max(minimum, round(side * (1.0 + margin)) + 4)))
            top = int(np.clip((rows.min() + rows.max() + 1) // 2 - side // 2, 0, height - side))
            left = int(np.clip((cols.min() + cols.max() + 1) // 2 - side // 2, 0, width - side))
            boxes[n, r] = (top, left, side, 1)
    return boxes


class EncoderFeatures(nn.Module):
    """The activations of a (frozen) autoencoder encoder after each residual stage, channel-normalised."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(False)

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        """RGB ``[N, 3, H, W]`` in ``[-1, 1]`` → one ``[N, C_s, H_s, W_s]`` unit-length-per-position map per stage."""
        features, x = [], rgb
        for layer in self.encoder.net:
            x = layer(x)
            if isinstance(layer, ResidualBlock):
                features.append(x / (x.norm(dim=1, keepdim=True) + 1e-6))
        return features


class RegionLoss(nn.Module):
    """The input-aware region loss (see the module docstring).

    Args:
        encoder: the autoencoder's encoder (frozen here) whose features give the perceptual term.
        weights: the λ.
        crop: side in pixels every region crop is resized to (so a frame's regions batch together).
    """

    def __init__(self, encoder: Encoder, weights: RegionWeights = RegionWeights(), crop: int = 64) -> None:
        super().__init__()
        self.features = EncoderFeatures(encoder)
        self.weights = weights
        self.crop = crop

    def forward(self, generated: torch.Tensor, target: torch.Tensor, masks: torch.Tensor,
                boxes: np.ndarray | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Region loss of generated frames against the ground truth.

        Args:
            generated: ``[N, 3, H, W]`` in ``[-1, 1]`` (differentiable); target: the same, ground truth.
            masks: uint8 bit fields ``[N, H, W]`` (from the keypoints) on the frames' device.
            boxes: :func:`region_boxes` of ``masks`` (computed here when None).

        Returns:
            ``(loss, parts)``: ``Σ_r λ_r · mean over frames holding r of L_r``; parts: each region's mean ``L_r``.
        """
        if boxes is None:
            boxes = region_boxes(masks.cpu().numpy())
        total = generated.new_zeros((), dtype=torch.float32)
        parts: dict[str, float] = {}
        for r, (name, bits) in enumerate(LOSS_REGIONS.items()):
            present = np.flatnonzero(boxes[:, r, 3])
            weight = getattr(self.weights, WEIGHT_OF_REGION[name])
            if present.size == 0 or weight == 0:
                continue
            ours, theirs, region = self._crops(generated, target, masks, boxes[:, r], present, bits)
            value = self._distance(ours * region, theirs * region, region)
            parts[name] = float(value.detach())
            total = total + weight * value
        return total, parts

    def _crops(self, generated: torch.Tensor, target: torch.Tensor, masks: torch.Tensor, boxes: np.ndarray,
               frames: np.ndarray, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The region's crops of the frames ``frames``, resized to ``crop``: generated, target ``[n, 3, c, c]``
        and the mask ``[n, 1, c, c]`` in 0..1."""
        ours, theirs, region = [], [], []
        for n in frames:
            top, left, side, _ = (int(v) for v in boxes[n])
            rows, cols = slice(top, top + side), slice(left, left + side)
            ours.append(self._resize(generated[n, :, rows, cols]))
            theirs.append(self._resize(target[n, :, rows, cols]))
            region.append(self._resize(((masks[n, rows, cols].to(torch.int32) & bits) != 0)[None].float()))
        return torch.cat(ours), torch.cat(theirs), torch.cat(region)

    def _resize(self, crop: torch.Tensor) -> torch.Tensor:
        """``[C, s, s]`` → ``[1, C, crop, crop]`` (bilinear; antialiased when shrinking)."""
        return F.interpolate(crop[None].float(), size=(self.crop, self.crop), mode="bilinear", align_corners=False,
                             antialias=crop.shape[-1] > self.crop)

    def _distance(self, ours: torch.Tensor, theirs: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
        """``L1 in the mask + w_ssim · (1 − SSIM) + w_features · feature distance`` of masked crops, averaged."""
        area = region.sum(dim=(1, 2, 3)).clamp_min(1.0)
        l1 = ((ours - theirs).abs().mean(dim=1, keepdim=True) * region).sum(dim=(1, 2, 3)) / area
        loss = l1.mean()
        if self.weights.ssim:
            loss = loss + self.weights.ssim * (1.0 - ssim(ours, theirs)).mean()
        if self.weights.features:
            distances = [((a - b) ** 2).sum(dim=1).mean() for a, b in zip(self.features(ours), self.features(theirs),
                                                                          strict=True)]
            loss = loss + self.weights.features * torch.stack(distances).mean()
        return loss
