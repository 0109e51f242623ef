"""Where Podium keeps things: bundled assets, the user's config, data and logs.

``PODIUM_CONFIG_DIR`` and ``PODIUM_DATA_DIR`` override the per-user folders
(tests and portable installs use them).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"


def config_dir() -> Path:
    """The user's config folder (settings.json lives here)."""
    env = os.environ.get("PODIUM_CONFIG_DIR")
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("podium", appauthor=False))


def data_dir() -> Path:
    """The user's data folder (logs, model packs, recordings, portrait fits)."""
    env = os.environ.get("PODIUM_DATA_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("podium", appauthor=False))


def log_dir() -> Path:
    return data_dir() / "logs"


def user_packs_dir() -> Path:
    return data_dir() / "packs"


def recordings_dir() -> Path:
    return data_dir() / "recordings"


def bundled_portraits() -> list[Path]:
    """The portraits shipped in ``assets/portraits``, sorted by name."""
    folder = ASSETS_DIR / "portraits"
    return sorted(p for p in folder.glob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"})


def default_portrait() -> Path:
    """The portrait used when none is chosen."""
    return ASSETS_DIR / "portraits" / "astronaut.png"


def demo_audio() -> Path:
    """The bundled speech clip used by the demo render and the benchmarks."""
    return ASSETS_DIR / "audio" / "demo_speech.flac"
