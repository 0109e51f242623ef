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


def test_a_decoder_only_fine_tune_keeps_the_latent_space(tmp_path, small_bank, capsys):  # noqa: F811
    """The decoder changes, the encoder and the latent scale do not, and the result records the latent space it
    keeps, so a teacher trained on the first autoencoder is accepted with the second and refused with another."""
    from training.checkpoints import CheckpointError
    from training.models.autoencoder import check_latent_space, latent_space, load_autoencoder

    bank = small_bank.save(tmp_path / "bank.npz")
    common = ["--bank", str(bank), "--heldout-bank", str(bank), "--preset", "tiny", "--minutes", "0.01",
              "--batch-clips", "2", "--workers", "0"]
    assert train_autoencoder([*common, "--out", str(tmp_path / "ae")]) == 0
    parent, parent_checkpoint = load_autoencoder(tmp_path / "ae" / "autoencoder_weights")
    tuned_args = [*common, "--out", str(tmp_path / "tuned"), "--decoder-only"]
    assert train_autoencoder([*tuned_args, "--resume", str(tmp_path / "ae" / "autoencoder_weights")]) == 0
    tuned, tuned_checkpoint = load_autoencoder(tmp_path / "tuned" / "autoencoder_weights")
    moved = {name for name, value in parent.state_dict().items() if not torch.equal(value, tuned.state_dict()[name])}
    assert moved and all(name.startswith("decoder.") for name in moved), moved  # the scale is not a decoder tensor
    assert latent_space(tuned_checkpoint) == parent_checkpoint.sha256 != tuned_checkpoint.sha256
    trained_on_parent = {"autoencoder_sha256": latent_space(parent_checkpoint)}
    check_latent_space(trained_on_parent, tuned_checkpoint, "teacher")
    assert json.loads((tmp_path / "tuned" / "metrics.json").read_text())["decoder_only"] is True

    # continued exactly, it still keeps the parent's space; a whole-network run makes a new one
    assert train_autoencoder([*tuned_args, "--resume", str(tmp_path / "tuned" / "autoencoder.pt")]) == 0
    assert latent_space(load_autoencoder(tmp_path / "tuned" / "autoencoder_weights")[1]) == parent_checkpoint.sha256
    assert train_autoencoder([*common, "--out", str(tmp_path / "whole"), "--resume",
                              str(tmp_path / "tuned" / "autoencoder_weights")]) == 0
    _, whole_checkpoint = load_autoencoder(tmp_path / "whole" / "autoencoder_weights")
    with pytest.raises(CheckpointError, match="another latent space"):
        check_latent_space(trained_on_parent, whole_checkpoint, "teacher")

    # refused: no autoencoder to fine-tune, and switching a run's mode on an exact resume
    with pytest.raises(SystemExit):
        train_autoencoder([*tuned_args])
    assert "give the autoencoder with --resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_autoencoder([*common, "--out", str(tmp_path / "tuned"), "--resume",
                           str(tmp_path / "tuned" / "autoencoder.pt")])
    assert "continue it with --decoder-only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_autoencoder([*tuned_args, "--resume", str(tmp_path / "ae" / "autoencoder.pt")])
    assert "continue it without --decoder-only" in capsys.readouterr().err
