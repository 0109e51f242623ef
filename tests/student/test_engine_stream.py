"""The engine's fixed-address data path: cached frames are copied into fixed position buffers (only when
a position's frame changes) and the chunk's keys and values out of fixed present buffers into slots.
Streams longer than the cache must still match the torch reference stream frame by frame; CUDA graphs
are a CUDA-only switch on top (refused on the CPU, dropped with a warning where they fail)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from inference.gpu import cuda_status
from inference.packs import load_pack
from inference.render.student.engine import StudentEngine
from tests.student.poses import presenter_clip, with_an_arm_below_the_frame

pytest.importorskip("torch", reason="the reference stream needs torch (the train extra)")

CHUNKS = 8  # 16 frames through a cache of 4 frames in 6 slots: slots are rewritten


def frame_difference(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


@pytest.mark.parametrize("attention", ["sparse", "dense"])
def test_a_stream_longer_than_the_cache_matches_the_torch_stream(tiny_pack, attention):
    from training.export_student import STREAM_TOLERANCE
    from training.models.student import TorchStream

    pack_path, student = tiny_pack
    engine = StudentEngine(load_pack(pack_path), provider="cpu", attention=attention, seed=5)
    reference = TorchStream(student.float().eval(), sparse=attention != "dense", seed=5)
    copy_calls: list[int] = []
    copy = engine.copier.copy
    engine.copier.copy = lambda copies: (copy_calls.append(len(copies)), copy(copies))
    portrait = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    engine.set_reference(portrait)
    reference.set_reference(portrait)
    clip = presenter_clip(CHUNKS * engine.frames)

    # What each position buffer should hold, (slot, frame) or None (zeros), and the copies that takes.
    held: list[object] = ["unknown"] * engine.planner.positions
    expected_calls, frames = [], []
    for c in range(CHUNKS + 3):
        if c == CHUNKS:  # a new stream over the same slots and positions renders what the first one did
            engine.reset()
        window = clip[(c % CHUNKS) * engine.frames:(c % CHUNKS + 1) * engine.frames]
        cached = {entry.slot: entry.index for entry in engine.planner.entries}
        ours, _ = engine.render_chunk(window)
        if c < CHUNKS:
            worst = frame_difference(ours, reference.render(window))
            assert worst <= STREAM_TOLERANCE[engine.precision], f"chunk {c}: {worst} of 255"
        else:
            assert np.array_equal(ours, frames[c - CHUNKS]), f"chunk {c - CHUNKS} of the second stream"
        frames.append(ours)
        now = [None if slot is None else (slot, cached[slot]) for slot in engine.last_plan.position_slots]
        expected_calls += [sum(a != b for a, b in zip(now, held, strict=True)), engine.frames]  # in, out
        held = now
    assert copy_calls == expected_calls
    if attention == "dense":  # every cached frame is bound; each chunk replaces two of four
        assert copy_calls[2:2 * CHUNKS:2] == [2] * (CHUNKS - 1)


@pytest.mark.parametrize("attention", ["sparse", "dense"])
def test_a_student_with_the_aligned_reference_streams_what_torch_streams(tiny_aligned_pack, attention):
    from training.export_student import STREAM_TOLERANCE
    from training.models.student import TorchStream

    pack_path, student = tiny_aligned_pack
    pack = load_pack(pack_path)
    assert pack.manifest.model.aligned_reference and pack.manifest.model.latent_channels == 8
    assert student.config.frame_positions and pack.manifest.model.pose_style == student.config.pose_style
    engine = StudentEngine(pack, provider="cpu", attention=attention, seed=3)
    reference = TorchStream(student.float().eval(), sparse=attention != "dense", seed=3)
    portrait = np.random.default_rng(2).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    engine.set_reference(portrait)
    reference.set_reference(portrait)
    clip = presenter_clip(4 * engine.frames)
    for c in range(4):
        window = clip[c * engine.frames:(c + 1) * engine.frames]
        worst = frame_difference(engine.render_chunk(window)[0], reference.render(window))
        assert worst <= STREAM_TOLERANCE[engine.precision], f"chunk {c}: {worst} of 255"


def test_the_engine_draws_the_pose_maps_its_pack_was_trained_on(tiny_pack, tmp_path):
    """A random tiny student barely reacts to its pose maps (frames differ by 1 level of 255 between the two kinds
    of map), so the stream comparisons above cannot see which maps the engine drew: look at them."""
    import json
    import shutil

    from inference.packs import MANIFEST
    from inference.render.pose_map import DWPOSE, FULL, PoseMapStyle, draw_pose_map

    window = with_an_arm_below_the_frame(presenter_clip(2))
    styles = [FULL, DWPOSE, PoseMapStyle(limbs_leaving_frame=True), PoseMapStyle(face_contours=True)]
    for k, style in enumerate(styles):
        folder = shutil.copytree(tiny_pack[0], tmp_path / f"pack{k}")
        manifest = json.loads((folder / MANIFEST).read_text())
        for name in ("limbs_leaving_frame", "face_contours"):  # absent: a pack trained before the field
            manifest["model"].pop(name)
            if getattr(style, name):
                manifest["model"][name] = True
        (folder / MANIFEST).write_text(json.dumps(manifest))
        pack = load_pack(folder)
        assert pack.manifest.model.pose_style == style
        engine = StudentEngine(pack, provider="cpu", attention="sparse", seed=0)
        engine.set_reference(np.zeros((256, 256, 3), np.uint8))
        engine._prepare(window)
        drawn = engine.staging.views["pose"]
        for f, frame in enumerate(window):
            assert np.array_equal(drawn[f], draw_pose_map(frame, (256, 256), style=style))
        for other in styles:
            if other != style:
                assert not np.array_equal(drawn[0], draw_pose_map(window[0], (256, 256), style=other))


@pytest.mark.parametrize("attention", ["sparse", "dense"])
def test_a_pipelined_stream_renders_what_chunk_by_chunk_does(tiny_pack, attention):
    """render_stream prepares chunk n+1 on its helper thread while chunk n runs, and renders the same frames."""
    import threading

    pack = load_pack(tiny_pack[0])
    clip = presenter_clip(CHUNKS * 2)
    chunks = [clip[i:i + 2] for i in range(0, len(clip), 2)]
    portrait = np.random.default_rng(3).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    frames = {}
    for pipelined in (False, True):
        engine = StudentEngine(pack, provider="cpu", attention=attention, seed=7)
        engine.set_reference(portrait)
        started = [threading.Event() for _ in chunks]  # started[c]: chunk c's preparation began
        threads: set[str] = set()
        done: list[np.ndarray] = []
        prepare, run = engine._prepare, engine._run

        def spy_prepare(keypoints, prepare=prepare, started=started, threads=threads):
            threads.add(threading.current_thread().name)
            started[sum(event.is_set() for event in started)].set()
            return prepare(keypoints)

        def spy_run(graph, index, run=run, started=started, engine=engine, done=done, pipelined=pipelined):
            # chunk c's first step waits until chunk c+1's preparation has begun: only an overlap lets it
            c = len(done)
            if pipelined and graph == engine.student_graph and index == 0 and c + 1 < len(chunks):
                assert started[c + 1].wait(timeout=10), f"chunk {c + 1} was not prepared while chunk {c} ran"
            run(graph, index)

        engine._prepare, engine._run = spy_prepare, spy_run
        if pipelined:
            for images, timings in engine.render_stream(chunks):
                done.append(images)
                assert timings.total > 0
            assert threads == {name for name in threads if name.startswith("student-prepare")}
        else:
            done += [engine.render_chunk(chunk)[0] for chunk in chunks]
        frames[pipelined] = np.concatenate(done)
        assert len(engine.planner.entries) == pack.manifest.cache_frames
    assert np.array_equal(frames[True], frames[False])


def test_cuda_graphs_are_refused_on_the_cpu(tiny_pack):
    pack = load_pack(tiny_pack[0])
    with pytest.raises(ValueError, match=r"cuda_graph=True needs provider='cuda'.*pass cuda_graph=None or False"):
        StudentEngine(pack, provider="cpu", cuda_graph=True)
    assert StudentEngine(pack, provider="cpu").graphed == set()  # the default: off on the CPU, no message


def test_the_student_engine_refuses_a_cuda_session_that_fell_back_to_the_cpu(tiny_pack, monkeypatch):
    from inference.errors import DeviceError
    from inference.render.student import engine as engine_module

    monkeypatch.setattr(engine_module, "cuda_status", lambda: (True, "CUDA"))  # as if the provider were fine
    monkeypatch.setattr(engine_module, "runs_on_cuda", lambda session: False)  # and then did not start
    with pytest.raises(DeviceError, match=r"could not run the \w+ graph .* on CUDA \(it fell back to the CPU\): "
                                          r"run installer/setup.sh --gpu"):
        engine_module.StudentEngine(load_pack(tiny_pack[0]), provider="cuda", attention="fallback")


class _FailsOnce:
    """A session whose first run fails as a CUDA graph capture can."""

    def __init__(self, session: object) -> None:
        self.session, self.failed = session, False

    def run_with_iobinding(self, binding: object, options: object = None) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("CUDA failure 900: operation not permitted when stream is capturing")
        self.session.run_with_iobinding(binding, options)


def test_a_session_whose_graph_capture_fails_is_rebuilt_without_graphs(tiny_pack, caplog):
    pack = load_pack(tiny_pack[0])
    clip = presenter_clip(6)
    frames = {}
    for failing in (False, True):
        engine = StudentEngine(pack, provider="cpu", attention="sparse", seed=2)
        engine.set_reference(np.full((256, 256, 3), 120, np.uint8))
        if failing:  # as if the student's session captured CUDA graphs and its first capture failed
            engine.graphed.add("student")
            engine.sessions["student"] = _FailsOnce(engine.sessions["student"])
        frames[failing] = np.concatenate([engine.render_chunk(clip[i:i + 2])[0] for i in range(0, 6, 2)])
    assert np.array_equal(frames[True], frames[False])
    assert engine.graphed == set() and not isinstance(engine.sessions["student"], _FailsOnce)
    (warning,) = [r for r in caplog.records if r.name == "inference.render.student.engine"]
    assert warning.levelno == logging.WARNING
    assert "student graph runs without CUDA graphs" in warning.getMessage()
    assert "operation not permitted when stream is capturing" in warning.getMessage()


class _SpyLock:
    """Counts how often the lock is taken, and how many hold it now."""

    def __init__(self) -> None:
        self.taken, self.held = 0, 0

    def __enter__(self) -> None:
        self.taken += 1
        self.held += 1

    def __exit__(self, *exc: object) -> None:
        self.held -= 1


def test_graph_captures_and_engine_builds_take_turns(tiny_pack, monkeypatch):
    """Building an engine and the first runs of each graphed binding (ONNX Runtime's warm-up runs and its capture)
    hold the process-wide lock, so no engine allocates while another captures; later replays do not take it."""
    from inference.render.student import engine as engine_module

    lock = _SpyLock()
    monkeypatch.setattr(engine_module, "GPU_SETUP_LOCK", lock)
    engine = StudentEngine(load_pack(tiny_pack[0]), provider="cpu", attention="sparse", seed=2)
    engine.set_reference(np.full((256, 256, 3), 120, np.uint8))
    assert lock.taken == 2 and lock.held == 0  # the build, the reference
    engine.graphed.update({"student", "decoder"})  # as if both sessions captured CUDA graphs
    clip = presenter_clip(10)
    for i in range(0, 10, 2):
        engine.render_chunk(clip[i:i + 2])
    bindings = 2 + 1 + 1  # a binding per step and the refresh; the decoder: five runs each, the first three locked
    assert lock.taken == 2 + bindings * engine_module.CAPTURE_RUNS and lock.held == 0


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_status()[0], reason=cuda_status()[1])
@pytest.mark.parametrize("attention", ["dense", "fallback"])  # the tiny pack is float32: no custom op on CUDA
def test_cuda_graphs_replay_the_same_frames(tiny_pack, attention):
    pack = load_pack(tiny_pack[0])
    clip = presenter_clip(CHUNKS * 2)
    frames = {}
    for cuda_graph in (False, True):
        engine = StudentEngine(pack, provider="cuda", attention=attention, seed=4, cuda_graph=cuda_graph)
        assert engine.graphed == ({engine.student_graph, "decoder"} if cuda_graph else set())
        engine.set_reference(np.full((256, 256, 3), 120, np.uint8))
        frames[cuda_graph] = np.concatenate([engine.render_chunk(clip[i:i + 2])[0] for i in range(0, len(clip), 2)])
        assert engine.graphed == ({engine.student_graph, "decoder"} if cuda_graph else set())  # captures worked
    assert frame_difference(frames[True], frames[False]) <= 1
