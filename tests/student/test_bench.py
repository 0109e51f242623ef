"""bench/student.py runs on the CPU at the tiny size and writes its results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import common
from bench import student as bench_student


def test_the_student_benchmark_runs_on_the_cpu(tiny_pack, tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    status = bench_student.main(["--pack", str(tiny_pack[0]), "--device", "cpu", "--seconds", "0.32", "--warmup", "1",
                                 "--profile", "--keypoints", "synthetic", "--name", "student-test"])
    assert status == 0
    (result,) = (tmp_path / "results").glob("*_student-test_*.json")
    figures = json.loads(result.read_text())["figures"]
    sparse, dense = figures["results"]
    assert (sparse["attention"], dense["attention"]) == ("sparse", "dense")
    for run in (sparse, dense):
        assert run["fps"] > 0 and run["chunk_p95_ms"] >= run["chunk_median_ms"] > 0
        assert run["split_ms_per_chunk"]["attention"] > 0 and run["split_ms_per_chunk"]["mask_building"] > 0
        assert run["split_ms_per_chunk"]["copies"] > 0
        assert (run["cuda_graph"], run["graphed_sessions"]) == ("off", [])  # the CPU default
    assert 0 < sparse["kept_block_fraction"] < 1 and dense["kept_block_fraction"] == 1
    assert sparse["keys_per_query"] < dense["keys_per_query"]


def test_cuda_graphs_are_benchmarked_on_cuda_only_and_compared(tiny_pack, capsys):
    with pytest.raises(SystemExit):
        bench_student.main(["--pack", str(tiny_pack[0]), "--device", "cpu", "--cuda-graph", "on,off"])
    assert "--cuda-graph on needs --device cuda" in capsys.readouterr().err
    results = [{"attention": a, "cuda_graph": g, "fps": fps}
               for a, g, fps in (("sparse", "on", 300.0), ("sparse", "off", 150.0), ("dense", "on", 200.0),
                                 ("dense", "off", 100.0))]
    assert bench_student.fps_ratios(results) == [
        "sparse / dense fps (CUDA graphs on): 1.50x", "sparse / dense fps (CUDA graphs off): 1.50x",
        "sparse: CUDA graphs on / off fps: 2.00x", "dense: CUDA graphs on / off fps: 2.00x"]


def test_live_latency_adds_the_wait_for_the_chunk_and_the_queue():
    # Chunks of 2 at 25 fps take 10 ms: the first frame of a chunk waits 40 ms for the second, then 10 ms.
    latencies = bench_student.live_latency([0.01, 0.01], frames=2, fps=25.0)
    assert [round(x, 3) for x in latencies] == [0.05, 0.01, 0.05, 0.01]
    # A chunk slower than the frame clock queues up.
    assert bench_student.live_latency([0.2, 0.2], frames=2, fps=25.0)[-1] > 0.2


def test_a_weightless_pack_gets_weights_back_and_streams(tiny_pack, tmp_path):
    from bench.gpu import weightless_pack
    from inference.packs import load_pack
    from inference.render.student.engine import StudentEngine
    from tests.student.poses import presenter_clip

    weightless_pack.strip(tiny_pack[0], tmp_path / "skeleton")
    skeleton_bytes = sum(p.stat().st_size for p in (tmp_path / "skeleton").iterdir())
    assert skeleton_bytes < sum(p.stat().st_size for p in tiny_pack[0].iterdir()) / 2
    weightless_pack.fill(tmp_path / "skeleton", tmp_path / "pack")
    pack = load_pack(tmp_path / "pack")
    assert not (tmp_path / "skeleton" / "weights_float32.bin").exists() and "weights_float32.bin" in pack.manifest.files
    engine = StudentEngine(pack, provider="cpu", attention="sparse")
    engine.set_reference(np.zeros((256, 256, 3), np.uint8))
    frames, _ = engine.render_chunk(presenter_clip(2))
    assert frames.shape == (2, 256, 256, 3)
