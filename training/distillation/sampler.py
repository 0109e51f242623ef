"""The teacher's deterministic sampler over clips, recording the flow ODE's state at chosen times.

Same ODE and update as :func:`training.models.teacher.euler_sample` (uniform Euler steps from ``t = 0``, pure
noise, to ``t = 1``; :func:`inference.render.student.sampling.step_coefficients`), for one batch of clips with
any attention (dense or input-aware sparse, :mod:`.clip_attention`), and with the states ``z_t`` kept at the
times the student will be asked to denoise: CausVid's ODE pairs are ``(z_{t_i}, x_0)`` on one trajectory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from inference.render.student.sampling import step_coefficients
from training.models.transformer import Attention, VideoTransformer

#: ``denoise(z [B, T, C, h, w], t [B]) → x̂ [B, T, C, h, w]``
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def time_grid(steps: int, record: Sequence[float] = ()) -> np.ndarray:
    """The sampler's times: ``k / steps`` for k = 0..steps, with the ``record`` times inserted, float64 ascending.

    Raises:
        ValueError: fewer than one step, or a record time outside ``[0, 1)``.
    """
    if steps < 1:
        raise ValueError(f"the sampler needs at least one step, got {steps}")
    if any(not 0.0 <= t < 1.0 for t in record):
        raise ValueError(f"recorded times must lie in [0, 1), got {list(record)}")
    return np.unique(np.concatenate([np.linspace(0.0, 1.0, steps + 1), np.asarray(record, dtype=np.float64)]))


@torch.no_grad()
def euler_trajectory(denoise: Denoiser, noise: torch.Tensor, steps: int,
                     record: Sequence[float] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrates the flow ODE from ``noise`` (``t = 0``) to the clean latents with Euler steps.

    Deterministic: the same ``noise`` and network give the same trajectory.

    Args:
        denoise: the teacher's x-prediction.
        noise: ``[B, T, C, h, w]`` standard normal.
        steps: uniform steps (the recorded times are added to the grid, so a time off the grid costs one more).
        record: times in ``[0, 1)`` whose states to return (0 gives ``noise`` itself).

    Returns:
        ``(x0, states)``: clean latents ``[B, T, C, h, w]`` float32, and ``states`` ``[len(record), B, T, C, h, w]``
        (the state ``z_t`` reached at each recorded time, in ``record`` order).
    """
    times = time_grid(steps, record)
    z = noise.float()
    kept: dict[float, torch.Tensor] = {}
    wanted = {float(t) for t in record}
    for t, t_next in zip(times[:-1], times[1:], strict=True):
        if float(t) in wanted:
            kept[float(t)] = z.clone()
        timestep = torch.full((z.shape[0],), float(t), device=z.device)
        predicted = denoise(z, timestep).float()
        a, b, _ = step_coefficients(float(t), float(t_next), "euler")
        z = float(a) * predicted + float(b) * z
    states = torch.stack([kept[float(t)] for t in record]) if record else z.new_zeros((0, *z.shape))
    return z, states


def clip_denoiser(transformer: VideoTransformer, pose: torch.Tensor, reference: torch.Tensor,
                  attention: Attention) -> Denoiser:
    """The teacher over a batch of clips: ``pose`` uint8 ``[B, T, H, W, 3]``, clean ``reference`` latents
    ``[B, C, h, w]``, ``attention`` from :func:`.clip_attention.clip_attention`; one time per clip."""
    def denoise(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        clips, frames = z.shape[:2]
        return transformer.denoise_clips(z, t[:, None].expand(clips, frames), pose, reference, attention)

    return denoise
