"""bench/ablation.py end to end on the CPU at the tiny preset: ``prepare`` an evaluation set, ``run`` every row
of Table 2 through ONNX Runtime (random tiny teachers and a random tiny student pack), ``finish`` the lip sync;
and what each says when given something broken."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from bench import ablation, common
from tests.synthetic.conftest import neutral, small_bank  # noqa: F401 - shared fixtures
from training.checkpoints import bf16_state_dict, load_checkpoint, save_checkpoint
from training.data.motion_bank import MotionBank, StreamInfo
from training.data.perturb import perturb_stream
from training.distill import main as distill
from training.distillation.weights import save_student
from training.models.autoencoder import Autoencoder, autoencoder_meta
from training.models.config import preset
from training.models.teacher import Teacher, save_teacher
from training.models.transformer import VideoTransformer, randomize_

TEACHER = preset("tiny").with_(chunk_frames=4)
STUDENT = preset("tiny")  # chunks of 2 frames, 2 steps
FRAMES = 12  # of the held-out stream: three teacher windows of 4 frames overlapping by 2
IDENTITIES = 2
TEACHER_LABELS = ["teacher (1 steps)", "+ global attention", "+ local attention"]
STUDENT_LABELS = ["+ DMD (2 steps)", "+ region loss"]
QUALITY = ("psnr_db", "ssim", "mae_mouth", "mae_hands", "mae_frame", "flicker")
REPO_RESULTS = common.RESULTS_DIR


def _ablation_results() -> set[Path]:
    return set(REPO_RESULTS.glob("*ablation*")) if REPO_RESULTS.exists() else set()


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread_and_no_repo_results():
    """One torch thread (see test_distill_training.py); nothing of these tests lands in the repo's bench/results."""
    before, results = torch.get_num_threads(), _ablation_results()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
    assert _ablation_results() == results, "a test wrote into the repo's bench/results"


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Random tiny autoencoder weights, a random tiny teacher that records them, and a tiny student pack."""
    from inference import ops

    if not ops.availability()[0]:
        pytest.skip(f"the sparse rows and the student pack need the custom op: {ops.availability()[1]}")
    root = tmp_path_factory.mktemp("ablation-models")
    torch.manual_seed(0)
    files = save_checkpoint(root, "autoencoder_weights", {"model": bf16_state_dict(randomize_(Autoencoder(TEACHER), 1))},
                            meta=autoencoder_meta(TEACHER))
    sha = load_checkpoint(files[0]).sha256
    save_teacher(root, "teacher_ema", randomize_(Teacher(TEACHER), 2), autoencoder_sha256=sha)
    save_student(root, "student", randomize_(VideoTransformer(STUDENT), 3), autoencoder_sha256=sha)
    assert distill(["export", "--student", str(root / "student"), "--autoencoder", str(root / "autoencoder_weights"),
                    "--out", str(root / "pack"), "--name", "tiny-ablation", "--version", "0.0.1", "--precision",
                    "float32", "--license", "test weights", "--size-limit-mb", "0"]) == 0
    return {"ae": root / "autoencoder_weights", "teacher": root / "teacher_ema", "pack": root / "pack"}


@pytest.fixture(scope="module")
def heldout_bank(tmp_path_factory, neutral):  # noqa: F811 - the shared fixture
    """A held-out bank: the held-out demo sentence's stream in two framings (half-body is the one to pick), and a
    stream of speech that is not on any machine."""
    base = np.repeat(neutral[None], FRAMES, axis=0)
    streams = [perturb_stream(base, np.random.default_rng(seed), 25.0, 1.0) for seed in (1, 2, 3)]
    infos = [StreamInfo("demo-5", "default", "full-body", 0, "offline"),
             StreamInfo("demo-5", "default", "half-body", 0, "offline"),
             StreamInfo("not-here", "default", "half-body", 0, "offline")]
    bank = MotionBank(streams, infos, 25.0, "heldout")
    return bank, bank.save(tmp_path_factory.mktemp("ablation-bank") / "heldout.npz")


@pytest.fixture(scope="module")
def eval_set(tmp_path_factory, heldout_bank):
    """``prepare``'s evaluation set of the held-out bank (it aligns the speech with pocketsphinx)."""
    if importlib.util.find_spec("pocketsphinx") is None:
        pytest.skip("prepare aligns the speech with pocketsphinx, which is not installed here")
    path = tmp_path_factory.mktemp("ablation-eval") / "eval.npz"
    assert ablation.main(["prepare", "--bank", str(heldout_bank[1]), "--out", str(path),
                          "--identities", str(IDENTITIES)]) == 0
    return path


def _run_args(models: dict, eval_path: Path, out: Path) -> list[str]:
    return ["run", "--eval", str(eval_path), "--autoencoder", str(models["ae"]), "--teacher", str(models["teacher"]),
            "--teacher-global", str(models["teacher"]), "--teacher-local", str(models["teacher"]),
            "--dmd", str(models["pack"]), "--region", str(models["pack"]), "--teacher-steps", "1",
            "--teacher-overlap", "2", "--device", "cpu", "--out", str(out)]


@pytest.fixture(scope="module")
def pending_run(tmp_path_factory, models, eval_set):
    """Every row, run as on the GPU machine: no mediapipe (lip sync pending, face crops kept) and no PyAV (AVIs)."""
    root = tmp_path_factory.mktemp("ablation-run")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(common, "RESULTS_DIR", root / "results")
        patch.setattr(ablation, "can_measure_lips", lambda: False)
        patch.setattr(ablation, "has_pyav", lambda: False)
        assert ablation.main(_run_args(models, eval_set, root / "out")) == 0
    return root


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


# --------------------------------------------------------------------------------------------------
# prepare
# --------------------------------------------------------------------------------------------------

def test_prepare_writes_an_evaluation_set_that_loads_back(eval_set, heldout_bank):
    bank, _ = heldout_bank
    segments, fps = ablation.load_eval_set(eval_set)
    assert fps == 25.0 and len(segments) == IDENTITIES  # the speech that is not here is skipped
    assert len({s.identity_seed for s in segments}) == IDENTITIES
    for segment in segments:
        assert (segment.speech, segment.framing) == ("demo-5", "half-body")
        np.testing.assert_array_equal(segment.keypoints, bank.streams[1])  # the half-body offline stream
        assert segment.audio.dtype == np.float32 and segment.audio.shape == (FRAMES * 48_000 // 25,)
        assert np.abs(segment.audio).max() > 0.01  # the sentence's start, not silence alone
        phones = segment.phones()
        assert phones and all(p.end > p.start for p in phones)
        assert [p.start for p in phones] == sorted(p.start for p in phones)


def test_prepare_refuses_a_bank_without_heldout_speech_here(small_bank, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "eval.npz"
    assert ablation.main(["prepare", "--bank", str(small_bank.save(tmp_path / "train.npz")), "--out", str(out)]) == 1
    line = _one_error_line(capsys)
    assert "no held-out speech" in line and "--split heldout" in line
    assert ablation.main(["prepare", "--bank", str(tmp_path / "missing.npz"), "--out", str(out)]) == 1
    assert "no such motion bank file" in _one_error_line(capsys)
    assert not list(tmp_path.glob("eval.npz*"))


# --------------------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------------------

def test_run_writes_every_rows_figures(pending_run, models):
    report = json.loads((pending_run / "out" / "ablation.json").read_text())
    assert list(report["rows"]) == TEACHER_LABELS + STUDENT_LABELS
    assert report["device"] == "cpu" and report["teacher_steps"] == 1 and report["fps"] == 25.0
    assert [s["frames"] for s in report["segments"]] == [FRAMES] * IDENTITIES
    assert report["lip_sync"].startswith("pending")
    for label, row in report["rows"].items():
        for key in ("fps", "speedup", *QUALITY):
            assert math.isfinite(row[key]), (label, key)
        assert row["fps"] > 0 and 0 < row["psnr_db"] < 60 and -1 <= row["ssim"] <= 1
        assert all(0 <= row[k] <= 255 for k in ("mae_mouth", "mae_hands", "mae_frame"))
        # PSNR (mean over frames) can never beat the PSNR that the mean absolute error allows.
        assert row["psnr_db"] <= 20 * math.log10(255 / row["mae_frame"]) + 1e-6, label
        assert "lip_r" not in row
    rows = report["rows"]
    assert rows[TEACHER_LABELS[0]]["speedup"] == 1.0
    assert rows[STUDENT_LABELS[0]]["source"] == rows[STUDENT_LABELS[1]]["source"] == f"{models['pack'].parent.name}/pack"
    # The same pack given twice scores the same; the three masks of one teacher do not.
    assert all(rows[STUDENT_LABELS[0]][k] == rows[STUDENT_LABELS[1]][k] for k in QUALITY)
    assert len({rows[label]["psnr_db"] for label in TEACHER_LABELS}) == 3
    (result,) = (pending_run / "results").glob("*_ablation_cpu.json")
    assert json.loads(result.read_text())["figures"]["rows"] == rows


def test_run_draws_a_sheet_and_the_side_by_side_videos(pending_run):
    out = pending_run / "out"
    sheet = cv2.imread(str(out / "sheet.png"))
    rows, tile = 1 + len(TEACHER_LABELS + STUDENT_LABELS), 192 + ablation.LABEL_HEIGHT
    assert sheet.shape[0] == rows * tile and sheet.shape[1] in (2 * 2 * 192, 3 * 2 * 192)  # 2 or 3 moments
    for r in range(rows):
        frame = sheet[r * tile + ablation.LABEL_HEIGHT:(r + 1) * tile, :192]
        assert frame.std() > 5, f"row {r} of the sheet is blank"
    for index in range(IDENTITIES):
        capture = cv2.VideoCapture(str(out / f"side_by_side_{index}.avi"))
        size = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        capture.release()
        assert size == (rows * STUDENT.size, STUDENT.size + ablation.LABEL_HEIGHT) and count == FRAMES
    assert len(ablation.read_side_by_side(out)) == FRAMES * IDENTITIES
    with np.load(out / "face_crops.npz") as crops:
        assert list(crops["labels"]) == [ablation.TRUTH, *TEACHER_LABELS, *STUDENT_LABELS]
        assert crops["c0_0"].shape == (FRAMES, ablation.FACE_CROP, ablation.FACE_CROP, 3)


def test_run_refuses_broken_input_and_writes_nothing(models, eval_set, tmp_path, capsys):
    out = tmp_path / "out"

    def error(*args: str) -> str:
        assert ablation.main(["run", "--device", "cpu", "--out", str(out), *args]) == 1
        return _one_error_line(capsys)

    teacher = ["--autoencoder", str(models["ae"]), "--teacher", str(models["teacher"])]
    line = error("--eval", str(tmp_path / "missing.npz"), *teacher)
    assert "missing.npz" in line and "Make it with `main.py bench ablation prepare`" in line
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(eval_set.read_bytes()[:eval_set.stat().st_size // 2])  # cut off mid-copy
    line = error("--eval", str(corrupt), *teacher)
    assert "is not a readable ablation evaluation set" in line and "main.py bench ablation prepare" in line
    line = error("--eval", str(eval_set), "--autoencoder", str(models["ae"]), "--teacher",
                 str(tmp_path / "nothing" / "teacher_ema"))
    assert "no checkpoint named 'teacher_ema'" in line
    line = error("--eval", str(eval_set), "--teacher", str(models["teacher"]), "--autoencoder",
                 str(tmp_path / "nothing" / "autoencoder_weights"))
    assert "no checkpoint named 'autoencoder_weights'" in line
    assert "does not exist; choose a pack" in error("--eval", str(eval_set), "--region", str(tmp_path / "no-pack"))
    assert "give at least one row: --teacher" in error("--eval", str(eval_set))
    assert "teacher rows need --autoencoder" in error("--eval", str(eval_set), "--teacher", str(models["teacher"]))
    assert "--teacher-guidance must be above 0" in error("--eval", str(eval_set), *teacher, "--teacher-guidance", "0")
    assert not out.exists() and not (tmp_path / "results").exists()


# --------------------------------------------------------------------------------------------------
# finish
# --------------------------------------------------------------------------------------------------

def test_finish_scores_the_pending_lip_sync_and_makes_the_mp4(pending_run, eval_set, tmp_path):
    import av

    run = shutil.copytree(pending_run / "out", tmp_path / "run")
    assert ablation.main(["finish", str(run), "--eval", str(eval_set)]) == 0
    report = json.loads((run / "ablation.json").read_text())
    assert "lip_sync" not in report
    # The renderer's faces are found on most frames; the random rows' noise has no face to find.
    assert report["truth"]["faces_found"] >= 0.5
    for label, row in report["rows"].items():
        assert {"lip_r", "lip_offset_ms", "faces_found"} <= set(row) and 0 <= row["faces_found"] <= 1, label
    with av.open(str(run / "side_by_side.mp4")) as container:
        assert container.streams.audio and sum(1 for _ in container.decode(video=0)) == FRAMES * IDENTITIES
    (result,) = (tmp_path / "results").glob("*_ablation-cpu_cpu.json")
    assert json.loads(result.read_text())["figures"]["truth"] == report["truth"]


def test_finish_refuses_a_run_it_cannot_finish(pending_run, eval_set, tmp_path, heldout_bank, capsys):
    run = shutil.copytree(pending_run / "out", tmp_path / "run")
    (run / "face_crops.npz").rename(tmp_path / "face_crops.npz")
    before = (run / "ablation.json").read_bytes()
    assert ablation.main(["finish", str(run), "--eval", str(eval_set)]) == 1
    line = _one_error_line(capsys)
    assert "face_crops.npz: is missing" in line and "made where mediapipe was missing" in line
    (tmp_path / "face_crops.npz").rename(run / "face_crops.npz")
    other = ablation.save_eval_set(tmp_path / "other.npz", ablation.load_eval_set(eval_set)[0][:1], 25.0)
    assert ablation.main(["finish", str(run), "--eval", str(other)]) == 1
    assert "is not the evaluation set this run rendered" in _one_error_line(capsys)
    assert ablation.main(["finish", str(tmp_path / "nothing"), "--eval", str(eval_set)]) == 1
    assert "ablation.json: is missing" in _one_error_line(capsys)
    assert (run / "ablation.json").read_bytes() == before and not (run / "side_by_side.mp4").exists()
    assert not (tmp_path / "results").exists()
