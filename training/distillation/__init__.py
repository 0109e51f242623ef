"""Input-aware distillation of the teacher into the few-step causal student (issue 7; paper §4-§5).

* :mod:`.runtime`: devices, torchrun, bf16, time budgets, gradient averaging, logs.
* :mod:`.weights`: transformer and autoencoder checkpoints (bf16 weights with their configuration).
* :mod:`.batches`: synthetic clips → what the networks take (latents, pose maps, reference, keypoint masks).
* :mod:`.clip_attention`: the teacher's attention over a whole clip (dense, global, global + local).
* :mod:`.sampler`: the teacher's deterministic Euler sampler (records the ODE states at chosen times).
* :mod:`.rollout`: the causal student streamed chunk by chunk exactly as the runtime streams it, with gradients.
* :mod:`.losses`: flow matching, DMD, and the input-aware region loss.
* :mod:`.ode_pairs`: teacher trajectories on disk for the CausVid regression initialisation.
* :mod:`.evaluation`: held-out PSNR, SSIM, region errors and flicker of a teacher or a student.
* :mod:`.packaging`: export, pack, model card and the 40 MB size check.
"""
