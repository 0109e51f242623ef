"""The model-pack loader: a good pack loads; every way a pack can be wrong gives a clear message and
leaves the pack's files as they were."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from inference.errors import ModelLoadError
from inference.packs import MANIFEST, find_packs, load_pack


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def pack_copy(tiny_pack, tmp_path) -> Path:
    copy = tmp_path / "pack"
    shutil.copytree(tiny_pack[0], copy)
    return copy


def edit_manifest(pack: Path, **changes: object) -> None:
    data = json.loads((pack / MANIFEST).read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    (pack / MANIFEST).write_text(json.dumps(data))


def test_a_good_pack_loads_with_its_settings(tiny_pack):
    pack = load_pack(tiny_pack[0])
    manifest = pack.manifest
    assert manifest.resolution == (256, 256) and manifest.token_grid == (16, 16) and manifest.tokens_per_frame == 256
    assert set(pack.precisions("student")) == {"float32"}
    assert Path(pack.graph_source("student", "float32")).is_file()


@pytest.mark.parametrize(("change", "message"), [
    ({"name": None}, "'name' is missing"),
    ({"fps": "fast"}, "'fps' is 'fast', expected a number"),
    ({"format": 99}, "format 99, this Podium reads format 2"),
    ({"kind": "voice"}, "not an 'iasa-student' pack"),
    ({"keypoint_layout": "coco-17"}, "keypoint_layout is 'coco-17'"),
    ({"steps": 3}, "steps is 3 but timesteps lists 2"),
    ({"timesteps": [0.5, 0.2]}, "timesteps must start at 0 and increase"),
    ({"sampler": "ddim"}, "sampler is 'ddim'"),
    ({"block_size": 32}, "block_size is 32"),
    ({"resolution": [250, 250]}, "not a multiple of 16 pixels"),
    ({"top_k": 99}, "top_k (99) <= cache_frames"),
    ({"graphs": {"student": {"float32": "student.onnx"}}}, "lacks the encoder, reference, decoder graph"),
    ({"graphs": {"encoder": {"int8": "e.onnx"}}}, "must map precisions"),
    ({"files": {"student.onnx": "abc"}}, "not 64 lowercase hex digits"),
    ({"weights": {"float32": "elsewhere.bin"}}, "the float32 weights are 'elsewhere.bin', which has no sha256"),
    ({"weights": {"int8": "weights.bin"}}, "'weights' is"),
    ({"weights": ["weights.bin"]}, "'weights' is"),
])
def test_bad_manifests_are_named_field_by_field(pack_copy, change, message):
    edit_manifest(pack_copy, **change)
    before = snapshot(pack_copy)
    with pytest.raises(ModelLoadError) as error:
        load_pack(pack_copy)
    assert message in str(error.value)
    assert any(fix in str(error.value) for fix in ("rebuild the pack", "update Podium", "pick an IASA student pack"))
    assert snapshot(pack_copy) == before


@pytest.mark.parametrize("field", ["limbs_leaving_frame", "face_contours"])
def test_the_pose_maps_a_pack_was_trained_on_are_read_from_its_model(pack_copy, field):
    """``model.limbs_leaving_frame`` and ``model.face_contours``: absent in packs made before them (trained
    without), a boolean otherwise."""
    assert getattr(load_pack(pack_copy).manifest.model, field)  # the tiny preset's maps
    data = json.loads((pack_copy / MANIFEST).read_text())
    del data["model"][field]
    (pack_copy / MANIFEST).write_text(json.dumps(data))
    assert not getattr(load_pack(pack_copy).manifest.model, field)
    data["model"][field] = "yes"
    (pack_copy / MANIFEST).write_text(json.dumps(data))
    before = snapshot(pack_copy)
    with pytest.raises(ModelLoadError, match=field):
        load_pack(pack_copy)
    assert snapshot(pack_copy) == before


def test_a_newer_op_version_asks_for_a_newer_podium(pack_copy):
    edit_manifest(pack_copy, op_version=99)
    with pytest.raises(ModelLoadError, match="needs the ai.podium ops version 99, this Podium has version 2; "
                                             "update Podium"):
        load_pack(pack_copy)


def test_unreadable_missing_and_absent_manifests(pack_copy, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_pack(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="neither a folder nor a zip"):
        load_pack(tmp_path / "notes.txt")
    (pack_copy / MANIFEST).write_text("{ not json")
    with pytest.raises(ModelLoadError, match="cannot be read as JSON"):
        load_pack(pack_copy)
    (pack_copy / MANIFEST).unlink()
    with pytest.raises(ModelLoadError, match="has no manifest.json"):
        load_pack(pack_copy)


def test_a_missing_file_and_a_changed_file(pack_copy):
    (pack_copy / "decoder.onnx").unlink()
    with pytest.raises(ModelLoadError, match="the file decoder.onnx is missing"):
        load_pack(pack_copy)
    shutil.copyfile(pack_copy / "encoder.onnx", pack_copy / "decoder.onnx")
    with pytest.raises(ModelLoadError, match="decoder.onnx is damaged or was changed .*download or rebuild"):
        load_pack(pack_copy)


def test_wrong_shapes_are_found_when_the_graphs_load(pack_copy):
    from inference.render.student.engine import StudentEngine

    data = json.loads((pack_copy / MANIFEST).read_text())
    data["model"]["latent_channels"] = 8
    (pack_copy / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match=r"encoder graph's input image|graph's output latent has shape "
                                             r"\[1, 4, 32, 32\], the manifest implies \[1, 8, 32, 32\]"):
        StudentEngine(load_pack(pack_copy), provider="cpu", attention="sparse")


def test_a_graph_from_another_pack_is_refused(pack_copy):
    from inference.render.student.engine import StudentEngine

    shutil.copyfile(pack_copy / "decoder.onnx", pack_copy / "student.onnx")
    data = json.loads((pack_copy / MANIFEST).read_text())
    data["files"]["student.onnx"] = hashlib.sha256((pack_copy / "student.onnx").read_bytes()).hexdigest()
    (pack_copy / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="the student graph has no input 'noise'"):
        StudentEngine(load_pack(pack_copy), provider="cpu", attention="sparse")


def test_graphs_share_one_copy_of_their_weights(tiny_pack):
    """The student, fallback, dense and reference graphs all hold the transformer: the pack stores it once."""
    from training.distillation.packaging import parameter_counts

    pack = load_pack(tiny_pack[0])
    assert pack.manifest.weights == {"float32": "weights_float32.bin"}
    counts = parameter_counts(tiny_pack[1].config)
    one_copy = 4 * (counts["transformer"] + counts["autoencoder"])
    assert one_copy <= (pack.path / "weights_float32.bin").stat().st_size <= 1.1 * one_copy
    for graph in pack.manifest.graphs.values():
        assert (pack.path / graph["float32"]).stat().st_size < 0.2 * one_copy  # structure only


def test_a_graph_pointing_outside_the_pack_is_refused(pack_copy, tmp_path):
    import onnx

    from inference.render.student.engine import StudentEngine

    (tmp_path / "secret.bin").write_bytes(b"\0" * 4_000_000)
    model = onnx.load(str(pack_copy / "decoder.onnx"), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../secret.bin"
    onnx.save_model(model, str(pack_copy / "decoder.onnx"))
    data = json.loads((pack_copy / MANIFEST).read_text())
    data["files"]["decoder.onnx"] = hashlib.sha256((pack_copy / "decoder.onnx").read_bytes()).hexdigest()
    (pack_copy / MANIFEST).write_text(json.dumps(data))
    before = snapshot(pack_copy)
    with pytest.raises(ModelLoadError, match=r"cannot load the float32 decoder graph .*secret.bin not found.*rebuild"):
        StudentEngine(load_pack(pack_copy), provider="cpu", attention="sparse")
    assert snapshot(pack_copy) == before


def test_a_damaged_weight_file_is_named(pack_copy):
    blob = pack_copy / "weights_float32.bin"
    blob.write_bytes(blob.read_bytes()[:-8] + b"\1" * 8)
    with pytest.raises(ModelLoadError, match="weights_float32.bin is damaged or was changed"):
        load_pack(pack_copy)


def test_zip_packs_load_and_damaged_ones_are_named(tiny_pack, tmp_path):
    archive = tmp_path / "tiny.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for file in Path(tiny_pack[0]).iterdir():
            z.write(file, f"tiny/{file.name}")
    pack = load_pack(archive)
    assert pack.is_zip and isinstance(pack.graph_source("decoder", "float32"), bytes)
    from inference.render.student.engine import StudentEngine

    portrait = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    keypoints = np.zeros((2, 134, 3), dtype=np.float32)
    keypoints[:, :, :2], keypoints[:, :, 2] = 0.5, 1.0
    frames = []
    for source in (archive, tiny_pack[0]):  # the weights come from memory either way: the same frames
        engine = StudentEngine(load_pack(source), provider="cpu", attention="sparse", seed=2)
        engine.set_reference(portrait)
        frames.append(engine.render_chunk(keypoints)[0])
    np.testing.assert_array_equal(frames[0], frames[1])
    broken = tmp_path / "broken.zip"
    broken.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="neither a folder nor a zip|damaged zip"):
        load_pack(broken)


def test_find_packs_reports_each_pack_with_its_status(tiny_pack, tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_DATA_DIR", str(tmp_path))
    packs = tmp_path / "packs"
    shutil.copytree(tiny_pack[0], packs / "good")
    shutil.copytree(tiny_pack[0], packs / "newer")
    edit_manifest(packs / "newer", op_version=7)
    (packs / "junk.zip").write_bytes(b"not a zip")
    found = {info.path.name: info for info in find_packs() if info.path.parent == packs}
    assert found["good"].status == "ok" and found["good"].name == "tiny-random"
    assert "version 7" in found["newer"].status
    assert "damaged zip" in found["junk.zip"].status
