"""The stream planner: bounded cache, slots never read and written in one call, stable positions."""

from __future__ import annotations

import numpy as np
import pytest

from inference.render.student.masks import TokenGrid
from inference.render.student.planner import StreamPlanner
from inference.render.student.sampling import chunk_noise, schedule, step_coefficients, validate_timesteps
from tests.student.poses import presenter_clip

GRID = TokenGrid(16, 16, 64)


def planner(sparse: bool) -> StreamPlanner:
    return StreamPlanner(grid=GRID, reference_tokens=256, chunk_size=2, cache_frames=6, top_k=3, keep_recent=1,
                         positions=3 if sparse else 6, sparse=sparse)


@pytest.mark.parametrize("sparse", [True, False])
def test_a_long_stream_keeps_the_cache_bounded_and_never_writes_a_slot_it_reads(sparse):
    plans = planner(sparse)
    clip = presenter_clip(120)
    for start in range(0, 120, 2):
        plan = plans.plan(clip[start:start + 2], start)
        bound = {s for s in plan.position_slots if s is not None}
        assert not bound & set(plan.destination_slots)
        assert len(plan.destination_slots) == 2
        assert all(index < start for index in plan.selected_frames)
        if sparse:
            assert plan.block_mask.shape == (8, 4 + (2 + 3) * 4)
            if plan.selected_frames:
                assert max(plan.selected_frames) == start - 1  # the newest frame is always kept
        else:
            filled = [s is not None for s in plan.position_slots]
            assert filled == sorted(filled, reverse=True)  # a prefix: the 1-D key length masks the rest
            assert plan.key_length == 256 + (2 + sum(filled)) * 256
        plans.commit(plan)
        assert len(plans.entries) <= 6
        assert len({e.slot for e in plans.entries}) == len(plans.entries) and max(e.slot for e in plans.entries) < 8
    assert [e.index for e in plans.entries] == list(range(114, 120))


def test_positions_stay_put_while_their_frame_stays_selected():
    plans = planner(sparse=False)
    clip = presenter_clip(20)
    previous = None
    for start in range(0, 20, 2):
        plan = plans.plan(clip[start:start + 2], start)
        if previous is not None:
            kept = [p for p, s in enumerate(previous) if s is not None and s in plan.position_slots]
            assert all(plan.position_slots[p] == previous[p] for p in kept)
        plans.commit(plan)
        previous = plan.position_slots


def test_reset_forgets_the_stream():
    plans = planner(sparse=True)
    clip = presenter_clip(4)
    plans.commit(plans.plan(clip[:2], 0))
    plans.reset()
    assert plans.plan(clip[2:], 2).selected_frames == []


def test_schedules_and_their_updates():
    validate_timesteps((0.0,))
    for bad in ((), (0.2, 0.5), (0.0, 0.5, 0.3), (0.0, 1.0), (0.0, 0.2, 0.4, 0.6, 0.8)):
        with pytest.raises(ValueError):
            validate_timesteps(bad)
    x, z, noise = np.float32(2.0), np.float32(-1.0), np.float32(0.5)
    a, b, c = step_coefficients(0.25, 0.75, "euler")  # z_t = t x + (1 - t) eps lies on a straight line
    eps = (z - 0.25 * x) / 0.75
    assert a * x + b * z + c * noise == pytest.approx(0.75 * x + 0.25 * eps)
    assert tuple(step_coefficients(0.25, 0.75, "renoise")) == (0.75, 0.0, 0.25)
    assert [t for t, _ in schedule((0.0, 0.5), "renoise")] == [0.0, 0.5]
    assert tuple(schedule((0.0, 0.5), "euler")[-1][1]) == (1.0, 0.0, 0.0)  # the last step lands on x
    with pytest.raises(ValueError, match="unknown sampler"):
        step_coefficients(0.0, 1.0, "ddim")
    first = chunk_noise(np.random.default_rng(1), 3, (2, 4))
    assert len(first) == 3 and all((a == b).all() for a, b in zip(first, chunk_noise(np.random.default_rng(1), 3,
                                                                                         (2, 4)), strict=True))
