"""The student is trained streamed exactly as the runtime streams it, and the teacher's sparse clip attention is
the runtime's masks over a clip (training.distillation.rollout, clip_attention).

The training stream is compared with TorchStream, bit for bit; TorchStream is the ONNX Runtime engine's own
reference (tests/student check the engine against it), so the chain reaches the runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.render.pose_map import draw_pose_map
from inference.render.student import masks
from inference.render.student.planner import StreamPlanner
from tests.student.poses import presenter_clip
from training.distillation.clip_attention import (
    ClipAttention,
    ClipMaskSpec,
    clip_mask,
    frame_selection,
    spec_for,
)
from training.distillation.rollout import StreamRollout, encode_reference, runtime_noise
from training.models.attention import FullAttention, SparseAttention
from training.models.autoencoder import rgb_from_uint8, rgb_to_uint8
from training.models.config import preset
from training.models.student import Student, TorchStream, csr_tensors
from training.models.transformer import randomize_

CHUNKS = 5  # 10 frames: the tiny cache (4 frames, top-2) fills, selects and evicts


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def student() -> Student:
    torch.manual_seed(0)
    return randomize_(Student(preset("tiny")), seed=3).eval()


@pytest.fixture(scope="module")
def stream_inputs(student):
    config = student.config
    keypoints = presenter_clip(CHUNKS * config.chunk_frames)
    keypoints[6:8, :, 0] += 0.08  # a sideways step: the pose-similarity selection has to work
    pose = torch.from_numpy(np.stack([draw_pose_map(k, (config.size, config.size), style=config.pose_style)
                                      for k in keypoints]))
    portrait = np.random.default_rng(1).integers(0, 256, (config.size, config.size, 3), dtype=np.uint8)
    return keypoints, pose, portrait


def _rollout(student, keypoints, pose, portrait, seed=5):
    with torch.no_grad():
        latent = student.autoencoder.encode(rgb_from_uint8(torch.from_numpy(portrait)[None]))
        result = StreamRollout(student.transformer).run(encode_reference(student.transformer, latent), keypoints, pose,
                                                        noise=runtime_noise(seed))
        frames = rgb_to_uint8(student.autoencoder.decode(result.x0)).numpy()
    return result, frames


def test_the_training_stream_renders_what_the_torch_reference_stream_renders(student, stream_inputs):
    keypoints, pose, portrait = stream_inputs
    reference = TorchStream(student, sparse=True, seed=5)
    reference.set_reference(portrait)
    chunk = student.config.chunk_frames
    expected = np.concatenate([reference.render(keypoints[i:i + chunk]) for i in range(0, len(keypoints), chunk)])
    result, frames = _rollout(student, keypoints, pose, portrait)
    np.testing.assert_array_equal(frames, expected)
    assert [p.selected_frames for p in result.plans] == [p.selected_frames for p in reference.plans]
    assert any(len(p.selected_frames) == student.config.top_k for p in result.plans[2:])


def test_the_training_stream_uses_the_runtime_planners_masks_and_the_shared_mask_functions(student, stream_inputs):
    """Each chunk's attention is the block mask of masks.py for these poses: layouts from rasterise_regions /
    layout_frame, the top-K of the cached frames by Procrustes distance, build_block_mask."""
    keypoints, pose, portrait = stream_inputs
    config = student.config
    result, _ = _rollout(student, keypoints, pose, portrait)
    engine_planner = StreamPlanner(grid=config.grid, reference_tokens=config.tokens_per_frame,
                                   chunk_size=config.chunk_frames, cache_frames=config.cache_frames,
                                   top_k=config.top_k, keep_recent=config.keep_recent, positions=config.top_k,
                                   sparse=True, aspect=1.0)  # as inference/render/student/engine.py builds it
    chunk, grid = config.chunk_frames, config.grid
    layouts = [masks.layout_frame(masks.rasterise_regions(k, grid), grid) for k in keypoints]
    xy, visible = masks.upper_body_points(keypoints)
    for c, (plan, attention) in enumerate(zip(result.plans, result.attentions, strict=True)):
        frames = slice(c * chunk, (c + 1) * chunk)
        runtime_plan = engine_planner.plan(keypoints[frames], c * chunk)
        engine_planner.commit(runtime_plan)
        np.testing.assert_array_equal(plan.block_mask, runtime_plan.block_mask)
        np.testing.assert_array_equal(plan.order, runtime_plan.order)
        assert plan.selected_frames == runtime_plan.selected_frames
        # the shared functions, applied directly
        order, _ = masks.chunk_token_order(layouts[frames])
        np.testing.assert_array_equal(plan.order, order)
        cached = list(range(max(0, c * chunk - config.cache_frames), c * chunk))
        if cached:
            distances = masks.procrustes_distances(xy[frames], visible[frames], xy[cached], visible[cached])
            picked = masks.select_past_frames(distances, c * chunk - np.array(cached), config.top_k, config.keep_recent)
            assert sorted(plan.selected_frames) == sorted(cached[i] for i in picked)
        bound = _bound_frames(plan)
        past_bits = np.zeros((config.top_k, grid.blocks), np.uint8)
        for p, frame in enumerate(bound):
            if frame is not None:
                past_bits[p] = layouts[frame].block_bits
        allowed = np.array([[frame is not None for frame in bound]] * chunk)
        expected = masks.build_block_mask(np.stack([layouts[f].block_bits for f in range(frames.start, frames.stop)]),
                                          past_bits, allowed, config.tokens_per_frame // grid.block_size)
        np.testing.assert_array_equal(plan.block_mask, expected)
        # and what the transformer was handed is that mask
        assert isinstance(attention, SparseAttention)
        row_ptr, col_idx = csr_tensors(expected)
        assert torch.equal(attention.row_ptr, row_ptr) and torch.equal(attention.col_idx, col_idx)


def _bound_frames(plan):
    """The frame bound at each past position of a plan (None: an empty position)."""
    frames = iter(plan.selected_frames)
    return [next(frames) if slot is not None else None for slot in plan.position_slots]


def test_teacher_forcing_predicts_every_step_and_fills_the_cache_from_the_context(student, stream_inputs):
    keypoints, pose, portrait = stream_inputs
    config = student.config
    frames = 4
    shape = (len(config.timesteps), frames, config.latent_channels, config.latent_size, config.latent_size)
    forced = torch.randn(shape)
    context = torch.randn(shape[1:])
    with torch.no_grad():
        latent = student.autoencoder.encode(rgb_from_uint8(torch.from_numpy(portrait)[None]))
        reference = encode_reference(student.transformer, latent)
        rollout = StreamRollout(student.transformer)
        a = rollout.run(reference, keypoints[:frames], pose[:frames], forced=forced, context=context)
        b = rollout.run(reference, keypoints[:frames], pose[:frames], forced=forced, context=context + 1)
    assert a.predictions.shape == shape
    assert torch.equal(a.x0, a.predictions[-1])
    assert torch.equal(a.predictions[:, :2], b.predictions[:, :2])  # the first chunk has no past
    assert not torch.allclose(a.predictions[:, 2:], b.predictions[:, 2:])  # the second reads the context's cache
    with pytest.raises(ValueError, match="whole number"):
        rollout.run(reference, keypoints[:3], pose[:3], forced=forced[:, :3])
    with pytest.raises(ValueError, match="either noise"):
        rollout.run(reference, keypoints[:2], pose[:2])


def test_clips_streamed_side_by_side_are_each_what_they_are_alone(student, stream_inputs):
    """run_batch (one network call per chunk and step for all clips) against run (one clip at a time), both ways
    of streaming: teacher forcing with a context, and self rollout with noise and exit steps."""
    keypoints, pose, portrait = stream_inputs
    other = keypoints.copy()
    other[:, :, 1] += 0.05  # a second clip whose poses (and so selections and masks) differ
    other[2:5, :, 0] -= 0.1
    size = (student.config.size,) * 2
    other_pose = torch.from_numpy(np.stack([draw_pose_map(k, size, style=student.config.pose_style) for k in other]))
    clips = np.stack([keypoints, other])
    poses = torch.stack([pose, other_pose])
    transformer = student.transformer
    config = student.config
    latent_shape = (config.latent_channels, config.latent_size, config.latent_size)
    g = torch.Generator().manual_seed(7)
    forced = torch.randn(2, len(config.timesteps), len(keypoints), *latent_shape, generator=g)
    context = torch.randn(2, len(keypoints), *latent_shape, generator=g)
    noise = torch.randn(len(config.timesteps), 2, len(keypoints), *latent_shape, generator=g)
    chunk = config.chunk_frames
    exits = [1, 0, 1, 1, 0]

    def noise_of(clip_indices):  # the same noise per clip whichever way the clips are streamed
        calls = iter(range(len(keypoints) // chunk))

        def draw(steps, shape):
            c = next(calls)
            return [noise[i, clip_indices, c * chunk:(c + 1) * chunk].flatten(0, 1) for i in range(steps)]
        return draw

    with torch.no_grad():
        portraits = rgb_from_uint8(torch.from_numpy(np.stack([portrait, portrait[::-1].copy()])))
        latents = student.autoencoder.encode(portraits)
        rollout = StreamRollout(transformer)
        both = rollout.run_batch(encode_reference(transformer, latents), clips, poses, forced=forced, context=context)
        free = rollout.run_batch(encode_reference(transformer, latents), clips, poses, noise=noise_of([0, 1]),
                                 exit_steps=exits)
        for b in range(2):
            reference = encode_reference(transformer, latents[b:b + 1])
            alone = rollout.run(reference, clips[b], poses[b], forced=forced[b], context=context[b])
            assert torch.allclose(both.predictions[b], alone.predictions, atol=1e-5)
            alone = rollout.run(reference, clips[b], poses[b], noise=noise_of([b]), exit_steps=exits)
            assert torch.allclose(free.x0[b], alone.x0, atol=1e-5)
    assert not torch.allclose(both.predictions[0], both.predictions[1])


@pytest.mark.parametrize("aligned", [False, True], ids=["in-context reference", "aligned reference too"])
def test_clip_attention_is_the_forward_pass_over_the_clips_region_layout(aligned):
    """The teacher's batched clip attention (denoise_clips + ClipAttention) computes what the student graph
    computes over the whole clip with the layout as token order and the block mask (the exported teacher)."""
    config = preset("tiny").with_(chunk_frames=4, aligned_reference=aligned)
    transformer = randomize_(Student(config), seed=4).transformer.eval()
    keypoints = np.stack([presenter_clip(4), presenter_clip(12)[8:]])
    pose = torch.from_numpy(np.stack([[draw_pose_map(k, (256, 256), style=config.pose_style) for k in clip]
                                      for clip in keypoints]))
    generator = torch.Generator().manual_seed(0)
    latent = torch.randn(2, 4, 4, 32, 32, generator=generator)
    reference = torch.randn(2, 4, 32, 32, generator=generator)
    t = torch.tensor([[0.3] * 4, [0.6] * 4])
    for mask in ("global", "local"):
        spec = spec_for(config, mask)
        with torch.no_grad():
            batched = transformer.denoise_clips(latent, t, pose, reference, ClipAttention.for_clips(keypoints, spec))
            for b in range(2):
                one = clip_mask(keypoints[b], spec)
                encoded = transformer.encode_reference(reference[b:b + 1], FullAttention())
                assert (encoded.tokens is not None) == aligned
                row_ptr, col_idx = csr_tensors(one.block_mask)
                single, _ = transformer(latent[b], t[b], pose[b], encoded, [], torch.from_numpy(one.order),
                                        torch.from_numpy(one.restore), SparseAttention(row_ptr, col_idx, 64))
                torch.testing.assert_close(batched[b], single, rtol=1e-4, atol=1e-4)


def test_the_clip_masks_select_frames_by_pose_and_keep_regions_apart():
    keypoints = presenter_clip(8)
    keypoints[5] = keypoints[0]  # frame 5 repeats frame 0's pose exactly
    both = frame_selection(keypoints, 2)
    causal = frame_selection(keypoints, 2, causal=True)
    assert both.sum(axis=1).tolist() == [2] * 8 and not both.diagonal().any()
    assert both[0, 5] and both[5, 0]  # the identical pose is among the nearest, both ways
    assert not np.triu(causal).any() and causal[5, 0]  # only earlier frames
    assert causal.sum(axis=1).tolist() == [0, 1, 2, 2, 2, 2, 2, 2]
    config = preset("tiny")
    spec = ClipMaskSpec(config.grid, config.tokens_per_frame, "local", top_k=2)
    local = clip_mask(keypoints, spec).block_mask
    whole = clip_mask(keypoints, ClipMaskSpec(config.grid, config.tokens_per_frame, "global", top_k=2)).block_mask
    assert local.shape == whole.shape == (8 * config.grid.blocks, (1 + 8) * config.grid.blocks)
    assert (local <= whole).all() and local.sum() < whole.sum()  # local only removes blocks
    with pytest.raises(ValueError, match="unknown attention mask"):
        ClipMaskSpec(config.grid, config.tokens_per_frame, "everything")
