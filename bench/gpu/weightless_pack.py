"""Carry a random-weight model pack to a GPU machine without its weights, and give it weights there.

Benchmarks time random-weight packs (speed does not depend on the weights). A 512×512 student's weights
are hundreds of megabytes, more than one device call can carry, while the graphs' structure is a few
megabytes; exporting it on the GPU machine would cost device time. A pack keeps its weights in one shared
file per precision (the manifest's ``weights``, see :func:`training.pack.share_weights`), so:

* ``strip PACK OUT``: copies the pack without its weight files;
* ``fill OUT PACK [--seed N]``: writes those files with random normal values (× 0.02) where the graphs'
  external data points, recomputes the sha256 of every file and writes the manifest, giving a pack that
  :func:`inference.packs.load_pack` accepts.

Usage: python -m bench.gpu.weightless_pack strip|fill SRC DST [--seed N]   (needs the onnx package)
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from inference.packs import MANIFEST, sha256_of


def strip(pack: Path, out: Path) -> None:
    """Writes the weightless copy of ``pack`` into ``out``.

    Raises:
        ValueError: the pack keeps its weights inside its graphs (rebuild it with training/pack.py).
    """
    manifest = json.loads((pack / MANIFEST).read_text(encoding="utf-8"))
    weights = set(manifest.get("weights", {}).values())
    if not weights:
        raise ValueError(f"{pack} has no shared weight files to leave out; rebuild it with training/pack.py")
    out.mkdir(parents=True, exist_ok=True)
    for name in [*manifest["files"], MANIFEST]:
        if name not in weights:
            shutil.copyfile(pack / name, out / name)


def fill(skeleton: Path, out: Path, seed: int = 0) -> None:
    """Writes a loadable pack into ``out`` from the weightless copy ``skeleton``."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((skeleton / MANIFEST).read_text(encoding="utf-8"))
    weights = set(manifest["weights"].values())
    regions: dict[str, dict[int, tuple[int, np.dtype]]] = {name: {} for name in weights}  # offset → (length, dtype)
    for name in manifest["files"]:
        if name in weights:
            continue
        shutil.copyfile(skeleton / name, out / name)
        if name.endswith(".onnx"):
            model = onnx.load(str(skeleton / name), load_external_data=False)
            for tensor in model.graph.initializer:
                if tensor.data_location == TensorProto.EXTERNAL:
                    info = {entry.key: entry.value for entry in tensor.external_data}
                    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type))
                    regions[info["location"]][int(info["offset"])] = (int(info["length"]), dtype)
    for location, tensors in regions.items():
        with (out / location).open("wb") as handle:
            for offset, (length, dtype) in sorted(tensors.items()):
                values = 0.02 * rng.standard_normal(length // dtype.itemsize)
                handle.seek(offset)
                handle.write(values.astype(dtype).tobytes() if dtype.kind == "f" else bytes(length))
    manifest["files"] = {name: sha256_of(out / name) for name in manifest["files"]}
    manifest["notes"] = (manifest.get("notes", "") + " random weights filled by bench/gpu/weightless_pack.py").strip()
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.weightless_pack", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["strip", "fill"])
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.action == "strip":
        strip(args.source, args.destination)
    else:
        fill(args.source, args.destination, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
