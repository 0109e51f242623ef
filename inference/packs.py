"""Finding model packs: the bundled ones in ``assets/packs`` and the user's in the data folder.

A pack is a folder holding ``manifest.json`` and its ONNX files. This module
only discovers packs and reads their manifests; verifying and loading one is
the student renderer's job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from inference.paths import ASSETS_DIR, user_packs_dir

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PackInfo:
    """A pack found on disk. ``status`` is "ok" or what is wrong with its manifest."""

    name: str
    path: Path
    status: str


def pack_folders() -> list[Path]:
    """Folders searched for packs, bundled first."""
    return [ASSETS_DIR / "packs", user_packs_dir()]


def find_packs() -> list[PackInfo]:
    found = []
    for folder in pack_folders():
        if not folder.is_dir():
            continue
        for candidate in sorted(p for p in folder.iterdir() if p.is_dir()):
            manifest = candidate / MANIFEST
            if not manifest.exists():
                continue
            try:
                data = json.loads(manifest.read_text(encoding="utf-8"))
                name = str(data.get("name", candidate.name))
                status = "ok"
            except (OSError, ValueError) as exc:
                name, status = candidate.name, f"unreadable manifest ({exc})"
            found.append(PackInfo(name=name, path=candidate, status=status))
    return found
