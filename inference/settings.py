"""Podium's settings: one typed object, saved as JSON in the user's config folder.

Defaults work with no file at all. Loading never loses the user's data: a file
that cannot be parsed is kept aside as ``settings.json.broken-<time>`` and the
defaults are used, with a warning saying so; values of the wrong type or out of
range fall back to their defaults one by one, each with a warning.

The file carries ``schema_version``; :data:`MIGRATIONS` upgrades older files step
by step (bump the version when a key is renamed or removed, and add a step).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from inference.errors import ConfigError
from inference.motion.style import MotionStyle
from inference.paths import config_dir

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: render.portrait None means none chosen (the renderer's own portrait)
SETTINGS_FILE = "settings.json"

RendererChoice = Literal["auto", "student", "photo-rig", "pose-map"]
RENDERERS: tuple[str, ...] = ("auto", "student", "photo-rig", "pose-map")
CameraResolution = Literal["720p", "1080p"]
Theme = Literal["system", "dark", "light"]


@dataclass(frozen=True)
class AudioSettings:
    """Microphone and delayed audio out. ``None`` devices mean the system default."""

    input_device: str | None = None
    output_device: str | None = None
    delayed_output: bool = False


@dataclass(frozen=True)
class RenderSettings:
    """Which renderer draws the avatar, at what size and rate."""

    renderer: RendererChoice = "auto"
    size: int = 512
    fps: float = 25.0
    portrait: str | None = None  # None: none chosen (the renderer's own portrait, else the bundled default)
    pack: str | None = None  # None: the best pack found

    @property
    def portrait_path(self) -> Path | None:
        """The portrait the user chose, or None when none is chosen."""
        return Path(self.portrait) if self.portrait else None

    def validated(self) -> RenderSettings:
        if self.renderer not in RENDERERS:
            raise ConfigError(f"render.renderer must be one of {', '.join(RENDERERS)}, got {self.renderer!r}")
        if not isinstance(self.size, int) or self.size % 16 or not 128 <= self.size <= 1024:
            raise ConfigError(f"render.size must be a multiple of 16 from 128 to 1024, got {self.size!r}")
        if not isinstance(self.fps, (int, float)) or not 5 <= float(self.fps) <= 60:
            raise ConfigError(f"render.fps must be from 5 to 60, got {self.fps!r}")
        return self


@dataclass(frozen=True)
class CameraSettings:
    """The virtual camera sink."""

    enabled: bool = False
    resolution: CameraResolution = "720p"
    mirror: bool = False
    badge: bool = True  # the small "AI avatar" badge, on by default
    device: str | None = None

    def validated(self) -> CameraSettings:
        if self.resolution not in ("720p", "1080p"):
            raise ConfigError(f"camera.resolution must be 720p or 1080p, got {self.resolution!r}")
        return self


@dataclass(frozen=True)
class RecordingSettings:
    """Recordings made from the GUI."""

    folder: str | None = None  # None: <data folder>/recordings
    quality_crf: int = 18

    def validated(self) -> RecordingSettings:
        if not isinstance(self.quality_crf, int) or not 0 <= self.quality_crf <= 51:
            raise ConfigError(f"recording.quality_crf must be 0..51, got {self.quality_crf!r}")
        return self


@dataclass(frozen=True)
class UiSettings:
    theme: Theme = "system"
    window_geometry: str | None = None  # Qt saveGeometry(), base64

    def validated(self) -> UiSettings:
        if self.theme not in ("system", "dark", "light"):
            raise ConfigError(f"ui.theme must be system, dark or light, got {self.theme!r}")
        return self


@dataclass(frozen=True)
class Settings:
    """Everything the user can set."""

    audio: AudioSettings = field(default_factory=AudioSettings)
    style: MotionStyle = field(default_factory=MotionStyle)
    render: RenderSettings = field(default_factory=RenderSettings)
    camera: CameraSettings = field(default_factory=CameraSettings)
    recording: RecordingSettings = field(default_factory=RecordingSettings)
    ui: UiSettings = field(default_factory=UiSettings)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, **asdict(self)}


_SECTIONS: dict[str, type] = {
    "audio": AudioSettings,
    "style": MotionStyle,
    "render": RenderSettings,
    "camera": CameraSettings,
    "recording": RecordingSettings,
    "ui": UiSettings,
}

#: schema_version N → N+1 upgrade steps (none yet).
def _default_portrait_means_none(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 → 2: a file that saved the bundled default portrait's path (clicking it in the old window did)
    now says "none chosen", so a renderer with a portrait of its own (the student's presenter) shows that."""
    from inference.paths import default_portrait

    render = data.get("render")
    if isinstance(render, dict) and isinstance(render.get("portrait"), str):
        try:
            if Path(render["portrait"]).resolve() == default_portrait().resolve():
                data = {**data, "render": {**render, "portrait": None}}
        except (OSError, ValueError):  # an unusable path is the section reader's to report
            pass
    return data


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _default_portrait_means_none}


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def _section_from_dict(name: str, cls: type, data: object, warnings: list[str]) -> Any:
    default = cls()
    if not isinstance(data, dict):
        if data is not None:
            warnings.append(f"settings: section '{name}' is not an object; using its defaults")
        return default
    value = default
    for f in fields(cls):
        if f.name not in data:
            continue
        try:
            candidate = replace(value, **{f.name: data[f.name]})
            if hasattr(candidate, "validated"):
                candidate = candidate.validated()
            _check_type(f.name, getattr(default, f.name), data[f.name])
            value = candidate
        except (ConfigError, TypeError) as exc:
            warnings.append(f"settings: {name}.{f.name}: {exc}; using the default {getattr(default, f.name)!r}")
    unknown = set(data) - {f.name for f in fields(cls)}
    for key in sorted(unknown):
        warnings.append(f"settings: unknown key {name}.{key} ignored")
    return value


def _check_type(name: str, default: object, value: object) -> None:
    if default is None or value is None:
        return
    if isinstance(default, bool) != isinstance(value, bool):
        raise TypeError(f"{name} must be {type(default).__name__}, got {value!r}")
    if isinstance(default, (int, float)) and not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if isinstance(default, str) and not isinstance(value, str):
        raise TypeError(f"{name} must be text, got {value!r}")


def settings_from_dict(data: dict[str, Any]) -> tuple[Settings, list[str]]:
    """Build settings from a parsed file; returns them and the warnings about what was ignored."""
    warnings: list[str] = []
    version = data.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        warnings.append(f"settings: file is from a newer Podium (schema {version!r}); reading what is understood")
    else:
        while version < SCHEMA_VERSION:
            data = MIGRATIONS[version](data)
            version += 1
    sections = {name: _section_from_dict(name, cls, data.get(name), warnings) for name, cls in _SECTIONS.items()}
    for key in sorted(set(data) - set(_SECTIONS) - {"schema_version"}):
        warnings.append(f"settings: unknown section '{key}' ignored")
    return Settings(**sections), warnings


def load_settings(path: Path | None = None) -> tuple[Settings, list[str]]:
    """Load settings, never failing: returns (settings, warnings for the user)."""
    path = path or settings_path()
    if not path.exists():
        return Settings(), []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("the top level is not an object")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        backup = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            path.replace(backup)
            kept = f"it was kept as {backup.name}"
        except OSError:
            kept = "it could not be moved aside"
        return Settings(), [f"settings: {path} could not be read ({exc}); using defaults, {kept}"]
    return settings_from_dict(data)


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write settings atomically (a crash mid-write leaves the old file intact)."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(settings.to_dict(), indent=2, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
