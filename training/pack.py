"""Build a model pack (folder or zip) from exported ONNX graphs.

Usage:
    python -m training.pack EXPORT_DIR --out PACK_DIR --name NAME --version 1.0.0 \\
        --license "..." --training-data "..." [--fps 25] [--zip]

``EXPORT_DIR`` is what ``python -m training.export_student`` wrote (its ``export.json`` names the preset
and the graph files). The pack gets a copy of every graph, a ``manifest.json`` with the sha256 of each
file, and is then verified with :func:`inference.packs.load_pack`, exactly as the app will.
"""

from __future__ import annotations

import argparse
import json
import shutil
import zipfile
from pathlib import Path

from inference.ops import OP_VERSION
from inference.packs import KEYPOINT_LAYOUT, MANIFEST, PackManifest, load_pack, sha256_of
from training.models.config import StudentConfig, preset


def manifest_for(config: StudentConfig, graphs: dict[str, dict[str, str]], files: dict[str, str], *, name: str,
                 version: str, fps: float, license: str, training_data: str, notes: str = "") -> PackManifest:
    """The manifest of a pack holding ``graphs`` (graph → precision → file) with ``files`` (file → sha256)."""
    return PackManifest(
        name=name, version=version, resolution=(config.size, config.size), fps=fps, keypoint_layout=KEYPOINT_LAYOUT,
        steps=len(config.timesteps), timesteps=config.timesteps, sampler=config.sampler,
        chunk_size=config.chunk_frames, cache_frames=config.cache_frames, top_k=config.top_k,
        keep_recent=config.keep_recent, block_size=config.block_size, op_version=OP_VERSION, model=config.model(),
        graphs=graphs, files=files, license=license, training_data=training_data, notes=notes)


def build_pack(export_dir: Path, out: Path, config: StudentConfig, graphs: dict[str, dict[str, str]], *, name: str,
               version: str, fps: float = 25.0, license: str, training_data: str, notes: str = "",
               as_zip: bool = False) -> Path:
    """Copies the graphs of ``export_dir`` into a new pack at ``out`` (a folder, or ``out`` as a .zip),
    writes its manifest and verifies it; returns the pack's path."""
    folder = out.with_suffix("") if as_zip else out
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not empty; choose a new pack folder")
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for variants in graphs.values():
        for file in variants.values():
            shutil.copyfile(export_dir / file, folder / file)
            files[file] = sha256_of(folder / file)
    manifest = manifest_for(config, graphs, files, name=name, version=version, fps=fps, license=license,
                            training_data=training_data, notes=notes)
    (folder / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
    path = folder
    if as_zip:
        path = folder.with_suffix(".zip")
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
            for file in sorted(folder.iterdir()):
                archive.write(file, f"{folder.name}/{file.name}")
        shutil.rmtree(folder)
    load_pack(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.pack", description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--license", required=True, help="the license of the weights, one line")
    parser.add_argument("--training-data", required=True, help="what the model was trained on, one line")
    parser.add_argument("--notes", default="")
    parser.add_argument("--zip", action="store_true", help="write OUT.zip instead of a folder")
    args = parser.parse_args(argv)
    exported = json.loads((args.export_dir / "export.json").read_text(encoding="utf-8"))
    path = build_pack(args.export_dir, args.out, preset(exported["preset"]), exported["graphs"], name=args.name,
                      version=args.version, fps=args.fps, license=args.license, training_data=args.training_data,
                      notes=args.notes, as_zip=args.zip)
    print(f"pack written and verified: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
