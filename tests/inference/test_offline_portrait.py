"""Which portrait an offline render shows: the chosen one, else the renderer's own, else the bundled default."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from inference import paths
from inference.errors import InputFileError
from inference.offline import OfflineRender, RenderJob
from inference.sources.portrait import load_portrait
from tests.live import stand_in_renderers as stand_in

CHOSEN = paths.ASSETS_DIR / "portraits" / "grace_hopper.jpg"


@pytest.mark.parametrize(("own", "portrait", "expected"), [
    (stand_in.PRESENTER, None, "own"),  # none chosen: the renderer's own (a student pack's presenter)
    (stand_in.PRESENTER, CHOSEN, "chosen"),  # chosen: the student renders it as best it can
    (None, None, "default"),  # none chosen, the renderer has none (the photo rig): the bundled default
    (None, CHOSEN, "chosen"),
])
def test_the_right_portrait_reaches_the_renderer(monkeypatch, onset_wav, tmp_path, own, portrait, expected):
    built: list[stand_in.Noting] = []
    stand_in.register(monkeypatch, "student", stand_in.noting(built, own))
    job = RenderJob(audio=onset_wav, output=tmp_path / "out.mp4", portrait=portrait, renderer="student", size=128)
    result = OfflineRender(job).run()
    want = {"own": stand_in.PRESENTER, "chosen": load_portrait(CHOSEN),
            "default": load_portrait(paths.default_portrait())}[expected]
    assert len(built) == 1 and len(built[0].references) == 1 and result.frames == 75
    np.testing.assert_array_equal(built[0].references[0], want)


def test_a_chosen_portrait_that_cannot_be_read_fails_before_anything_is_built(monkeypatch, onset_wav, tmp_path):
    built: list[stand_in.Noting] = []
    stand_in.register(monkeypatch, "student", stand_in.noting(built, stand_in.PRESENTER))
    missing = tmp_path / "me.jpg"
    job = RenderJob(audio=onset_wav, output=tmp_path / "out.mp4", portrait=missing, renderer="student", size=128)
    with pytest.raises(InputFileError, match="me.jpg"):
        OfflineRender(job)
    assert built == [] and not job.output.exists()


@pytest.mark.parametrize(("portrait", "expected"), [(None, "student"), (CHOSEN, "photo-rig")])
def test_auto_gives_a_chosen_portrait_to_a_renderer_that_animates_any(monkeypatch, onset_wav, tmp_path, portrait,
                                                                      expected):
    """The student renders its pack's presenter: with none chosen ``auto`` takes it, with a photo of the user's
    own the photo rig (asking for the student by name still gets it, see above)."""
    built: dict[str, list[stand_in.Noting]] = {"student": [], "photo-rig": []}
    stand_in.register(monkeypatch, "student", stand_in.noting(built["student"], stand_in.PRESENTER))
    stand_in.register(monkeypatch, "photo-rig", stand_in.noting(built["photo-rig"], None))
    job = RenderJob(audio=onset_wav, output=tmp_path / "out.mp4", portrait=portrait, renderer="auto", size=128)
    OfflineRender(job).run()
    assert {name: len(renderers) for name, renderers in built.items()} == {
        "student": int(expected == "student"), "photo-rig": int(expected == "photo-rig")}


def test_auto_says_why_the_student_was_passed_over(monkeypatch):
    from inference.errors import PodiumError
    from inference.render import factory

    for name in factory.PREFERENCE:
        stand_in.register(monkeypatch, name, stand_in.noting([], None))
        monkeypatch.setattr(sys.modules[factory.RENDERERS[name].module], "availability",
                            lambda name=name: (name == "student", f"{name} is off here"))
    assert factory.resolve("auto") == "student"
    with pytest.raises(PodiumError, match="student: renders only its own presenter, not a chosen portrait .*"
                                          "photo-rig: photo-rig is off here"):
        factory.resolve("auto", portrait_chosen=True)
    assert factory.resolve("student", portrait_chosen=True) == "student"
