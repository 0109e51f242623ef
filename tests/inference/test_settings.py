import json
from pathlib import Path

import pytest

from inference.errors import ConfigError
from inference.motion.style import PRESETS, MotionStyle, apply_preset
from inference.settings import SCHEMA_VERSION, Settings, load_settings, save_settings, settings_path


def test_defaults_without_a_file():
    settings, warnings = load_settings()
    assert settings == Settings() and warnings == []
    assert settings.render.renderer == "auto" and settings.camera.badge is True


def test_round_trip(tmp_path):
    from dataclasses import replace

    s = Settings()
    s = replace(s, style=apply_preset(s.style, "lively"), camera=replace(s.camera, mirror=True, resolution="1080p"))
    path = save_settings(s)
    assert path == settings_path() and json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    loaded, warnings = load_settings()
    assert loaded == s and warnings == []


def test_broken_file_is_kept_aside_and_defaults_used():
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text("{ this is not json")
    settings, warnings = load_settings()
    assert settings == Settings()
    assert len(warnings) == 1 and "could not be read" in warnings[0]
    kept = list(path.parent.glob("settings.json.broken-*"))
    assert len(kept) == 1 and kept[0].read_text() == "{ this is not json"


def test_bad_values_fall_back_one_by_one():
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "schema_version": 1,
        "style": {"gesture_amount": 7, "head_motion": 0.9, "framing": "full-body"},
        "render": {"size": 500, "fps": "fast", "renderer": "photo-rig"},
        "camera": {"mirror": "yes"},
        "mystery": {},
    }))
    settings, warnings = load_settings()
    assert settings.style.head_motion == 0.9 and settings.style.gesture_amount == MotionStyle().gesture_amount
    assert settings.style.framing == "half-body"
    assert settings.render.renderer == "photo-rig" and settings.render.size == 512 and settings.render.fps == 25.0
    assert settings.camera.mirror is False
    text = "\n".join(warnings)
    for word in ("gesture_amount", "framing", "size", "fps", "mirror", "mystery"):
        assert word in text


def test_a_schema_1_file_that_saved_the_default_portrait_now_chooses_none():
    from inference.paths import bundled_portraits, default_portrait

    path = settings_path()
    path.parent.mkdir(parents=True)
    other = next(p for p in bundled_portraits() if p != default_portrait())
    for saved, expected in ((str(default_portrait()), None), (str(other), str(other)), ("", None)):
        path.write_text(json.dumps({"schema_version": 1, "render": {"portrait": saved, "renderer": "auto"}}))
        settings, warnings = load_settings()
        assert settings.render.portrait_path == (Path(expected) if expected else None) and not warnings
    save_settings(settings)
    assert json.loads(path.read_text())["schema_version"] == 2


def test_style_validation_and_presets():
    with pytest.raises(ConfigError, match="gesture_amount"):
        MotionStyle(gesture_amount=-0.1).validated()
    with pytest.raises(ConfigError, match="seed"):
        MotionStyle(seed=-1).validated()
    with pytest.raises(ConfigError, match="unknown preset"):
        apply_preset(MotionStyle(), "sleepy")
    kept = apply_preset(MotionStyle(seed=99, framing="head-and-shoulders"), "calm")
    assert kept.seed == 99 and kept.framing == "head-and-shoulders"
    assert kept.gesture_amount == PRESETS["calm"].gesture_amount
