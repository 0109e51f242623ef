"""Image quality measures used by every training stage: PSNR, SSIM, region errors, temporal flicker.

Frames are float tensors ``[B, 3, H, W]`` in ``[-1, 1]`` (the models' range); errors are reported on the
0..255 scale people read. SSIM uses an 11×11 Gaussian window (σ = 1.5) over the valid region, averaged
over channels, as ``skimage.metrics.structural_similarity(..., gaussian_weights=True)`` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    return (x.float().clamp(-1.0, 1.0) + 1.0) * 0.5


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of ``[B, 3, H, W]`` frames in [-1, 1] (peak 1 after mapping to [0, 1])."""
    mse = ((_to_unit(a) - _to_unit(b)) ** 2).flatten(1).mean(dim=1).clamp_min(1e-12)
    return -10.0 * torch.log10(mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5, device: torch.device | None = None) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of ``[B, 3, H, W]`` frames in [-1, 1] (data range 1 after mapping to [0, 1]).

    Always computed in float32, also inside an autocast region: in bfloat16 the variances
    (``blur(x·x) − blur(x)²``) cancel catastrophically and SSIM falls by a fifth or more."""
    with torch.autocast(device_type=a.device.type, enabled=False):
        return _ssim(a.float(), b.float())


def _ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    x, y = _to_unit(a), _to_unit(b)
    channels = x.shape[1]
    window = _gaussian_window(device=x.device).expand(channels, 1, 11, 11)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(dim=1)


def region_mae(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error on the 0..255 scale inside ``mask`` ``[B, H, W]`` (bool), over the whole batch.

    Returns NaN when the mask is empty in every frame.
    """
    diff = (_to_unit(a) - _to_unit(b)).abs().mean(dim=1) * 255.0
    weight = mask.float()
    total = weight.sum()
    if total == 0:
        return torch.tensor(float("nan"), device=a.device)
    return (diff * weight).sum() / total


def flicker(frames: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Temporal flicker of clips ``[B, T, 3, H, W]``: the mean absolute frame-to-frame change (0..255) that the
    ground truth ``reference`` does not have; 0 when the clip changes exactly as the ground truth does."""
    d_out = (_to_unit(frames[:, 1:]) - _to_unit(frames[:, :-1]))
    d_ref = (_to_unit(reference[:, 1:]) - _to_unit(reference[:, :-1]))
    return (d_out - d_ref).abs().mean() * 255.0
