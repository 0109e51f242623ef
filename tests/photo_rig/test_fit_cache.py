"""A portrait is fitted once: the next start reads the fit from <data dir>/fits; a broken cache costs nothing."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from inference.paths import data_dir
from inference.render.photo_rig import cache
from inference.render.photo_rig import renderer as renderer_module
from inference.render.photo_rig.renderer import prepare_portrait
from tests.photo_rig.conftest import SIZE


@pytest.fixture
def counted_detection(monkeypatch, astronaut_rig):
    """Detection replaced by a counter that returns the session's fit (the real detector is tested elsewhere)."""
    calls = []

    def detect(rgb):  # noqa: ANN001, ANN202
        calls.append(rgb.shape)
        return astronaut_rig.landmarks

    monkeypatch.setattr(renderer_module, "detect_portrait", detect)
    return calls


def test_the_second_start_reads_the_fit_from_the_cache(astronaut, counted_detection):
    first = prepare_portrait(astronaut, SIZE)
    path = cache.cache_path(cache.portrait_key(astronaut))
    assert not first.from_cache and path.exists() and path.parent == data_dir() / "fits"
    second = prepare_portrait(astronaut, SIZE)
    assert second.from_cache and len(counted_detection) == 1
    np.testing.assert_array_equal(second.landmarks.face, first.landmarks.face)
    np.testing.assert_array_equal(second.landmarks.mask, first.landmarks.mask)
    assert second.landmarks.notes == first.landmarks.notes
    np.testing.assert_array_equal(second.framed.rgb, first.framed.rgb)


def test_the_real_fit_round_trips_through_the_cache(astronaut):
    first = prepare_portrait(astronaut, SIZE)  # real mediapipe detection, saved
    second = prepare_portrait(astronaut, SIZE)
    assert second.from_cache and not first.from_cache
    assert second.seconds < first.seconds
    np.testing.assert_array_equal(second.landmarks.pose, first.landmarks.pose)


def test_another_portrait_gets_its_own_fit(astronaut):
    other = astronaut.copy()
    other[0, 0] ^= 1
    assert cache.portrait_key(other) != cache.portrait_key(astronaut)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not a zip", b"\x93NUMPY garbage"])
def test_a_damaged_cache_file_is_refitted_and_replaced(astronaut, counted_detection, content, caplog):
    path = cache.cache_path(cache.portrait_key(astronaut))
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        rig = prepare_portrait(astronaut, SIZE)
    assert not rig.from_cache and len(counted_detection) == 1
    assert "fitting again" in caplog.text or content == b""
    assert prepare_portrait(astronaut, SIZE).from_cache  # rewritten, readable now


def test_a_fit_from_an_older_version_is_refitted(astronaut, counted_detection, monkeypatch):
    prepare_portrait(astronaut, SIZE)
    monkeypatch.setattr(cache, "FIT_VERSION", cache.FIT_VERSION + 1)
    assert not prepare_portrait(astronaut, SIZE).from_cache
    assert len(counted_detection) == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_an_unwritable_data_folder_only_costs_speed(astronaut, counted_detection, tmp_path, monkeypatch, caplog):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    monkeypatch.setenv("PODIUM_DATA_DIR", str(locked / "data"))
    with caplog.at_level(logging.WARNING):
        rig = prepare_portrait(astronaut, SIZE)
    assert rig.framed.rgb.shape == (512, 512, 3) and "could not save the portrait fit" in caplog.text


def test_a_data_folder_that_is_a_file_only_costs_speed(astronaut, counted_detection, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PODIUM_DATA_DIR", str(blocker))
    with caplog.at_level(logging.WARNING):
        first = prepare_portrait(astronaut, SIZE)
        second = prepare_portrait(astronaut, SIZE)
    assert not first.from_cache and not second.from_cache
    assert "could not save the portrait fit" in caplog.text
    assert blocker.read_text() == "not a folder"  # nothing of the user's was touched
