"""Build a model pack (folder or zip) from exported ONNX graphs.

Usage:
    python -m training.pack EXPORT_DIR --out PACK_DIR --name NAME --version 1.0.0 \\
        --license "..." --training-data "..." [--fps 25] [--zip]

``EXPORT_DIR`` is what ``python -m training.export_student`` wrote (its ``export.json`` names the preset
and the graph files). The pack gets a copy of every graph, their weights moved into one shared file per
precision (:func:`share_weights`: the student, reference and fallback graphs hold the same transformer, stored
once), a ``manifest.json`` with the sha256 of each file, and is then verified with
:func:`inference.packs.load_pack`, exactly as the app will.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import onnx
from onnx import external_data_helper, numpy_helper

from inference.ops import OP_VERSION
from inference.packs import KEYPOINT_LAYOUT, MANIFEST, PackManifest, load_pack, sha256_of
from training.models.config import StudentConfig, preset

#: Initializers smaller than this stay inside their graph (shapes, scalars, norms' zero biases).
SHARED_MIN_BYTES = 1024
#: Alignment of each tensor in a shared weight file.
SHARED_ALIGNMENT = 64


def weights_file_name(precision: str) -> str:
    """The shared weight file of a precision's graphs."""
    return f"weights_{precision}.bin"


def share_weights(folder: Path, graphs: dict[str, dict[str, str]]) -> dict[str, str]:
    """Moves the weights of the graphs in ``folder`` into one file per precision, each distinct tensor once.

    Every initializer of at least :data:`SHARED_MIN_BYTES` becomes ONNX external data in
    :func:`weights_file_name` (``precision``); tensors equal in type, shape and bytes (the transformer's weights,
    held by the student, reference and fallback graphs alike) share one stored copy. The graphs are rewritten in
    place. Returns precision → weight file name.
    """
    shared: dict[str, str] = {}
    precisions = sorted({p for variants in graphs.values() for p in variants})
    for precision in precisions:
        name = weights_file_name(precision)
        offsets: dict[str, tuple[int, int]] = {}  # content digest → (offset, length)
        with (folder / name).open("wb") as blob:
            for variants in graphs.values():
                if precision not in variants:
                    continue
                path = folder / variants[precision]
                model = onnx.load(str(path))
                for tensor in model.graph.initializer:
                    array = numpy_helper.to_array(tensor)
                    if array.nbytes < SHARED_MIN_BYTES:
                        continue
                    data = array.tobytes()
                    digest = hashlib.sha256(f"{array.dtype}{array.shape}".encode() + data).hexdigest()
                    if digest not in offsets:
                        blob.write(b"\0" * (-blob.tell() % SHARED_ALIGNMENT))
                        offsets[digest] = (blob.tell(), len(data))
                        blob.write(data)
                    offset, length = offsets[digest]
                    tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
                    external_data_helper.set_external_data(tensor, name, offset, length)
                    tensor.data_location = onnx.TensorProto.EXTERNAL
                    tensor.ClearField("raw_data")
                onnx.save_model(model, str(path))
        shared[precision] = name
    return shared


def manifest_for(config: StudentConfig, graphs: dict[str, dict[str, str]], files: dict[str, str], *, name: str,
                 version: str, fps: float, license: str, training_data: str, notes: str = "",
                 weights: dict[str, str] | None = None, portrait: str = "") -> PackManifest:
    """The manifest of a pack holding ``graphs`` (graph → precision → file) with ``files`` (file → sha256)."""
    return PackManifest(
        name=name, version=version, resolution=(config.size, config.size), fps=fps, keypoint_layout=KEYPOINT_LAYOUT,
        steps=len(config.timesteps), timesteps=config.timesteps, sampler=config.sampler,
        chunk_size=config.chunk_frames, cache_frames=config.cache_frames, top_k=config.top_k,
        keep_recent=config.keep_recent, block_size=config.block_size, op_version=OP_VERSION, model=config.model(),
        graphs=graphs, files=files, license=license, training_data=training_data, notes=notes,
        weights=weights or {}, portrait=portrait)


def build_pack(export_dir: Path, out: Path, config: StudentConfig, graphs: dict[str, dict[str, str]], *, name: str,
               version: str, fps: float = 25.0, license: str, training_data: str, notes: str = "",
               as_zip: bool = False, portrait: Path | None = None) -> Path:
    """Copies the graphs of ``export_dir`` into a new pack at ``out`` (a folder, or ``out`` as a .zip), with
    ``portrait`` (a PNG or JPEG: the presenter the pack was made for) as ``portrait.png``/``.jpg``, writes its
    manifest and verifies it; returns the pack's path."""
    folder = out.with_suffix("") if as_zip else out
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not empty; choose a new pack folder")
    folder.mkdir(parents=True, exist_ok=True)
    for variants in graphs.values():
        for file in variants.values():
            shutil.copyfile(export_dir / file, folder / file)
    weights = share_weights(folder, graphs)
    listed = [file for variants in graphs.values() for file in variants.values()] + list(weights.values())
    portrait_name = ""
    if portrait is not None:
        portrait_name = "portrait" + portrait.suffix.lower()
        shutil.copyfile(portrait, folder / portrait_name)
        listed.append(portrait_name)
    files = {file: sha256_of(folder / file) for file in listed}
    manifest = manifest_for(config, graphs, files, name=name, version=version, fps=fps, license=license,
                            training_data=training_data, notes=notes, weights=weights, portrait=portrait_name)
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
