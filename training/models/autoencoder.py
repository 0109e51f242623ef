"""A small convolutional autoencoder: frames ↔ latents 8× smaller a side.

No normalisation layers (they cost memory-bound passes at 512×512 for little gain in a network this
small): residual blocks of two 3×3 convolutions with SiLU, stride-2 convolutions down, nearest
upsampling plus a convolution up. Frames are RGB in ``[-1, 1]``; latents are scaled by
``latent_scale`` (set after training so that latents have unit variance).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from training.checkpoints import Checkpoint, CheckpointError, load_checkpoint
from training.models.config import StudentConfig

#: ``meta["kind"]`` of autoencoder weight checkpoints (written by :mod:`training.train_autoencoder`).
CHECKPOINT_KIND = "autoencoder"


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(self.act(x))))


class Encoder(nn.Module):
    """RGB ``[B, 3, H, W]`` in ``[-1, 1]`` → latent ``[B, C, H/8, W/8]`` (unscaled)."""

    def __init__(self, channels: tuple[int, int, int, int], latent_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels[0], 3, padding=1), ResidualBlock(channels[0])]
        for c_in, c_out in zip(channels, channels[1:], strict=False):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), ResidualBlock(c_out)]
        layers += [nn.SiLU(), nn.Conv2d(channels[-1], latent_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.net(rgb)


class Decoder(nn.Module):
    """Latent ``[B, C, h, w]`` (unscaled) → RGB ``[B, 3, 8h, 8w]`` in about ``[-1, 1]``."""

    def __init__(self, channels: tuple[int, int, int, int], latent_channels: int) -> None:
        super().__init__()
        widths = channels[::-1]
        layers: list[nn.Module] = [nn.Conv2d(latent_channels, widths[0], 3, padding=1), ResidualBlock(widths[0])]
        for c_in, c_out in zip(widths, widths[1:], strict=False):
            layers += [nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1),
                       ResidualBlock(c_out)]
        layers += [nn.SiLU(), nn.Conv2d(widths[-1], 3, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(latent)


class Autoencoder(nn.Module):
    """Encoder and decoder with the latent scale between them."""

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.encoder = Encoder(config.autoencoder_channels, config.latent_channels)
        self.decoder = Decoder(config.autoencoder_channels, config.latent_channels)
        self.register_buffer("latent_scale", torch.tensor(1.0))

    def encode(self, rgb: torch.Tensor) -> torch.Tensor:
        """RGB in ``[-1, 1]`` → scaled latent."""
        return self.encoder(rgb) * self.latent_scale

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Scaled latent → RGB in about ``[-1, 1]``."""
        return self.decoder(latent / self.latent_scale)


def autoencoder_meta(config: StudentConfig, **facts: object) -> dict[str, object]:
    """The manifest facts of an autoencoder weight checkpoint: its kind, configuration and ``facts``."""
    return {"kind": CHECKPOINT_KIND, "config": config.to_dict(), **facts}


def latent_space(checkpoint: Checkpoint) -> str:
    """The identity of the latent space an autoencoder checkpoint encodes into: the checksum of the checkpoint
    whose training last changed the encoder and the latent scale. That is the checkpoint's own ``sha256``, unless
    it is a decoder-only fine-tune (``train_autoencoder --decoder-only``), whose ``meta["latent_space"]`` carries
    its parent's: networks trained on the parent's latents work with it unchanged."""
    return str(checkpoint.meta.get("latent_space") or checkpoint.sha256)


def check_latent_space(meta: dict, autoencoder: Checkpoint, what: str) -> None:
    """Raises when a network's record (``meta["autoencoder_sha256"]``, the :func:`latent_space` it was trained
    in) names another latent space than ``autoencoder``'s.

    Raises:
        CheckpointError: the latent spaces differ.
    """
    expected = meta.get("autoencoder_sha256")
    if expected and expected != latent_space(autoencoder):
        raise CheckpointError(autoencoder.files[0], f"is not the autoencoder the {what} was trained with (it "
                              "encodes into another latent space than the one recorded with the weights)",
                              f"Give the autoencoder_weights of the {what}'s run, or a decoder-only fine-tune of it")


def load_autoencoder(path: str | Path, device: torch.device | str = "cpu") -> tuple[Autoencoder, Checkpoint]:
    """Autoencoder weights (``autoencoder_weights.pKofN.ckpt``, see :mod:`training.checkpoints`) → a float32
    model in eval mode on ``device``, with its checkpoint (:func:`latent_space` identifies its latent space).

    Raises:
        CheckpointError: missing or damaged parts, or the checkpoint holds something else.
    """
    checkpoint = load_checkpoint(path)
    if checkpoint.meta.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(checkpoint.files[0], f"holds {checkpoint.meta.get('kind') or 'unknown'} weights, not an "
                              "autoencoder", "Give the autoencoder_weights checkpoint that training.train_autoencoder "
                              "wrote")
    model = Autoencoder(StudentConfig.from_dict(checkpoint.meta["config"]))
    model.load_state_dict({k: v.float() for k, v in checkpoint.state["model"].items()})
    return model.to(device).eval(), checkpoint


def rgb_from_uint8(image: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B, H, W, 3]`` → float ``[B, 3, H, W]`` in ``[-1, 1]``."""
    return image.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def rgb_to_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """float ``[B, 3, H, W]`` in ``[-1, 1]`` → uint8 ``[B, H, W, 3]`` (clamped, rounded)."""
    scaled = ((rgb.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round()
    return scaled.to(torch.uint8).permute(0, 2, 3, 1)
