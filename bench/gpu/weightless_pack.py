"""Carry a random-weight model pack to a GPU machine without its weights, and give it weights there.

Benchmarks time random-weight packs (speed does not depend on the weights). A 512×512 student graph
is hundreds of megabytes, more than one device call can carry, while its structure is a few
megabytes; exporting it on the GPU machine would cost device time. So:

* ``strip PACK OUT``: copies the pack with every floating-point initializer of 4 KiB or more turned
  into a reference to an external ``<graph>.weights`` file that is *not* written;
* ``fill OUT PACK [--seed N]``: writes those files with random normal values (× 0.02), recomputes the
  sha256 of every file and writes the manifest, giving a pack that :func:`inference.packs.load_pack`
  accepts (a folder pack with external weights).

Usage: python -m bench.gpu.weightless_pack strip|fill SRC DST [--seed N]   (needs the onnx package)
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, external_data_helper

from inference.packs import MANIFEST, sha256_of

MIN_BYTES = 4096
ALIGN = 64
_FLOATS = {TensorProto.FLOAT: np.float32, TensorProto.FLOAT16: np.float16}


def strip(pack: Path, out: Path) -> None:
    """Writes the weightless copy of ``pack`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((pack / MANIFEST).read_text(encoding="utf-8"))
    for name in manifest["files"]:
        if not name.endswith(".onnx"):
            continue
        model = onnx.load(str(pack / name))
        location, offset = Path(name).stem + ".weights", 0
        for tensor in model.graph.initializer:
            size = len(tensor.raw_data)
            if tensor.data_type in _FLOATS and size >= MIN_BYTES:
                external_data_helper.set_external_data(tensor, location=location, offset=offset, length=size)
                tensor.ClearField("raw_data")
                tensor.data_location = TensorProto.EXTERNAL
                offset += -(-size // ALIGN) * ALIGN
        onnx.save(model, str(out / name))
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def fill(skeleton: Path, out: Path, seed: int = 0) -> None:
    """Writes a loadable pack into ``out`` from the weightless copy ``skeleton``."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((skeleton / MANIFEST).read_text(encoding="utf-8"))
    files = {}
    for name in list(manifest["files"]):
        if not name.endswith(".onnx"):
            continue
        model = onnx.load(str(skeleton / name), load_external_data=False)
        shutil.copyfile(skeleton / name, out / name)
        files[name] = sha256_of(out / name)
        external = [t for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL]
        if not external:
            continue
        location = Path(name).stem + ".weights"
        with (out / location).open("wb") as handle:
            for tensor in external:
                info = {entry.key: entry.value for entry in tensor.external_data}
                dtype = _FLOATS[tensor.data_type]
                values = (0.02 * rng.standard_normal(int(info["length"]) // np.dtype(dtype).itemsize)).astype(dtype)
                handle.seek(int(info["offset"]))
                handle.write(values.tobytes())
        files[location] = sha256_of(out / location)
    manifest["files"] = files
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
