"""Checkpoints that travel: a state dict split into self-describing parts of at most 15 MiB.

The GPU machine brings back at most 8 files of 16 MiB each (64 MiB together), so weights leave it as parts:

    save_checkpoint("runs/t", "teacher_ema", {"model": bf16_state_dict(ema)}, meta={"step": 4000})
    # → runs/t/teacher_ema.p1of3.ckpt, teacher_ema.p2of3.ckpt, teacher_ema.p3of3.ckpt
    checkpoint = load_checkpoint("runs/t/teacher_ema")     # or the path of any part
    checkpoint.state["model"], checkpoint.meta["step"]

    python -m training.checkpoints runs/t/teacher_ema     # print the manifest and verify every part

One part file is::

    b"PODIUMCK" | header length (uint32, little-endian) | header (UTF-8 JSON) | payload slice

The payload is ``torch.save(state)``, cut into consecutive slices. Every part's header is the whole
manifest (format, name, part number, every part's file name, size and SHA-256, the payload's SHA-256,
and ``meta``: small JSON-able facts such as the preset and step), so any one part names the others
and a missing, foreign or damaged part is reported by name. There is no separate manifest file: each
file counts against the 8 that come back.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import io
import json
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inference.errors import InputFileError, OutputFileError

FORMAT = "podium-checkpoint/1"
MAGIC = b"PODIUMCK"
#: Largest part written by default: under the device tool's 16 MiB per file, with room to spare.
PART_BYTES = 15 * 1024 * 1024
#: Bytes of each part reserved for its header (the manifest); ``meta`` must fit in it.
HEADER_BYTES = 64 * 1024
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
_PART = re.compile(r"^(?P<name>.+)\.p(?P<part>\d+)of(?P<parts>\d+)\.ckpt$")


class CheckpointError(InputFileError):
    """A checkpoint is missing, incomplete, damaged or not a checkpoint at all."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        state: what was saved (tensors on ``map_location``).
        meta: the JSON facts saved with it.
        files: its part files, in order.
        sha256: SHA-256 of the joined payload (identifies the weights, e.g. which autoencoder a teacher used).
    """

    state: dict[str, Any]
    meta: dict[str, Any]
    files: tuple[Path, ...]
    sha256: str


def part_name(name: str, part: int, parts: int) -> str:
    """File name of part ``part`` (1-based) of ``parts``: ``NAME.pKofN.ckpt``."""
    return f"{name}.p{part}of{parts}.ckpt"


def bf16_state_dict(module: nn.Module | dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A module's (or state dict's) tensors on the CPU, floating-point ones in bfloat16 (half the bytes of fp32)."""
    state = module.state_dict() if isinstance(module, nn.Module) else module
    return {k: (v.detach().to("cpu", torch.bfloat16) if v.is_floating_point() else v.detach().cpu()).clone()
            for k, v in state.items()}


def save_checkpoint(folder: str | Path, name: str, state: dict[str, Any], *, meta: dict[str, Any] | None = None,
                    part_bytes: int | None = PART_BYTES) -> list[Path]:
    """Write ``state`` as parts ``folder/NAME.pKofN.ckpt`` of at most ``part_bytes`` bytes each.

    Parts of an earlier checkpoint of the same name are removed first, so the folder never mixes two.
    Each part is written under a temporary name and renamed into place.

    Args:
        folder: output folder (created).
        name: letters, digits, ``_``, ``-`` and ``.`` only (the device tool's rule for file names).
        state: anything ``torch.load(..., weights_only=True)`` reads back: tensors, dicts, lists, numbers, strings.
        meta: small JSON-able facts stored in every part's header (at most about 60 KiB of JSON).
        part_bytes: largest file size in bytes (None: a single part, whatever its size).

    Returns:
        The part files, in order.

    Raises:
        ValueError: a bad name, a ``meta`` too large or not JSON-able, or ``part_bytes`` too small.
        OutputFileError: the folder cannot be written.
    """
    if not _NAME.match(name):
        raise ValueError(f"checkpoint name {name!r} may hold only letters, digits, '_', '-' and '.'")
    folder = Path(folder)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    meta = dict(meta or {})
    try:
        meta_json = json.dumps(meta)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint meta must be JSON-able: {exc}") from exc
    if len(meta_json) > HEADER_BYTES - 8192:
        raise ValueError(f"checkpoint meta is {len(meta_json)} bytes of JSON; keep it under {HEADER_BYTES - 8192}")
    if part_bytes is None:
        slice_bytes = max(1, len(payload))
    else:
        slice_bytes = part_bytes - HEADER_BYTES
        if slice_bytes <= 0:
            raise ValueError(f"part_bytes must exceed the {HEADER_BYTES}-byte header, got {part_bytes}")
    parts = max(1, -(-len(payload) // slice_bytes))
    slices = [payload[i * slice_bytes:(i + 1) * slice_bytes] for i in range(parts)]
    files = [part_name(name, k + 1, parts) for k in range(parts)]
    manifest = {
        "format": FORMAT, "name": name, "parts": parts, "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "files": [{"file": f, "bytes": len(s), "sha256": hashlib.sha256(s).hexdigest()} for f, s in zip(files, slices, strict=True)],
        "meta": meta,
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(f"{glob.escape(name)}.p*of*.ckpt"):
            match = _PART.match(old.name)
            if match and match["name"] == name:
                old.unlink()
        written = []
        for k, (file, data) in enumerate(zip(files, slices, strict=True)):
            header = json.dumps({**manifest, "part": k + 1}).encode("utf-8")
            path = folder / file
            partial = path.with_name(path.name + ".partial")
            with open(partial, "wb") as f:
                f.write(MAGIC + struct.pack("<I", len(header)) + header + data)
            partial.replace(path)
            written.append(path)
    except OSError as exc:
        raise OutputFileError(folder / files[0], f"cannot write the checkpoint ({exc.strerror or exc})",
                              "Check that the folder is writable and the disk has space") from exc
    return written


def _read_part(path: Path) -> tuple[dict[str, Any], bytes]:
    fix = "Copy all parts of the checkpoint again, from the run that wrote them"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(path, f"cannot read the checkpoint part ({exc.strerror or exc})", fix) from exc
    if len(data) < 12 or data[:8] != MAGIC:
        raise CheckpointError(path, "is not a Podium checkpoint part (its first bytes are wrong)", fix)
    (length,) = struct.unpack("<I", data[8:12])
    try:
        header = json.loads(data[12:12 + length].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(path, f"has a damaged header ({exc})", fix) from exc
    if header.get("format") != FORMAT:
        raise CheckpointError(path, f"has unknown checkpoint format {header.get('format')!r} (expected {FORMAT})",
                              "Load it with the version of Podium that wrote it")
    return header, data[12 + length:]


def _first_part(path: Path) -> Path:
    """The given part, or any part of the checkpoint named by ``folder/NAME`` (with or without ``.ckpt``)."""
    if path.is_file():
        return path
    stem = path.name[:-5] if path.name.endswith(".ckpt") else path.name
    candidates = sorted(p for p in path.parent.glob(f"{glob.escape(stem)}.p*of*.ckpt")
                        if (m := _PART.match(p.name)) and m["name"] == stem)
    if not candidates:
        where = path.parent if path.parent.is_dir() else f"{path.parent} (no such folder)"
        raise CheckpointError(path, f"no checkpoint named {stem!r} in {where}: expected files like "
                              f"{part_name(stem, 1, 3)}", "Give the path of a part file, or copy the checkpoint's "
                              "parts into that folder")
    return candidates[0]


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the checkpoint ``path`` names (a part file, or ``folder/NAME``), without loading it.

    Raises:
        CheckpointError: no such checkpoint, or the part is not one.
    """
    header, _ = _read_part(_first_part(Path(path)))
    return header


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Join and verify a checkpoint's parts and load it.

    Args:
        path: any of its part files, or ``folder/NAME``.
        map_location: where tensors go.

    Raises:
        CheckpointError: a part is missing, belongs to another checkpoint, or is damaged; or the joined
            payload does not load. The message names the part and says what to do.
    """
    first = _first_part(Path(path))
    manifest, _ = _read_part(first)
    folder = first.parent
    name, parts = manifest["name"], manifest["parts"]
    files = [folder / entry["file"] for entry in manifest["files"]]
    missing = [f"{k + 1} ({f.name})" for k, f in enumerate(files) if not f.is_file()]
    if missing:
        raise CheckpointError(folder / name, f"checkpoint {name!r} has {parts} parts but part "
                              f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing",
                              f"Copy all {parts} parts into {folder} together")
    chunks = []
    for k, (file, entry) in enumerate(zip(files, manifest["files"], strict=True)):
        header, data = _read_part(file)
        if header.get("payload_sha256") != manifest["payload_sha256"] or header.get("part") != k + 1:
            raise CheckpointError(file, f"belongs to another save of checkpoint {name!r} (not part {k + 1} of "
                                  f"this one)", f"Copy all {parts} parts of one save together")
        if len(data) != entry["bytes"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise CheckpointError(file, f"part {k + 1} of {parts} of checkpoint {name!r} is damaged (its size or "
                                  "checksum does not match the manifest)", "Copy that part again from the run that "
                                  "wrote it")
        chunks.append(data)
    payload = b"".join(chunks)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != manifest["payload_sha256"]:  # only if a header was forged: every slice already matched
        raise CheckpointError(folder / name, "the joined parts do not match the manifest's checksum",
                              "Copy all parts again")
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds on a bad payload
        raise CheckpointError(folder / name, f"the joined parts do not load ({exc})", "Copy all parts again") from exc
    return Checkpoint(state=state, meta=manifest.get("meta", {}), files=tuple(files), sha256=digest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.checkpoints", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a part file, or FOLDER/NAME")
    args = parser.parse_args(argv)
    try:
        checkpoint = load_checkpoint(args.checkpoint)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    tensors = _tensors(checkpoint.state)
    print(f"{checkpoint.files[0].parent}: {len(checkpoint.files)} part(s) verified, sha256 {checkpoint.sha256[:16]}…, "
          f"{sum(t.numel() for t in tensors):,} values in {len(tensors)} tensors")
    print(json.dumps(checkpoint.meta, indent=2))
    return 0


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


if __name__ == "__main__":
    raise SystemExit(main())
