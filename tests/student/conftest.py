"""Tiny random-weight student packs, exported once per test session into temporary folders."""

from __future__ import annotations

from pathlib import Path

import pytest


def _tiny_pack(tmp_path_factory: pytest.TempPathFactory, name: str, **changes: object) -> tuple[Path, object]:
    torch = pytest.importorskip("torch", reason="exporting a pack needs torch (the train extra)")
    from training.export_student import export_all
    from training.models.config import preset
    from training.models.student import Student
    from training.models.transformer import randomize_
    from training.pack import build_pack

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp(name)
    student = randomize_(Student(preset("tiny").with_(**changes)), seed=0).eval()
    graphs = export_all(student, root / "export", ("float32",),
                        ("encoder", "reference", "student", "student_fallback", "student_dense", "decoder"))
    pack = build_pack(root / "export", root / "pack", student.config, graphs, name=name, version="0.0.1",
                      license="random weights, for tests", training_data="none")
    return pack, student


@pytest.fixture(scope="session")
def tiny_pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """(pack folder, the torch Student it was exported from): float32 graphs for the CPU EP, with the
    custom-op student, its dense fallback and the dense-cache student."""
    return _tiny_pack(tmp_path_factory, "tiny-random")


@pytest.fixture(scope="session")
def tiny_aligned_pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """The same with the aligned reference (``reference_tokens`` in the reference and student graphs), the frames'
    place-in-chunk embedding (``frame_positions``, a constant of the student graph) and an 8-channel latent (the
    autoencoders since session 7 have 8 or 16, the bundled pack's 4)."""
    return _tiny_pack(tmp_path_factory, "tiny-aligned", aligned_reference=True, frame_positions=True,
                      latent_channels=8)
