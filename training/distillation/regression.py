"""The student's initialisation by regression on ODE pairs (CausVid), streamed as the runtime streams it.

Each pair's clip is streamed chunk by chunk (:class:`.rollout.StreamRollout`, teacher forcing): every step
``i`` of a chunk gets the teacher's state ``z_{t_i}`` of those frames and must predict the teacher's clean
``x_0``; the cache is filled from the teacher's ``x_0`` of the earlier chunks through the student's own
refresh pass, with the planner's top-K selection and masks. Loss: the mean squared error over steps,
frames and latent cells.
"""

from __future__ import annotations

import torch

from training.distillation.rollout import StreamRollout, encode_reference
from training.distillation.runtime import autocast
from training.models.transformer import VideoTransformer


def regression_loss(student: VideoTransformer, batch: dict[str, torch.Tensor], device: torch.device, *,
                    grad_through_cache: bool = True, backward: bool = True) -> float:
    """The ODE-regression loss of a batch of pairs (:class:`.ode_pairs.OdePairs` items, collated).

    Streams the batch's clips side by side (:meth:`.rollout.StreamRollout.run_batch`: one network call per chunk
    and step for all of them) and, with ``backward``, back-propagates the loss. Returns the batch's mean loss.
    """
    states = batch["states"].to(device, non_blocking=True)
    target = batch["x0"].to(device, non_blocking=True)
    with torch.set_grad_enabled(backward), autocast(device):
        reference = encode_reference(student, batch["reference"].to(device))
        result = StreamRollout(student).run_batch(reference, batch["keypoints"].numpy(), batch["pose"].to(device),
                                                  forced=states, context=target, grad_through_cache=grad_through_cache)
        loss = torch.nn.functional.mse_loss(result.predictions.float(), target[:, None].expand_as(result.predictions))
    if backward:
        loss.backward()
    return loss.item()
