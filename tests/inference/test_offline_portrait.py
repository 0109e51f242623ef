"""Which portrait an offline render shows: the chosen one, else the renderer's own, else the bundled default."""

from __future__ import annotations

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
