"""The issue-7 commands end to end on the CPU at the tiny preset: sparse fine-tune, ODE pairs, regression, DMD,
export into a pack the app loads; and what each says when given something broken."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from inference.packs import load_pack
from tests.student.poses import presenter_clip
from tests.synthetic.conftest import neutral, small_bank  # noqa: F401 - shared fixtures
from training.checkpoints import bf16_state_dict, load_checkpoint, save_checkpoint
from training.distill import main as distill
from training.finetune_sparse import main as finetune_sparse
from training.models.autoencoder import Autoencoder, autoencoder_meta
from training.models.config import preset
from training.models.teacher import Teacher, load_teacher, save_teacher
from training.models.transformer import randomize_

TEACHER = preset("tiny").with_(chunk_frames=4)
RUN = ["--workers", "0", "--device", "cpu", "--batch-clips", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, small_bank):  # noqa: F811 - the shared fixture
    """A motion bank, random tiny autoencoder weights and a random tiny teacher that records them."""
    root = tmp_path_factory.mktemp("distill")
    torch.manual_seed(0)
    bank = small_bank.save(root / "bank.npz")
    files = save_checkpoint(root, "autoencoder_weights", {"model": bf16_state_dict(randomize_(Autoencoder(TEACHER), 1))},
                            meta=autoencoder_meta(TEACHER))
    save_teacher(root, "teacher_ema", randomize_(Teacher(TEACHER), 2), autoencoder_sha256=load_checkpoint(files[0]).sha256)
    return {"root": root, "bank": str(bank), "ae": str(root / "autoencoder_weights"), "teacher": str(root / "teacher_ema")}


@pytest.fixture(scope="module")
def pipeline(inputs):
    """The four training stages, run once (each for one or two steps), for a 1-step student (the paper's released
    student; the runtime's default 2-step schedule is covered by the engine tests) with a guided real score."""
    root = inputs["root"]
    data = ["--autoencoder", inputs["ae"], "--bank", inputs["bank"]]
    assert finetune_sparse(["--teacher", inputs["teacher"], *data, "--heldout-bank", inputs["bank"],
                            "--out", str(root / "sparse"), "--mask", "local", "--minutes", "0.005", "--eval-clips", "1",
                            "--eval-steps", "1", "--reuse", "1", *RUN]) == 0
    sparse = str(root / "sparse" / "teacher_sparse")
    assert distill(["ode-pairs", "--teacher", sparse, *data, "--out", str(root / "pairs"), "--clips", "2",
                    "--steps", "2", "--timesteps", "0", *RUN]) == 0
    assert distill(["regress", "--pairs", str(root / "pairs"), "--teacher", sparse, "--autoencoder", inputs["ae"],
                    "--heldout-bank", inputs["bank"], "--out", str(root / "regress"), "--student-size", "64,1,2",
                    "--minutes", "0.005", "--eval-clips", "1", *RUN]) == 0
    assert distill(["dmd", "--student", str(root / "regress" / "student"), "--teacher", sparse, *data,
                    "--heldout-bank", inputs["bank"], "--out", str(root / "region"), "--minutes", "0.005",
                    "--critic-steps", "1", "--region-frames", "2", "--eval-clips", "1", "--real-guidance", "2",
                    *RUN]) == 0
    return root


def test_the_sparse_fine_tune_scores_the_teacher_before_and_after(pipeline):
    report = json.loads((pipeline / "sparse" / "metrics.json").read_text())
    for name in ("before_dense", "before_sparse_untrained", "after_sparse"):
        assert 0 < report[name]["psnr_db"] < 60 and report[name]["frames"] == 4, name
    assert report["steps"] >= 1 and report["mask"] == "local"
    teacher, checkpoint = load_teacher(pipeline / "sparse" / "teacher_sparse")
    assert checkpoint.meta["attention"] == {"mask": "local", "causal": False, "top_k": TEACHER.top_k}
    assert teacher.config == TEACHER and (pipeline / "sparse" / "samples.png").stat().st_size > 1000


def test_the_distillation_stages_chain_and_record_what_they_did(pipeline):
    pairs = sorted((pipeline / "pairs").glob("pairs_r0_*.npz"))
    assert len(pairs) == 1
    with np.load(pairs[0]) as shard:
        assert shard["states"].shape == (2, 1, 4, 4, 32, 32) and shard["x0"].shape == (2, 4, 4, 32, 32)
    regress = json.loads((pipeline / "regress" / "metrics.json").read_text())
    assert regress["init"].startswith("fresh") and regress["config"]["width"] == 64 and regress["steps"] >= 1
    region = json.loads((pipeline / "region" / "metrics.json").read_text())
    assert region["stage"] == "dmd" and region["settings"]["lambda_region"] == 1.0
    assert region["settings"]["real_guidance"] == 2.0 and region["config"]["timesteps"] == [0.0]
    assert {"dmd", "region", "critic"} <= set(region["history"][0])
    assert 0 < region["heldout"]["psnr_db"] < 60
    student = load_checkpoint(pipeline / "region" / "student")
    assert student.meta["kind"] == "student" and student.meta["config"]["chunk_frames"] == 2


def test_export_makes_a_pack_the_app_loads_and_streams(pipeline, inputs):
    from inference import ops
    from inference.render.student.engine import StudentEngine

    out = pipeline / "pack"
    assert distill(["export", "--student", str(pipeline / "region" / "student"), "--autoencoder", inputs["ae"],
                    "--out", str(out), "--name", "tiny-distilled", "--version", "0.0.1", "--precision", "float32",
                    "--license", "test weights", "--metrics", str(pipeline / "region" / "metrics.json"),
                    "--metrics", str(pipeline / "sparse" / "metrics.json")]) == 0
    pack = load_pack(out)
    assert pack.manifest.files["MODEL_CARD.md"] and set(pack.manifest.graphs) == {"encoder", "reference", "student",
                                                                                   "student_fallback", "decoder"}
    assert pack.manifest.weights == {"float32": "weights_float32.bin"}  # the graphs share one copy of the weights
    card = (out / "MODEL_CARD.md").read_text()
    assert "ArcFace" in card and "LPIPS" in card and "Held-out" in card and "test weights" in card
    if not ops.availability()[0]:
        pytest.skip(f"the custom op is not built here: {ops.availability()[1]}")
    engine = StudentEngine(pack, provider="cpu", attention="sparse")
    engine.set_reference(np.zeros((256, 256, 3), np.uint8))
    frames, _ = engine.render_chunk(presenter_clip(2))
    assert frames.shape == (2, 256, 256, 3) and frames.std() > 0
    assert pack.manifest.timesteps == (0.0,) and len(engine.schedule) == 1


def test_export_refuses_a_pack_over_the_size_limit_and_writes_nothing(pipeline, inputs, capsys):
    out = pipeline / "too-big"
    status = distill(["export", "--student", str(pipeline / "region" / "student"), "--autoencoder", inputs["ae"],
                      "--out", str(out), "--name", "x", "--version", "0", "--license", "test",
                      "--precision", "float32", "--size-limit-mb", "0.5"])
    message = capsys.readouterr().err
    assert status == 1 and "over the 0 MB limit" in message and "--student-size" in message
    assert not out.exists()


def test_broken_inputs_get_one_line_that_says_what_to_do(pipeline, inputs, tmp_path, capsys):
    data = ["--autoencoder", inputs["ae"], "--bank", inputs["bank"]]
    missing = tmp_path / "nothing" / "teacher_ema"
    assert finetune_sparse(["--teacher", str(missing), *data, "--heldout-bank", inputs["bank"], "--out",
                            str(tmp_path / "x"), *RUN]) == 1
    assert "no checkpoint named 'teacher_ema'" in capsys.readouterr().err
    # a student checkpoint where a teacher belongs
    assert distill(["ode-pairs", "--teacher", str(pipeline / "region" / "student"), *data, "--out",
                    str(tmp_path / "p"), *RUN]) == 1
    assert "not a teacher" in capsys.readouterr().err
    # ODE pairs of another teacher
    assert distill(["regress", "--pairs", str(pipeline / "pairs"), "--teacher", inputs["teacher"], "--autoencoder",
                    inputs["ae"], "--heldout-bank", inputs["bank"], "--out", str(tmp_path / "r"), *RUN]) == 1
    assert "made by another teacher" in capsys.readouterr().err
    # an empty folder of pairs
    (tmp_path / "empty").mkdir()
    assert distill(["regress", "--pairs", str(tmp_path / "empty"), "--teacher", inputs["teacher"], "--autoencoder",
                    inputs["ae"], "--heldout-bank", inputs["bank"], "--out", str(tmp_path / "r"), *RUN]) == 1
    assert "no ODE-pair shards" in capsys.readouterr().err
    # a pack folder that is already there
    assert distill(["export", "--student", str(pipeline / "region" / "student"), "--autoencoder", inputs["ae"],
                    "--out", str(pipeline / "sparse"), "--name", "x", "--version", "0", "--license", "t"]) == 1
    assert "exists and is not empty" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in ("x", "p", "r"))
