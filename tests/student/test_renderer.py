"""The student renderer end to end on the CPU EP with the tiny random pack, and what it says when it
cannot run."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from inference import ops
from inference.errors import CustomOpError, ModelLoadError
from inference.paths import default_portrait
from inference.render import student
from inference.sources.portrait import load_portrait
from inference.types import KeypointFrame
from tests.student.poses import presenter_clip


def keypoint_frames(first: int, count: int) -> list[KeypointFrame]:
    clip = presenter_clip(first + count)
    return [KeypointFrame(keypoints=clip[i], index=i, fps=25.0) for i in range(first, first + count)]


def test_keypoints_in_frames_out(tiny_pack, tmp_path):
    renderer = student.create((256, 256), pack=tiny_pack[0], device="cpu")
    assert (renderer.name, renderer.device, renderer.chunk_size, renderer.size) == ("student", "CPU", 2, (256, 256))
    renderer.set_reference(load_portrait(default_portrait()))
    frames = keypoint_frames(0, 5)
    out = renderer.render(frames[:2]) + renderer.render(frames[2:4]) + renderer.render(frames[4:])  # a short last chunk
    assert [f.index for f in out] == [0, 1, 2, 3, 4]
    assert all(f.rgb.shape == (256, 256, 3) and f.rgb.dtype == np.uint8 for f in out)
    assert out[0].meta["renderer"] == "student" and out[0].meta["chunk_ms"] > 0
    assert len({f.rgb.tobytes() for f in out}) == 5  # every frame is rendered, none repeated
    assert renderer.engine.last_plan.selected_frames == [3, 2]  # top-2 of the cache, the newest first
    sheet = np.concatenate([f.rgb for f in out], axis=1)
    assert cv2.imwrite(str(tmp_path / "student_frames.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    renderer.close()


def test_other_sizes_are_resized_and_a_restarted_stream_resets_the_cache(tiny_pack):
    renderer = student.create((192, 192), pack=tiny_pack[0], device="cpu", attention="dense")
    renderer.set_reference(np.zeros((300, 500, 3), np.uint8))  # any size: centre-cropped and resized
    assert renderer.render(keypoint_frames(0, 2))[0].rgb.shape == (192, 192, 3)
    renderer.render(keypoint_frames(2, 2))
    assert renderer.engine.last_plan.key_length == 256 * (1 + 2 + 2)
    renderer.render(keypoint_frames(50, 2))  # not the next index: a new stream
    assert renderer.engine.last_plan.key_length == 256 * (1 + 2)


def test_rendering_before_a_reference_is_refused(tiny_pack):
    renderer = student.create((256, 256), pack=tiny_pack[0], device="cpu")
    with pytest.raises(RuntimeError, match="set_reference"):
        renderer.render(keypoint_frames(0, 2))


def test_without_the_custom_op_the_fallback_graph_runs_and_a_pack_without_one_says_why(tiny_pack, tmp_path,
                                                                                      monkeypatch):
    from inference.packs import load_pack
    from inference.render.student.engine import StudentEngine

    monkeypatch.setattr(ops, "availability", lambda: (False, "custom op not built (test)"))
    assert StudentEngine(load_pack(tiny_pack[0]), provider="cpu").attention == "fallback"
    stripped = tmp_path / "pack"
    shutil.copytree(tiny_pack[0], stripped)
    manifest = (stripped / "manifest.json").read_text().replace('"student_fallback"', '"unused_graph"')
    (stripped / "manifest.json").write_text(manifest)
    with pytest.raises(ModelLoadError, match="unknown graph 'unused_graph'"):
        load_pack(stripped)
    import json

    data = json.loads((tiny_pack[0] / "manifest.json").read_text())
    del data["graphs"]["student_fallback"]
    (stripped / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(CustomOpError, match="custom op not built.*no fallback graph"):
        StudentEngine(load_pack(stripped), provider="cpu")


def test_availability_explains_what_is_missing(tiny_pack, tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(student, "_cuda_status", lambda: (False, "this ONNX Runtime was built without CUDA: ..."))
    monkeypatch.delenv(student.CPU_ENV, raising=False)
    ok, reason = student.availability()
    assert not ok and "needs an NVIDIA GPU: this ONNX Runtime was built without CUDA" in reason
    assert "PODIUM_STUDENT_CPU=1" in reason
    monkeypatch.setenv(student.CPU_ENV, "1")
    monkeypatch.setattr("inference.packs.ASSETS_DIR", tmp_path / "no-assets")
    ok, reason = student.availability()
    assert not ok and "no usable model pack" in reason
    with pytest.raises(ModelLoadError, match="no student model pack that runs on the CPU is installed"):
        student.create((256, 256), device="cpu")
    half = tmp_path / "packs" / "half"  # a pack of float16 graphs only (like the bundled one) needs CUDA
    shutil.copytree(tiny_pack[0], half)
    manifest = json.loads((half / "manifest.json").read_text())
    manifest["graphs"] = {graph: {"float16": files["float32"]} for graph, files in manifest["graphs"].items()}
    manifest["weights"] = {"float16": manifest["weights"]["float32"]}
    (half / "manifest.json").write_text(json.dumps(manifest))
    ok, reason = student.availability()
    assert not ok and "half: float16 graphs only (needs CUDA)" in reason
    shutil.rmtree(half)
    shutil.copytree(tiny_pack[0], tmp_path / "packs" / "tiny")
    ok, reason = student.availability()
    assert ok and "tiny-random 256x256" in reason and "CPU (slow)" in reason
    assert student.create((256, 256), device="cpu").engine.manifest.name == "tiny-random"
