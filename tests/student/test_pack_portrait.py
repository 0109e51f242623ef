"""A pack's own portrait: the student offers it as its default portrait, renders it when the user has chosen
none, and a pack whose portrait is not an image says so."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.errors import ModelLoadError
from inference.offline import OfflineRender, RenderJob
from inference.packs import MANIFEST
from inference.render import student
from inference.render.student.renderer import StudentRenderer
from tests.conftest import write_wav

#: The presenter the pack is made for (any picture will do for the random-weight pack).
PRESENTER = np.dstack([np.tile(np.linspace(0, 255, 48, dtype=np.uint8), (64, 1)),
                       np.full((64, 48), 90, np.uint8), np.full((64, 48), 200, np.uint8)])


def pack_with_portrait(tiny_pack: tuple[Path, object], folder: Path, data: bytes) -> Path:
    """A copy of the tiny pack in ``folder`` that carries ``data`` as its portrait.png."""
    shutil.copytree(tiny_pack[0], folder)
    (folder / "portrait.png").write_bytes(data)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"]["portrait.png"] = hashlib.sha256(data).hexdigest()
    manifest["portrait"] = "portrait.png"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def png(rgb: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return encoded.tobytes()


def test_the_student_offers_its_packs_portrait_and_none_without_one(tiny_pack, tmp_path):
    pack = pack_with_portrait(tiny_pack, tmp_path / "pack", png(PRESENTER))
    renderer = student.create((256, 256), pack=pack, device="cpu")
    own = renderer.default_portrait()
    np.testing.assert_array_equal(own, PRESENTER)
    assert not own.flags.writeable  # shared: nobody may paint on it
    renderer.close()
    without = student.create((256, 256), pack=tiny_pack[0], device="cpu")
    assert without.default_portrait() is None
    without.close()


@pytest.mark.parametrize("data", [b"this is not a png", b""])
def test_a_pack_portrait_that_is_not_an_image_is_named_with_the_fix(tiny_pack, tmp_path, data):
    pack = pack_with_portrait(tiny_pack, tmp_path / "pack", data)
    with pytest.raises(ModelLoadError) as error:
        student.create((256, 256), pack=pack, device="cpu")
    message = str(error.value)
    assert str(pack) in message and "portrait portrait.png is not a PNG or JPEG image" in message
    assert "rebuild the pack with training/pack.py" in message


def test_an_offline_render_with_no_portrait_chosen_shows_the_packs_presenter(tiny_pack, tmp_path, monkeypatch):
    import os

    pack_with_portrait(tiny_pack, Path(os.environ["PODIUM_DATA_DIR"]) / "packs" / "presenter", png(PRESENTER))
    monkeypatch.setattr("inference.packs.ASSETS_DIR", tmp_path / "no-assets")  # only the pack above
    monkeypatch.setenv(student.CPU_ENV, "1")
    monkeypatch.setattr(student, "_cuda_available", lambda: False)
    references: list[np.ndarray] = []
    set_reference = StudentRenderer.set_reference
    monkeypatch.setattr(StudentRenderer, "set_reference",
                        lambda self, portrait: (references.append(portrait), set_reference(self, portrait))[1])
    audio = write_wav(tmp_path / "hello.wav", 0.1 * np.sin(np.arange(9600) / 48_000 * 2 * np.pi * 220), 48_000)
    job = RenderJob(audio=audio, output=tmp_path / "out.mp4", renderer="student", size=256)
    result = OfflineRender(job).run()
    assert result.frames == 5 and job.output.exists()
    assert len(references) == 1
    np.testing.assert_array_equal(references[0], PRESENTER)
