"""The autoencoder's training run and the image metrics every training stage reports."""

import json

import numpy as np
import pytest
import torch

from tests.synthetic.conftest import neutral, small_bank  # noqa: F401 - shared fixtures
from training.metrics import flicker, psnr, region_mae, ssim
from training.train_autoencoder import main as train_autoencoder


def _reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Float64 SSIM with an 11x11 Gaussian window (sigma 1.5) over the valid region, one channel."""
    coords = np.arange(11) - 5
    g = np.exp(-(coords**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    h, wd = x.shape
    vals = []
    for i in range(h - 10):
        for j in range(wd - 10):
            a, b = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb = (w * a * a).sum() - ma**2, (w * b * b).sum() - mb**2
            cov = (w * a * b).sum() - ma * mb
            vals.append(((2 * ma * mb + 1e-4) * (2 * cov + 9e-4)) / ((ma**2 + mb**2 + 1e-4) * (va + vb + 9e-4)))
    return float(np.mean(vals))


def test_metrics_against_float64_references():
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.uniform(-1, 1, (1, 3, 24, 24)).astype(np.float32))
    b = (a + torch.from_numpy(rng.normal(0, 0.1, a.shape).astype(np.float32))).clamp(-1, 1)
    ua, ub = (a.double().numpy() + 1) / 2, (b.double().numpy() + 1) / 2
    assert psnr(a, b).item() == pytest.approx(-10 * np.log10(((ua - ub) ** 2).mean()), abs=1e-3)
    expected = np.mean([_reference_ssim(ua[0, c], ub[0, c]) for c in range(3)])
    assert ssim(a, b).item() == pytest.approx(expected, abs=1e-4)
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-5)
    mask = torch.zeros(1, 24, 24, dtype=torch.bool)
    mask[0, :4, :4] = True
    assert region_mae(a, b, mask).item() == pytest.approx(np.abs(ua - ub)[0, :, :4, :4].mean() * 255, rel=1e-4)
    assert np.isnan(region_mae(a, b, torch.zeros_like(mask)).item())
    clip = a.unsqueeze(1).repeat(1, 3, 1, 1, 1)
    assert flicker(clip, clip).item() == 0.0


def test_a_short_run_trains_evaluates_and_resumes(tmp_path, small_bank):  # noqa: F811
    bank = small_bank.save(tmp_path / "bank.npz")
    out = tmp_path / "run"
    args = ["--bank", str(bank), "--heldout-bank", str(bank), "--out", str(out), "--preset", "tiny",
            "--minutes", "0.05", "--batch-clips", "2", "--workers", "0"]
    assert train_autoencoder(args) == 0
    report = json.loads((out / "metrics.json").read_text())
    first_steps = report["steps"]
    assert first_steps > 0 and report["heldout"]["frames"] == 192
    assert 0 < report["heldout"]["psnr_db"] < 60 and 0 < report["heldout"]["ssim"] <= 1
    assert (out / "samples.png").stat().st_size > 1000
    assert train_autoencoder([*args, "--resume", str(out / "autoencoder.pt")]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] > first_steps


def test_the_latent_channels_can_be_chosen_and_a_fresh_teacher_takes_them(tmp_path, small_bank):  # noqa: F811
    from training.models.autoencoder import load_autoencoder
    from training.train_teacher import main as train_teacher

    bank = small_bank.save(tmp_path / "bank.npz")
    out = tmp_path / "ae8"
    args = ["--bank", str(bank), "--heldout-bank", str(bank), "--out", str(out), "--preset", "tiny",
            "--minutes", "0.01", "--batch-clips", "2", "--workers", "0"]
    with pytest.raises(SystemExit):
        train_autoencoder([*args, "--latent-channels", "0"])
    assert train_autoencoder([*args, "--latent-channels", "8"]) == 0
    autoencoder, checkpoint = load_autoencoder(out / "autoencoder_weights")
    assert checkpoint.meta["config"]["latent_channels"] == 8
    # continuing takes the channels from what it continues; a contradicting option is refused
    assert train_autoencoder([*args, "--resume", str(out / "autoencoder.pt")]) == 0
    assert train_autoencoder([*args, "--resume", str(out / "autoencoder_weights")]) == 0
    with pytest.raises(SystemExit):
        train_autoencoder([*args, "--resume", str(out / "autoencoder_weights"), "--latent-channels", "16"])
    autoencoder, checkpoint = load_autoencoder(out / "autoencoder_weights")
    assert checkpoint.meta["config"]["latent_channels"] == 8
    assert autoencoder.encode(torch.zeros(1, 3, 256, 256)).shape == (1, 8, 32, 32)
    teacher_out = tmp_path / "teacher"
    assert train_teacher(["--bank", str(bank), "--heldout-bank", str(bank), "--autoencoder",
                          str(out / "autoencoder_weights"), "--out", str(teacher_out), "--preset", "tiny", "--frames",
                          "2", "--minutes", "0.01", "--batch-clips", "2", "--workers", "0", "--reuse", "1",
                          "--eval-clips", "1", "--eval-steps", "1", "--video-segments", "0"]) == 0
    assert json.loads((teacher_out / "metrics.json").read_text())["config"]["latent_channels"] == 8
