"""A tiny random-weight student pack, exported once per test session into a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """(pack folder, the torch Student it was exported from): float32 graphs for the CPU EP, with the
    custom-op student, its dense fallback and the dense-cache student."""
    torch = pytest.importorskip("torch", reason="exporting a pack needs torch (the train extra)")
    from training.export_student import export_all
    from training.models.config import preset
    from training.models.student import Student
    from training.models.transformer import randomize_
    from training.pack import build_pack

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("student")
    student = randomize_(Student(preset("tiny")), seed=0).eval()
    graphs = export_all(student, root / "export", ("float32",),
                        ("encoder", "reference", "student", "student_fallback", "student_dense", "decoder"))
    pack = build_pack(root / "export", root / "pack", student.config, graphs, name="tiny-random", version="0.0.1",
                      license="random weights, for tests", training_data="none")
    return pack, student
