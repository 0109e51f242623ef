"""The distillation's pieces on the CPU at the tiny preset with random weights: ODE pairs, the regression
initialisation, one DMD generator step and one critic step, the region loss."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from inference.errors import InputFileError
from inference.render.pose_map import draw_pose_map
from tests.student.poses import presenter_clip
from tests.synthetic.conftest import neutral, small_bank  # noqa: F401 - shared fixtures
from training.distillation.batches import synthetic_clips, to_device
from training.distillation.clip_attention import clip_attention, spec_for
from training.distillation.dmd import DmdSettings, DmdTrainer
from training.distillation.losses import RegionLoss, RegionWeights, dmd_loss, region_boxes
from training.distillation.ode_pairs import OdePairs, PairsInfo, ShardWriter
from training.distillation.regression import regression_loss
from training.distillation.sampler import clip_denoiser, euler_trajectory
from training.models.autoencoder import Autoencoder
from training.models.config import preset
from training.models.transformer import VideoTransformer, randomize_
from training.synthetic.regions import REGION_BITS

TEACHER = preset("tiny").with_(chunk_frames=4)  # the teacher's clip: 4 frames
STUDENT = preset("tiny")  # chunks of 2, cache 4, top-2, times (0, 0.5)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def autoencoder() -> Autoencoder:
    torch.manual_seed(0)
    return randomize_(Autoencoder(TEACHER), seed=1).eval().requires_grad_(False)


@pytest.fixture(scope="module")
def teacher() -> VideoTransformer:
    return randomize_(VideoTransformer(TEACHER), seed=2).eval()


@pytest.fixture(scope="module")
def clips(small_bank, autoencoder):  # noqa: F811 - the shared fixture
    """One 4-frame training clip on the device (CPU) with the teacher's local masks and keypoint region masks."""
    dataset = synthetic_clips(small_bank, "train", frames=4, size=256, clips=1, seed=0,
                              pose_style=TEACHER.pose_style,
                              spec=spec_for(TEACHER, "local"), region_masks=True)
    return to_device(next(iter(DataLoader(dataset, batch_size=1))), autoencoder, torch.device("cpu"),
                     encode_frames=False)


def _pose(keypoints: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack([[draw_pose_map(k, (256, 256), style=TEACHER.pose_style)
                                       for k in clip] for clip in keypoints]))


def test_ode_pairs_have_the_right_shapes_and_the_sampler_is_deterministic(teacher, tmp_path):
    keypoints = presenter_clip(4)[None]
    pose, reference = _pose(keypoints), torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(1, 4, 4, 32, 32, generator=torch.Generator().manual_seed(2))
    denoise = clip_denoiser(teacher, pose, reference, clip_attention(spec_for(TEACHER, "local"), keypoints=keypoints))
    x0, states = euler_trajectory(denoise, noise, steps=4, record=STUDENT.timesteps)
    again, states_again = euler_trajectory(denoise, noise, steps=4, record=STUDENT.timesteps)
    assert x0.shape == (1, 4, 4, 32, 32) and states.shape == (2, 1, 4, 4, 32, 32)
    assert torch.equal(x0, again) and torch.equal(states, states_again)
    assert torch.equal(states[0], noise)  # t = 0 is the noise itself
    assert not torch.allclose(states[1], noise) and torch.isfinite(states).all()
    # on disk and back, with pose maps redrawn from the keypoints
    info = PairsInfo(timesteps=STUDENT.timesteps, teacher_steps=4, teacher_mask="local", teacher_sha256="t" * 64,
                     autoencoder_sha256="a" * 64)
    writer = ShardWriter(tmp_path, rank=0, info=info, clips_per_shard=1)
    writer.add(states, x0, keypoints, reference)
    writer.close()
    pairs = OdePairs(tmp_path, size=256, pose_style=TEACHER.pose_style)
    item = pairs[0]
    assert len(pairs) == 1 and pairs.info == info
    assert item["states"].shape == (2, 4, 4, 32, 32) and item["x0"].shape == (4, 4, 32, 32)
    assert item["pose"].shape == (4, 256, 256, 3) and torch.equal(item["pose"], pose[0])
    torch.testing.assert_close(item["x0"], x0[0], atol=2e-3, rtol=2e-3)  # stored in float16


def test_ode_pairs_refuse_a_folder_without_shards(tmp_path):
    with pytest.raises(InputFileError, match="no ODE-pair shards"):
        OdePairs(tmp_path, size=256, pose_style=TEACHER.pose_style)
    (tmp_path / "pairs_r0_00000.npz").write_bytes(b"not a shard")
    with pytest.raises(InputFileError, match="not a readable ODE-pair shard"):
        OdePairs(tmp_path, size=256, pose_style=TEACHER.pose_style)


def test_regression_lowers_its_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    student = randomize_(VideoTransformer(STUDENT), seed=5).train()
    generator = torch.Generator().manual_seed(3)
    keypoints = presenter_clip(4)[None]
    batch = {"states": torch.randn(1, 2, 4, 4, 32, 32, generator=generator),
             "x0": torch.randn(1, 4, 4, 32, 32, generator=generator), "keypoints": torch.from_numpy(keypoints),
             "reference": torch.randn(1, 4, 32, 32, generator=generator), "pose": _pose(keypoints)}
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        losses.append(regression_loss(student, batch, torch.device("cpu")))
        optimizer.step()
    assert losses[-1] < 0.8 * losses[0], losses


def test_a_shallower_student_keeps_the_teacher_blocks_it_needs_most():
    """A 3-layer teacher whose middle block does nothing (its output projections are zero): the 2-layer student
    drops exactly that block, keeps the others' weights in order, and predicts what the teacher predicts."""
    from training.distillation.weights import choose_dropped_blocks, student_from, without_blocks

    config = STUDENT.with_(depth=3)
    teacher = randomize_(VideoTransformer(config), seed=7).eval()
    for layer in (teacher.blocks[1].proj, teacher.blocks[1].fc2):
        torch.nn.init.zeros_(layer.weight)  # (no biases)
    generator = torch.Generator().manual_seed(4)
    keypoints = presenter_clip(4)[None]
    batch = {"states": torch.randn(1, 2, 4, 4, 32, 32, generator=generator),
             "x0": torch.randn(1, 4, 4, 32, 32, generator=generator), "keypoints": torch.from_numpy(keypoints),
             "reference": torch.randn(1, 4, 32, 32, generator=generator), "pose": _pose(keypoints)}
    with torch.no_grad():
        target = _stream_predictions(teacher, batch)

    def loss_of(network: VideoTransformer) -> float:
        with torch.no_grad():
            return torch.nn.functional.mse_loss(_stream_predictions(network, batch), target).item()

    shallower = config.with_(depth=2)
    assert choose_dropped_blocks(teacher, shallower, loss_of) == [1]
    student, how = student_from(teacher, shallower, loss_of)
    assert how == "teacher weights without blocks [1]"
    assert torch.equal(student.blocks[1].fc1.weight, teacher.blocks[2].fc1.weight)
    assert loss_of(student) < 1e-10
    assert loss_of(without_blocks(teacher, shallower, [0])) > 1e-4  # a block that matters
    with pytest.raises(ValueError, match="does not give this depth-2 student"):
        without_blocks(teacher, shallower, [0, 1])
    assert student_from(teacher, shallower.with_(width=64, heads=2))[1].startswith("fresh")


def _stream_predictions(network: VideoTransformer, batch: dict) -> torch.Tensor:
    from training.distillation.rollout import StreamRollout, encode_reference

    reference = encode_reference(network, batch["reference"])
    return StreamRollout(network).run_batch(reference, batch["keypoints"].numpy(), batch["pose"],
                                            forced=batch["states"], context=batch["x0"]).predictions


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(module: torch.nn.Module, before: list[torch.Tensor]) -> bool:
    return any(not torch.equal(p, b) for p, b in zip(module.parameters(), before, strict=True))


def test_one_critic_step_and_one_generator_step_change_what_they_should(teacher, autoencoder, clips):
    student = randomize_(VideoTransformer(STUDENT), seed=6).train()
    region = RegionLoss(autoencoder.encoder, RegionWeights(), crop=32)
    trainer = DmdTrainer(student, teacher, spec_for(TEACHER, "local"), autoencoder,
                         DmdSettings(critic_steps=1, region_frames=2), region_loss=region, seed=0)
    networks = {"student": student, "teacher": teacher, "critic": trainer.critic, "autoencoder": autoencoder}
    critic_optimizer = torch.optim.SGD(trainer.critic.parameters(), lr=0.1)
    generator_optimizer = torch.optim.SGD(student.parameters(), lr=0.1)

    before = {name: _snapshot(net) for name, net in networks.items()}
    loss = trainer.critic_loss(clips)
    loss.backward()
    assert all(p.grad is None for name in ("student", "teacher", "autoencoder") for p in networks[name].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.critic.parameters())
    critic_optimizer.step()
    critic_optimizer.zero_grad(set_to_none=True)
    assert _changed(trainer.critic, before["critic"])
    assert not any(_changed(networks[n], before[n]) for n in ("student", "teacher", "autoencoder"))

    before = {name: _snapshot(net) for name, net in networks.items()}
    loss, parts = trainer.generator_loss(clips)
    loss.backward()
    assert {"dmd", "region", "region_mouth", "dmd_normaliser"} <= set(parts)
    assert all(p.grad is None for name in ("critic", "teacher", "autoencoder") for p in networks[name].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    generator_optimizer.step()
    assert _changed(student, before["student"])
    assert not any(_changed(networks[n], before[n]) for n in ("critic", "teacher", "autoencoder"))


def test_the_real_score_is_guided_over_the_pose_when_asked(teacher, autoencoder, clips):
    student = randomize_(VideoTransformer(STUDENT), seed=6).eval()
    trainer = DmdTrainer(student, teacher, spec_for(TEACHER, "local"), autoencoder,
                         DmdSettings(critic_steps=1, lambda_region=0.0), seed=0)
    noisy = torch.randn(clips.pose.shape[0], clips.pose.shape[1], TEACHER.latent_channels, TEACHER.latent_size,
                        TEACHER.latent_size)
    t = torch.full((len(noisy),), 0.4)
    with torch.no_grad():
        plain = trainer._scores(teacher, noisy, t, clips)
        free = trainer._scores(teacher, noisy, t, dataclasses.replace(clips, pose=torch.zeros_like(clips.pose)))
        torch.testing.assert_close(trainer._scores(teacher, noisy, t, clips, 3.0), free + 3.0 * (plain - free))
    assert (plain - free).abs().max() > 1e-3  # the pose matters to this teacher, so the test means something
    with pytest.raises(ValueError, match="real_guidance must be above 0"):
        DmdSettings(real_guidance=0.0)


def test_the_dmd_gradient_is_the_normalised_score_difference():
    generated = torch.randn(2, 3, 4, 4, requires_grad=True)
    real, fake = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    loss, stats = dmd_loss(generated, real, fake)
    loss.backward()
    normaliser = (generated.detach() - real).abs().mean()
    torch.testing.assert_close(generated.grad, (fake - real) / normaliser / generated.numel())
    assert stats["dmd_normaliser"] == pytest.approx(float(normaliser))


def test_the_region_loss_is_zero_for_identical_frames_and_weighs_the_mouth_over_the_background(autoencoder, clips):
    frames = clips.frames[0, :2].clone()
    masks = clips.region_masks[0, :2]
    loss = RegionLoss(autoencoder.encoder, RegionWeights())
    same, parts = loss(frames, frames, masks)
    assert float(same) < 1e-5 and set(parts) >= {"mouth", "face"}
    bits = masks.to(torch.int32)
    mouth = (bits & REGION_BITS["mouth"]) != 0
    regions = sum(REGION_BITS[r] for r in ("face", "mouth", "left_hand", "right_hand"))
    background = (bits & regions) == 0
    count = int(mouth.sum())
    assert count > 0
    picked = torch.nonzero(background.flatten())[:count, 0]
    elsewhere = torch.zeros_like(background.flatten())
    elsewhere[picked] = True
    elsewhere = elsewhere.view_as(background)

    def shifted(where: torch.Tensor) -> torch.Tensor:
        out = frames.clone()
        red = out[:, 0]
        red[where] = red[where] - 0.5  # the same change, on the same number of pixels
        return out

    in_mouth, _ = loss(shifted(mouth), frames, masks)
    in_background, _ = loss(shifted(elsewhere), frames, masks)
    assert float(in_background) < 1e-5 < float(in_mouth)
    boxes = region_boxes(masks.numpy())
    assert boxes.shape == (2, 4, 4) and (boxes[:, 0, 3] == 1).all()  # the mouth is found in both frames
