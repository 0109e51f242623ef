"""Image metrics against plain float64 references, also where training code calls them under autocast."""

from __future__ import annotations

import numpy as np
import torch

from training.metrics import psnr, ssim


def _smooth_pair(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two noisy copies of a smooth image in [-1, 1], ``[2, 3, 64, 64]``: large means, small variances."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    base = (0.6 * torch.sin(6 * xx) * torch.cos(4 * yy)).expand(2, 3, 64, 64)
    return (base + 0.04 * torch.randn(2, 3, 64, 64, generator=g),
            base + 0.04 * torch.randn(2, 3, 64, 64, generator=g))


def _ssim_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM per image in float64: 11×11 Gaussian window (σ 1.5), valid positions, data range 1."""
    x, y = (a + 1) / 2, (b + 1) / 2
    r = np.arange(11) - 5
    g = np.exp(-(r**2) / (2 * 1.5**2))
    g /= g.sum()
    w = np.outer(g, g)

    def blur(t: np.ndarray) -> np.ndarray:
        h, wd = t.shape[-2:]
        out = np.zeros((*t.shape[:-2], h - 10, wd - 10))
        for i in range(11):
            for j in range(11):
                out += w[i, j] * t[..., i:i + h - 10, j:j + wd - 10]
        return out

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return s.reshape(len(a), -1).mean(axis=1)


def test_ssim_matches_a_float64_reference_also_inside_bfloat16_autocast():
    a, b = _smooth_pair(0)
    expected = _ssim_reference(a.double().numpy(), b.double().numpy())
    assert np.allclose(ssim(a, b).numpy(), expected, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the teacher's evaluation runs its decoder in here
        inside = ssim(a, b)
    assert inside.dtype == torch.float32
    assert np.allclose(inside.numpy(), expected, atol=1e-5)


def test_psnr_matches_its_definition():
    a, b = _smooth_pair(1)
    mse = (((a.double() - b.double()) / 2) ** 2).flatten(1).mean(1)
    assert np.allclose(psnr(a, b).double().numpy(), (10 * torch.log10(1 / mse)).numpy(), atol=1e-3)
