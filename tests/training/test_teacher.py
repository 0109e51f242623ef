"""The teacher: its clip mode of the student's network, flow matching, the sampler, the training run
(train, resume, continue from weights), the held-out evaluation and its video, and the data reuse."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
import torch

from inference.errors import InputFileError
from inference.render.pose_map import DWPOSE, FULL
from tests.synthetic.conftest import neutral, small_bank  # noqa: F401 - shared fixtures
from training.checkpoints import CheckpointError, bf16_state_dict, save_checkpoint
from training.data.motion_bank import MotionBank, StreamInfo
from training.data.perturb import perturb_stream
from training.data.reuse import BackgroundBatches, ReuseBuffer
from training.models.attention import DenseAttention, FullAttention
from training.models.autoencoder import Autoencoder, autoencoder_meta
from training.models.config import preset
from training.models.teacher import Teacher, add_noise, euler_sample, guided, load_teacher, velocity_loss
from training.models.transformer import randomize_
from training.teacher_eval import CLOSEUP_TILE, VideoSegment, video_from_archive, write_video_archive
from training.teacher_eval import main as evaluate_teacher
from training.train_teacher import main as train_teacher


def _clips(config, clips=2, frames=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    side = config.latent_size
    latent = torch.randn(clips, frames, config.latent_channels, side, side, generator=generator)
    pose = torch.randint(0, 255, (clips, frames, config.size, config.size, 3), dtype=torch.uint8, generator=generator)
    reference = torch.randn(clips, config.latent_channels, side, side, generator=generator)
    return latent, pose, reference


@pytest.fixture(scope="module")
def heldout_bank(neutral):  # noqa: F811 - the shared fixture
    """Two 40-frame held-out streams credited to the demo's held-out sentence (so the video has its speech)."""
    base = np.repeat(neutral[None], 40, axis=0)
    streams = [perturb_stream(base, np.random.default_rng(s), 25.0, 1.0) for s in (3, 4)]
    infos = [StreamInfo("demo-5", "lively", "half-body", s, "offline") for s in (3, 4)]
    return MotionBank(streams, infos, 25.0, "heldout")


@pytest.fixture(scope="module")
def autoencoder_weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ae")
    torch.manual_seed(0)
    config = preset("tiny")
    save_checkpoint(folder, "autoencoder_weights", {"model": bf16_state_dict(Autoencoder(config))},
                    meta=autoencoder_meta(config, preset="tiny", step=0))
    return folder / "autoencoder_weights"


@pytest.mark.parametrize("frame_positions", [False, True])
def test_a_clip_is_the_students_chunk_grown_to_the_whole_clip(frame_positions):
    config = preset("tiny").with_(frame_positions=frame_positions)
    transformer = randomize_(Teacher(config), seed=1).transformer.eval()
    latent, pose, reference = _clips(config)
    times = torch.tensor([[0.3] * 3, [0.7] * 3])
    with torch.no_grad():
        full = transformer.denoise_clips(latent, times, pose, reference, FullAttention())
        dense = transformer.denoise_clips(latent, times, pose, reference, DenseAttention())
        order = torch.arange(3 * config.tokens_per_frame)
        chunk, _ = transformer(latent[1], times[1], pose[1], transformer.encode_reference(reference[1:]), [], order,
                               order, DenseAttention())
    assert torch.allclose(full, dense, atol=1e-5)
    assert torch.allclose(full[1], chunk, atol=1e-5)  # each clip attends only to itself and its reference


def test_a_warped_reference_enters_each_frame_and_starts_at_zero():
    """A zero-initialised warped-reference layer leaves a teacher's prediction as it was; once trained (here: random
    weights) each frame's prediction depends on its own warped reference; the input is required exactly when the
    network has the layer, and the streaming student refuses such a network."""
    config = preset("tiny")
    plain = randomize_(Teacher(config), seed=4).eval()
    warped_config = config.with_(warped_reference=True)
    grown = Teacher(warped_config).eval()
    missing, unexpected = grown.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and set(missing) == {"transformer.reference_warp.weight", "transformer.reference_warp.bias"}
    latent, pose, reference = _clips(config)
    times = torch.tensor([0.3, 0.7])
    warped = torch.randn_like(latent)
    with torch.no_grad():
        assert torch.equal(grown(latent, times, pose, reference, warped), plain(latent, times, pose, reference))
        randomize_(grown, seed=5)
        first = grown(latent, times, pose, reference, warped)
        changed = warped.clone()
        changed[:, 1] += 1.0  # frame 1's warped reference only
        second = grown(latent, times, pose, reference, changed)
    assert not torch.allclose(first[:, 1], second[:, 1], atol=1e-4)
    with pytest.raises(ValueError, match="exactly when the network has warped_reference"):
        grown(latent, times, pose, reference)
    with pytest.raises(ValueError, match="exactly when the network has warped_reference"):
        plain(latent, times, pose, reference, warped)
    order = torch.arange(3 * config.tokens_per_frame)
    with pytest.raises(ValueError, match="streaming student does not take a warped reference"):
        grown.transformer(latent[0], times[:1].expand(3), pose[0], grown.transformer.encode_reference(reference[:1]),
                          [], order, order, DenseAttention())


def test_frame_positions_let_the_teacher_tell_its_frames_apart():
    """Without them the network is blind to the order of a clip's frames (permuting the frames permutes the
    prediction): each frame's tokens are found by content alone, and the trained teacher spread its attention evenly
    over all 16 frames. With them, the same frames in another order give other predictions."""
    latent, pose, reference = _clips(preset("tiny"), clips=1, frames=4)
    times, order = torch.full((1, 4), 0.4), torch.tensor([2, 0, 3, 1])
    for frame_positions in (False, True):
        teacher = randomize_(Teacher(preset("tiny").with_(frame_positions=frame_positions)), seed=2).eval()
        with torch.no_grad():
            straight = teacher(latent, times, pose, reference)
            permuted = teacher(latent[:, order], times, pose[:, order], reference)
        assert torch.allclose(permuted, straight[:, order], atol=1e-5) is not frame_positions


def test_the_loss_goes_down_on_a_fixed_batch():
    config = preset("tiny")
    torch.manual_seed(0)
    teacher = Teacher(config)
    latent, pose, reference = _clips(config, clips=2, frames=2)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0.3, 0.6])

    def loss() -> torch.Tensor:
        return velocity_loss(teacher(add_noise(latent, noise, t), t, pose, reference), latent, t)

    before = loss().item()
    optimizer = torch.optim.AdamW(teacher.parameters(), lr=2e-3)
    for _ in range(25):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert loss().item() < 0.5 * before


class _Oracle(torch.nn.Module):
    """Predicts a fixed clip whatever it is given (the sampler must land on it exactly)."""

    def __init__(self, target: torch.Tensor, config) -> None:
        super().__init__()
        self.target, self.config = target, config

    def forward(self, latent, timestep, pose, reference):
        return self.target[:, :latent.shape[1]].expand(latent.shape[0], -1, -1, -1, -1).clone()


def test_the_euler_sampler_lands_on_the_prediction():
    config = preset("tiny").with_(chunk_frames=4)
    target = torch.randn(1, 1, 4, 32, 32).expand(1, 10, -1, -1, -1)  # the same frame everywhere: any window fits
    noise = torch.randn(1, 10, 4, 32, 32)
    pose = torch.zeros(1, 10, 256, 256, 3, dtype=torch.uint8)
    for steps in (1, 3, 25):
        out = euler_sample(_Oracle(target, config), pose, torch.zeros(1, 4, 32, 32), noise, steps, overlap=2)
        assert out.shape == noise.shape and torch.allclose(out, target, atol=1e-5)
    with pytest.raises(ValueError, match="at least 1"):
        euler_sample(_Oracle(target, config), pose, torch.zeros(1, 4, 32, 32), noise, 0)


class _PoseOracle(torch.nn.Module):
    """Predicts ``target`` where the pose maps are drawn and zeros where they are black (the pose-free call)."""

    def __init__(self, target: torch.Tensor, config) -> None:
        super().__init__()
        self.target, self.config = target, config
        self.calls = 0

    def forward(self, latent, timestep, pose, reference):
        self.calls += 1
        drawn = (pose.flatten(2).amax(dim=2) > 0).float()[:, :, None, None, None]
        return self.target[:, :latent.shape[1]].expand(latent.shape[0], -1, -1, -1, -1) * drawn


def test_pose_guidance_extrapolates_from_the_pose_free_prediction():
    config = preset("tiny").with_(chunk_frames=4)
    target = torch.randn(1, 1, 4, 32, 32).expand(1, 4, -1, -1, -1)
    noise = torch.randn(1, 4, 4, 32, 32)
    pose = torch.full((1, 4, 256, 256, 3), 7, dtype=torch.uint8)
    plain, guided_oracle = _PoseOracle(target, config), _PoseOracle(target, config)
    assert torch.allclose(euler_sample(plain, pose, torch.zeros(1, 4, 32, 32), noise, 1, guidance=1.0), target)
    out = euler_sample(guided_oracle, pose, torch.zeros(1, 4, 32, 32), noise, 1, guidance=2.5)
    assert torch.allclose(out, 2.5 * target, atol=1e-5)  # x̂_u + 2.5 (x̂_c - x̂_u) with x̂_u = 0
    assert (plain.calls, guided_oracle.calls) == (1, 2)
    assert torch.equal(guided(target, torch.zeros_like(target), 1.0), target)


def test_a_real_teacher_samples_streams_longer_than_its_clips():
    config = preset("tiny").with_(chunk_frames=2)
    teacher = randomize_(Teacher(config), seed=2).eval()
    latent, pose, reference = _clips(config, clips=1, frames=5)
    out = euler_sample(teacher, pose, reference, latent, steps=3, overlap=1)
    assert out.shape == latent.shape and torch.isfinite(out).all()


def test_training_runs_resumes_continues_and_evaluates(tmp_path, small_bank, heldout_bank,  # noqa: F811
                                                        autoencoder_weights, capsys):
    banks = small_bank.save(tmp_path / "train.npz"), heldout_bank.save(tmp_path / "heldout.npz")
    out = tmp_path / "run"
    common = ["--bank", str(banks[0]), "--heldout-bank", str(banks[1]), "--autoencoder", str(autoencoder_weights),
              "--out", str(out), "--preset", "tiny", "--frames", "2", "--minutes", "0.02", "--batch-clips", "2",
              "--workers", "0", "--reuse", "1", "--warmup-steps", "2", "--log-seconds", "0"]
    assert train_teacher([*common, "--eval-clips", "2", "--eval-steps", "2,1", "--video-segments", "1"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    steps = report["steps"]
    assert steps > 0 and len(report["history"]) == steps
    assert set(report["heldout"]["teacher"]) == {"2", "1"} and report["heldout"]["teacher"]["2"]["frames"] == 4
    for figures in (report["heldout"]["teacher"]["2"], report["heldout"]["autoencoder_ceiling"],
                    report["heldout"]["warped_reference_floor"]):
        assert 0 < figures["psnr_db"] < 60 and 0 < figures["ssim"] <= 1 and figures["mae_mouth"] >= 0
    assert (out / "samples.png").stat().st_size < 2_000_000
    assert report["heldout"]["closeups"]["file"] == "closeups.png" and (out / "closeups.png").is_file()
    closeups = cv2.imread(str(out / "closeups.png"))  # mouth, right hand, left hand: truth, autoencoder, teacher
    assert closeups.shape[1] == 9 * CLOSEUP_TILE
    own_frame = report["heldout"]["own_frame_attention"]  # a fresh teacher has frame positions
    assert len(own_frame) == preset("tiny").depth and all(np.isfinite(own_frame))
    assert report["config"]["limbs_leaving_frame"] and report["config"]["face_contours"]  # the preset's maps
    assert sum(f["frames"] for f in report["heldout"]["by_framing"].values()) == 4
    video = report["heldout"]["video"]
    assert video["frames"] == 40 and video["audio"] == ["speech demo-5"]
    import av

    with av.open(str(out / "sample.mp4")) as container:
        assert {s.type for s in container.streams} == {"video", "audio"}
        assert abs(container.duration / 1e6 - 1.6) < 0.1
    teacher, checkpoint = load_teacher(out / "teacher_ema")
    assert checkpoint.meta["step"] == steps and checkpoint.meta["config"]["width"] == 128

    quick = ["--eval-clips", "1", "--eval-steps", "1", "--video-segments", "0"]
    assert train_teacher([*common, *quick, "--resume", str(out / "resume" / "teacher_resume")]) == 0
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["steps"] > steps and resumed["history"][:steps] == report["history"]
    switched = [*common, *quick, "--no-limbs-leaving-frame", "--no-face-contours"]
    assert train_teacher([*switched, "--resume", str(out / "resume" / "teacher_resume")]) == 1
    assert "Use --init to switch the pose maps" in capsys.readouterr().err
    assert json.loads((out / "metrics.json").read_text()) == resumed  # the refused resume changed nothing
    assert train_teacher([*switched, "--init", str(out / "teacher_ema")]) == 0
    continued = json.loads((out / "metrics.json").read_text())
    assert continued["steps"] > resumed["steps"] and len(continued["history"]) == continued["steps"]
    assert not continued["config"]["limbs_leaving_frame"] and not continued["config"]["face_contours"]


def test_a_fresh_teacher_with_the_aligned_reference_trains_with_pose_dropout_and_scores_guidance(
        tmp_path, small_bank, heldout_bank, autoencoder_weights, capsys):  # noqa: F811
    banks = small_bank.save(tmp_path / "train.npz"), heldout_bank.save(tmp_path / "heldout.npz")
    out = tmp_path / "run"
    assert train_teacher(["--bank", str(banks[0]), "--heldout-bank", str(banks[1]), "--autoencoder",
                          str(autoencoder_weights), "--out", str(out), "--preset", "tiny", "--frames", "2",
                          "--minutes", "0.02", "--batch-clips", "2", "--workers", "0", "--reuse", "1",
                          "--warmup-steps", "2", "--log-seconds", "0", "--aligned-reference", "--pose-dropout", "0.5",
                          "--eval-clips", "1", "--eval-steps", "1", "--eval-guidance", "2", "--video-segments", "0"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["heldout"]["teacher"]) == {"1", "1g2"}
    assert report["config"]["aligned_reference"] is True and report["args"]["pose_dropout"] == "0.5"
    teacher, _ = load_teacher(out / "teacher_ema")
    assert teacher.config.aligned_reference and teacher.transformer.reference_align is not None

    # the evaluation on its own (the CLI), then given a broken bank and a missing teacher
    evaluation = ["evaluate", "--teacher", str(out / "teacher_ema"), "--autoencoder", str(autoencoder_weights),
                  "--heldout-bank", str(banks[1]), "--out", str(tmp_path / "eval"), "--clips", "1", "--steps", "1",
                  "--video-segments", "0"]
    assert evaluate_teacher(evaluation) == 0
    assert json.loads((tmp_path / "eval" / "eval.json").read_text())["teacher"]["1"]["frames"] == 2
    assert "evaluating" in capsys.readouterr().err  # the progress bar
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a motion bank")
    assert evaluate_teacher([*evaluation[:5], "--heldout-bank", str(broken), *evaluation[7:]]) == 1
    assert "broken.npz" in capsys.readouterr().err
    assert evaluate_teacher(["evaluate", "--teacher", str(tmp_path / "none" / "teacher_ema"), *evaluation[3:]]) == 1
    assert "teacher_ema" in capsys.readouterr().err


def test_a_teacher_grows_a_warped_reference_with_init_and_distillation_refuses_it(
        tmp_path, small_bank, heldout_bank, autoencoder_weights, capsys):  # noqa: F811
    banks = small_bank.save(tmp_path / "train.npz"), heldout_bank.save(tmp_path / "heldout.npz")
    common = ["--bank", str(banks[0]), "--heldout-bank", str(banks[1]), "--autoencoder", str(autoencoder_weights),
              "--preset", "tiny", "--frames", "2", "--minutes", "0.02", "--batch-clips", "2", "--workers", "0",
              "--reuse", "1", "--warmup-steps", "2", "--log-seconds", "0", "--eval-clips", "1", "--eval-steps", "1"]
    assert train_teacher([*common, "--out", str(tmp_path / "plain"), "--video-segments", "0"]) == 0
    grown = [*common, "--out", str(tmp_path / "warped"), "--warped-reference", "--eval-guidance", "2",
             "--video-segments", "1"]
    assert train_teacher([*grown, "--init", str(tmp_path / "plain" / "teacher_ema")]) == 0
    report = json.loads((tmp_path / "warped" / "metrics.json").read_text())
    assert report["config"]["warped_reference"] and set(report["heldout"]["teacher"]) == {"1", "1g2"}
    assert "error" not in report["heldout"]["video"]  # the video's stream was warped too
    teacher, _ = load_teacher(tmp_path / "warped" / "teacher_ema")
    assert teacher.transformer.reference_warp is not None
    with pytest.raises(SystemExit):
        train_teacher([*grown, "--resume", str(tmp_path / "warped" / "resume" / "teacher_resume")])
    assert "use --init to add --warped-reference" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="warped_reference"):
        load_teacher(tmp_path / "warped" / "teacher_ema", to_distil=True)


def test_training_runs_on_two_processes_under_torchrun(tmp_path, small_bank, heldout_bank,  # noqa: F811
                                                       autoencoder_weights):
    """The multi-GPU path (DistributedDataParallel, one process per device, rank 0 writing) through torchrun,
    here with two CPU processes and gloo; the GPU machines run the same code with NCCL."""
    import subprocess
    import sys

    banks = small_bank.save(tmp_path / "train.npz"), heldout_bank.save(tmp_path / "heldout.npz")
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "training.train_teacher", "--bank", str(banks[0]), "--heldout-bank", str(banks[1]),
               "--autoencoder", str(autoencoder_weights), "--out", str(out), "--preset", "tiny", "--frames", "2",
               "--minutes", "0.03", "--batch-clips", "2", "--workers", "0", "--reuse", "1", "--warmup-steps", "2",
               "--log-seconds", "0", "--eval-clips", "1", "--eval-steps", "1", "--video-segments", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads((out / "metrics.json").read_text())
    assert report["steps"] > 0 and report["gpus"] == 2, report.get("gpus")
    teacher, checkpoint = load_teacher(out / "teacher_ema")
    assert checkpoint.meta["step"] == report["steps"]


def test_training_refuses_broken_inputs(tmp_path, small_bank, capsys):  # noqa: F811
    bank = small_bank.save(tmp_path / "train.npz")
    args = ["--bank", str(bank), "--heldout-bank", str(bank), "--out", str(tmp_path / "run"), "--preset", "tiny"]
    assert train_teacher([*args, "--autoencoder", str(tmp_path / "missing")]) == 1
    assert "no checkpoint named 'missing'" in capsys.readouterr().err
    save_checkpoint(tmp_path, "teacher_like", {"x": torch.zeros(1)}, meta={"kind": "teacher"})
    assert train_teacher([*args, "--autoencoder", str(tmp_path / "teacher_like")]) == 1
    assert "not an autoencoder" in capsys.readouterr().err
    for bad in (["--resume", "a", "--init", "b"], ["--pose-dropout", "1"], ["--pose-dropout", "-0.1"],
                ["--eval-guidance", "strong"], ["--eval-guidance", "0"], ["--aligned-reference", "--init", "b"],
                ["--no-frame-positions", "--resume", "a"]):
        with pytest.raises(SystemExit):
            train_teacher([*args, "--autoencoder", "x", *bad])
    assert "--aligned-reference and --no-frame-positions shape a fresh teacher" in capsys.readouterr().err
    save_checkpoint(tmp_path, "ae_like", {"model": {}}, meta={"kind": "autoencoder"})
    with pytest.raises(CheckpointError, match="not a teacher"):
        load_teacher(tmp_path / "ae_like")


def test_the_video_archive_becomes_an_mp4_with_speech(tmp_path, heldout_bank):
    segment = VideoSegment(stream=1, speech="demo-5", identity_seed=7, frames=10)
    frames = [np.full((10, 256, 256, 3), 120, np.uint8)]
    archive = tmp_path / "sample_video.npz"
    write_video_archive(archive, [segment], frames, 25.0, "teacher (25 steps)", pose_style=FULL)
    info = video_from_archive(archive, heldout_bank)
    assert info["frames"] == 10 and info["audio"] == ["speech demo-5"] and (tmp_path / "sample.mp4").is_file()
    foreign = tmp_path / "foreign.npz"
    write_video_archive(foreign, [VideoSegment(5, "demo-5", 7, 10)], frames, 25.0, "x", pose_style=DWPOSE)
    with pytest.raises(InputFileError, match="not in this held-out bank"):
        video_from_archive(foreign, heldout_bank)
    (tmp_path / "broken.npz").write_bytes(b"nope")
    with pytest.raises(InputFileError, match="not a readable teacher video archive"):
        video_from_archive(tmp_path / "broken.npz", heldout_bank)


def test_the_reuse_buffer_keeps_its_budget_and_draws_distinct_clips():
    buffer = ReuseBuffer(capacity=6, reuse=2, generator=torch.Generator().manual_seed(0))
    assert buffer.needs_fresh(2)
    buffer.add({"x": torch.arange(4)[:, None].float()})
    assert not buffer.needs_fresh(4)
    batch = buffer.sample(4)["x"].flatten()
    assert sorted(batch.tolist()) == [0, 1, 2, 3]
    buffer.sample(4)
    assert buffer.needs_fresh(1)  # 8 trained of 4 fresh: the budget of 2 is spent
    buffer.add({"x": torch.arange(4, 8)[:, None].float()})  # the ring overwrites the two oldest
    assert len(buffer) == 6 and sorted(buffer.sample(6)["x"].flatten().tolist()) == [2, 3, 4, 5, 6, 7]


def test_background_batches_pass_loader_errors_on():
    def loader():
        yield 1
        raise RuntimeError("worker 3 failed")

    feed = BackgroundBatches(loader())
    assert feed.get() == 1
    with pytest.raises(RuntimeError, match="worker 3 failed"):
        feed.get()
    feed.close()


def test_closing_background_batches_ends_their_thread_also_with_a_full_queue():
    import time

    def loader():
        for i in range(100):
            time.sleep(0.01)
            yield i

    feed = BackgroundBatches(loader(), depth=2)
    assert feed.get() == 0
    time.sleep(0.2)  # the queue fills up; the thread waits to put
    feed.close(timeout=5)
    assert not feed._thread.is_alive()

    finished = BackgroundBatches(iter([1]), depth=1)
    time.sleep(0.2)  # exhausted; the end marker waits for room behind the batch
    finished.close(timeout=5)
    assert not finished._thread.is_alive()


def test_the_scores_say_which_region_holds_the_squared_error():
    from training.synthetic.regions import REGION_BITS
    from training.teacher_eval import Scores

    truth = torch.zeros(1, 2, 3, 16, 16)
    output = truth.clone()
    output[:, :, :, 2:4, 2:4] = 0.5  # wrong only inside the mouth
    output[:, :, :, 10:12, 10:12] = 0.25  # and, a quarter as much a pixel, in the background
    masks = torch.full((1, 2, 16, 16), REGION_BITS["background"], dtype=torch.uint8)
    masks[:, :, 2:4, 2:4] = REGION_BITS["mouth"] | REGION_BITS["face"]
    scores = Scores()
    scores.add(output, truth, masks)
    share = scores.result()["error_share"]
    assert share["mouth"] == pytest.approx(0.8) and share["face"] == pytest.approx(0.8)  # overlapping regions
    assert share["background"] == pytest.approx(0.2) and share["torso"] == 0.0


def test_own_frame_attention_is_one_when_the_frames_cannot_be_told_apart():
    from training.teacher_eval import own_frame_attention

    latent, pose, reference = _clips(preset("tiny"), clips=1, frames=1)
    latent, pose = latent.expand(1, 3, -1, -1, -1).contiguous(), pose.expand(1, 3, -1, -1, -1).contiguous()
    ratios = {}
    for frame_positions in (False, True):
        teacher = randomize_(Teacher(preset("tiny").with_(frame_positions=frame_positions)), seed=4).eval()
        # at t = 1 the noise drops out: the three frames are identical but for their place in the clip
        with torch.no_grad():
            ratios[frame_positions] = own_frame_attention(teacher, latent, pose, reference, t=1.0)
    assert len(ratios[False]) == preset("tiny").depth
    np.testing.assert_allclose(ratios[False], 1.0, rtol=1e-5)
    assert all(abs(r - 1.0) > 1e-3 for r in ratios[True]), ratios[True]
    with pytest.raises(ValueError, match="at least 2 frames"):
        own_frame_attention(teacher, latent[:, :1], pose[:, :1], reference)


def test_close_ups_are_cut_around_the_parts_keypoints():
    from inference import keypoints as kp
    from training.teacher_eval import _cut, closeup_cut

    frame = np.zeros((134, 3), np.float32)
    hand = np.arange(kp.RIGHT_HAND.start, kp.RIGHT_HAND.stop)
    frame[hand, 0] = np.linspace(0.40, 0.60, 21)  # 51 px wide at 256
    frame[hand, 1] = 0.5
    frame[hand, 2] = 0.9
    x, y, side = closeup_cut(frame, kp.RIGHT_HAND, 256, least=48)
    assert side == round(0.2 * 256 * 1.5) and abs(x + side / 2 - 128) <= 1 and abs(y + side / 2 - 128) <= 1
    frame[hand[1:], 2] = 0.0  # one point left: the least side
    assert closeup_cut(frame, kp.RIGHT_HAND, 256, least=48)[2] == 48
    frame[hand, 2] = 0.0  # not seen, or seen only outside the frame: no cut
    assert closeup_cut(frame, kp.RIGHT_HAND, 256, least=48) is None
    frame[hand, :] = (1.3, 0.5, 0.9)
    assert closeup_cut(frame, kp.RIGHT_HAND, 256, least=48) is None
    image = np.full((256, 256, 3), 200, np.uint8)
    corner = _cut(image, (-20, -20, 40))  # half past the edges: black there, the frame elsewhere
    assert corner.shape == (CLOSEUP_TILE, CLOSEUP_TILE, 3)
    assert (corner[:60, :60] == 0).all() and (corner[70:, 70:] == 200).all()
    assert not _cut(image, None).any()
