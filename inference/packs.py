"""Model packs: finding them, reading their manifests, verifying them before anything loads.

A pack is a folder (or a ``.zip`` of one) holding ``manifest.json`` and the ONNX graphs of the IASA
student. The manifest says what the pack is (name, version, license, training data), what it renders
(resolution, fps, keypoint layout), how it streams (steps, chunk size, cache size, top-K, block size),
which custom-op version it needs, the architecture numbers the runtime checks the graphs against, and
the sha256 of every file. :func:`load_pack` verifies all of it and raises :class:`ModelLoadError`
with one sentence saying what is wrong and what to do; :func:`find_packs` lists packs with a status.

The graphs (see ``training/export_student.py`` for their inputs and outputs):

* ``encoder``: RGB uint8 ``[1, H, W, 3]`` → latent; ``reference``: latent → the reference tokens' keys
  and values of every layer; ``student``: one denoising step (or the cache refresh) of a chunk with
  the custom op; ``decoder``: latents → RGB uint8 ``[F, H, W, 3]``.
* optional ``student_fallback``: the same step with ONNX Runtime's dense attention and the block mask
  as an additive bias (same result, full cost; used when the custom op cannot load);
* optional ``student_dense``: the same model attending densely to the whole cache (for comparison).

Each graph comes in one or more precisions (``float32`` for the CPU, ``float16`` for CUDA). The graphs of
one precision may keep their weights in one shared file (``weights``: precision → file name, ONNX external
data): the student, reference and fallback graphs all hold the same transformer, which is then stored once.
The runtime hands that file to ONNX Runtime from memory (:meth:`ModelPack.weight_files`), so folder and zip
packs load alike and only verified bytes are used; a graph that points at any other external file fails to
load with a message. A pack may also hold the portrait it was made for (``portrait``: a PNG or JPEG file
name, :meth:`ModelPack.portrait`): renderers show it when the user has not chosen a portrait.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from inference.errors import ModelLoadError
from inference.paths import ASSETS_DIR, user_packs_dir
from inference.render.pose_map import PoseMapStyle

MANIFEST = "manifest.json"
PACK_FORMAT = 2  # 2: optional shared weight files (``weights``) and the pack's own ``portrait``
KIND = "iasa-student"
KEYPOINT_LAYOUT = "dwpose-134"
REQUIRED_GRAPHS = ("encoder", "reference", "student", "decoder")
OPTIONAL_GRAPHS = ("student_fallback", "student_dense")
PRECISIONS = ("float32", "float16")
AUTOENCODER_FACTOR = 8  # pixels per latent cell
BLOCK_SIZES = (64, 128)  # what the custom op takes

_REPACK = "rebuild the pack with training/pack.py, or download it again"


@dataclass(frozen=True)
class StudentModel:
    """The architecture numbers the runtime needs to size buffers and check the graphs.

    Attributes:
        latent_channels: channels of the autoencoder's latent (8× smaller than the frame).
        patch: latent cells per token side (2: one token covers 16×16 pixels).
        width: transformer width; heads: attention heads (``width / heads`` = head dim); depth: layers.
        pooled_reference: whether the student takes a pooled reference embedding.
        aligned_reference: whether the student takes the reference's per-token embedding (``reference_tokens``),
            added to every frame's tokens; optional in the manifest (packs before it have none).
        limbs_leaving_frame, face_contours: the pose-map style the student was trained on
            (:class:`inference.render.pose_map.PoseMapStyle`); optional in the manifest (packs before them have
            none: they were trained without).
    """

    latent_channels: int
    patch: int
    width: int
    depth: int
    heads: int
    pooled_reference: bool = True
    aligned_reference: bool = False
    limbs_leaving_frame: bool = False
    face_contours: bool = False

    @property
    def pose_style(self) -> PoseMapStyle:
        """How the engine draws this student's pose maps."""
        return PoseMapStyle(**{f.name: getattr(self, f.name) for f in fields(PoseMapStyle)})

    @property
    def head_dim(self) -> int:
        return self.width // self.heads


@dataclass(frozen=True)
class PackManifest:
    """The contents of ``manifest.json`` (format :data:`PACK_FORMAT`). Times follow
    :mod:`inference.render.student.sampling` (0 = noise, 1 = clean)."""

    name: str
    version: str
    resolution: tuple[int, int]  # (width, height) in pixels
    fps: float
    keypoint_layout: str
    steps: int
    timesteps: tuple[float, ...]
    sampler: str
    chunk_size: int  # frames generated together
    cache_frames: int  # past frames kept on the GPU
    top_k: int  # past frames a chunk attends to
    keep_recent: int  # of those, always the newest ones
    block_size: int  # attention block side, tokens
    op_version: int  # ai.podium opset version the student graphs need (inference.ops.OP_VERSION)
    model: StudentModel
    graphs: dict[str, dict[str, str]]  # graph → precision → file name
    files: dict[str, str]  # file name → sha256 (hex)
    license: str
    training_data: str
    kind: str = KIND
    format: int = PACK_FORMAT
    notes: str = ""
    weights: dict[str, str] = field(default_factory=dict)  # precision → shared weight file (format 2)
    portrait: str = ""  # the portrait the pack was made for, a file of the pack ("": none; format 2)

    @property
    def latent_size(self) -> tuple[int, int]:
        """(width, height) of a latent."""
        return self.resolution[0] // AUTOENCODER_FACTOR, self.resolution[1] // AUTOENCODER_FACTOR

    @property
    def token_grid(self) -> tuple[int, int]:
        """(rows, cols) of a frame's tokens."""
        width, height = self.latent_size
        return height // self.model.patch, width // self.model.patch

    @property
    def tokens_per_frame(self) -> int:
        rows, cols = self.token_grid
        return rows * cols

    def to_json(self) -> dict[str, Any]:
        """The manifest as written to ``manifest.json``."""
        data = asdict(self)
        data["resolution"] = list(self.resolution)
        data["timesteps"] = list(self.timesteps)
        if not self.portrait:
            del data["portrait"]
        return data

    @staticmethod
    def from_json(data: object, where: str) -> PackManifest:
        """Parses and checks a manifest; raises :class:`ModelLoadError` naming the first bad field."""
        reader = _FieldReader(data, where)
        fmt = reader.integer("format", minimum=1)
        if fmt > PACK_FORMAT:
            raise ModelLoadError(f"{where}: the pack has format {fmt}, this Podium reads format {PACK_FORMAT} "
                                 f"packs; update Podium to use it")
        kind = reader.string("kind")
        if kind != KIND:
            raise ModelLoadError(f"{where}: the pack is a {kind!r} pack, not an {KIND!r} pack; pick an IASA student pack")
        model_reader = _FieldReader(reader.mapping("model"), f"{where} (model)")
        model = StudentModel(latent_channels=model_reader.integer("latent_channels", minimum=1),
                             patch=model_reader.integer("patch", minimum=1),
                             width=model_reader.integer("width", minimum=1),
                             depth=model_reader.integer("depth", minimum=1),
                             heads=model_reader.integer("heads", minimum=1),
                             pooled_reference=model_reader.boolean("pooled_reference"),
                             aligned_reference=model_reader.boolean("aligned_reference", default=False),
                             **{f.name: model_reader.boolean(f.name, default=False) for f in fields(PoseMapStyle)})
        manifest = PackManifest(
            name=reader.string("name"), version=reader.string("version"),
            resolution=reader.pair("resolution"), fps=reader.number("fps", minimum=1.0),
            keypoint_layout=reader.string("keypoint_layout"), steps=reader.integer("steps", minimum=1),
            timesteps=reader.numbers("timesteps"), sampler=reader.string("sampler"),
            chunk_size=reader.integer("chunk_size", minimum=1), cache_frames=reader.integer("cache_frames", minimum=1),
            top_k=reader.integer("top_k", minimum=1), keep_recent=reader.integer("keep_recent", minimum=0),
            block_size=reader.integer("block_size", minimum=1), op_version=reader.integer("op_version", minimum=1),
            model=model, graphs=reader.graphs("graphs"), files=reader.hashes("files"),
            license=reader.string("license"), training_data=reader.string("training_data"), kind=kind, format=fmt,
            notes=str(reader.data.get("notes", "")),
            weights=reader.weights("weights") if "weights" in reader.data else {},
            portrait=reader.string("portrait") if reader.data.get("portrait", "") != "" else "")
        _check_consistency(manifest, where)
        return manifest


class _FieldReader:
    """Reads typed fields of a JSON object, raising ModelLoadError with the field's name."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise ModelLoadError(f"{where}: expected a JSON object, found {type(data).__name__}; {_REPACK}")
        self.data: dict[str, Any] = data
        self.where = where

    def _get(self, key: str) -> Any:
        if key not in self.data:
            raise ModelLoadError(f"{self.where}: the field {key!r} is missing; {_REPACK}")
        return self.data[key]

    def _bad(self, key: str, expected: str) -> ModelLoadError:
        return ModelLoadError(f"{self.where}: the field {key!r} is {self.data[key]!r}, expected {expected}; {_REPACK}")

    def string(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value:
            raise self._bad(key, "a non-empty string")
        return value

    def boolean(self, key: str, default: bool | None = None) -> bool:
        """The field ``key``; a missing one is ``default`` where given (fields newer packs added), else an error."""
        if default is not None and key not in self.data:
            return default
        value = self._get(key)
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def integer(self, key: str, minimum: int) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._bad(key, f"an integer of at least {minimum}")
        return value

    def number(self, key: str, minimum: float) -> float:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= minimum:
            raise self._bad(key, f"a number of at least {minimum}")
        return float(value)

    def numbers(self, key: str) -> tuple[float, ...]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                                  for v in value):
            raise self._bad(key, "a list of numbers")
        return tuple(float(v) for v in value)

    def pair(self, key: str) -> tuple[int, int]:
        value = self._get(key)
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
            raise self._bad(key, "[width, height] in pixels")
        return int(value[0]), int(value[1])

    def mapping(self, key: str) -> dict[str, Any]:
        value = self._get(key)
        if not isinstance(value, dict):
            raise self._bad(key, "a JSON object")
        return value

    def graphs(self, key: str) -> dict[str, dict[str, str]]:
        value = self.mapping(key)
        out: dict[str, dict[str, str]] = {}
        for graph, variants in value.items():
            if graph not in REQUIRED_GRAPHS + OPTIONAL_GRAPHS:
                raise ModelLoadError(f"{self.where}: unknown graph {graph!r} in 'graphs' (known: "
                                     f"{', '.join(REQUIRED_GRAPHS + OPTIONAL_GRAPHS)}); {_REPACK}")
            if (not isinstance(variants, dict) or not variants
                    or not all(p in PRECISIONS and isinstance(f, str) and f for p, f in variants.items())):
                raise ModelLoadError(f"{self.where}: graph {graph!r} must map precisions "
                                     f"({', '.join(PRECISIONS)}) to file names, got {variants!r}; {_REPACK}")
            out[graph] = dict(variants)
        missing = [g for g in REQUIRED_GRAPHS if g not in out]
        if missing:
            raise ModelLoadError(f"{self.where}: the pack lacks the {', '.join(missing)} graph(s); {_REPACK}")
        return out

    def weights(self, key: str) -> dict[str, str]:
        value = self.mapping(key)
        for precision, file in value.items():
            if precision not in PRECISIONS or not isinstance(file, str) or not file:
                raise self._bad(key, f"precision ({', '.join(PRECISIONS)}) → weight file name")
        return dict(value)

    def hashes(self, key: str) -> dict[str, str]:
        value = self.mapping(key)
        for name, digest in value.items():
            if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
                raise ModelLoadError(f"{self.where}: the sha256 of {name!r} is {digest!r}, not 64 lowercase hex "
                                     f"digits; {_REPACK}")
        return dict(value)


def _check_consistency(m: PackManifest, where: str) -> None:
    """Cross-field rules; raises ModelLoadError."""
    def fail(problem: str) -> None:
        raise ModelLoadError(f"{where}: {problem}; {_REPACK}")

    if m.keypoint_layout != KEYPOINT_LAYOUT:
        fail(f"keypoint_layout is {m.keypoint_layout!r}, Podium's motion stage produces {KEYPOINT_LAYOUT!r}")
    if len(m.timesteps) != m.steps:
        fail(f"steps is {m.steps} but timesteps lists {len(m.timesteps)} times")
    from inference.render.student.sampling import SAMPLERS, validate_timesteps

    try:
        validate_timesteps(m.timesteps)
    except ValueError as exc:
        fail(str(exc))
    if m.sampler not in SAMPLERS:
        fail(f"sampler is {m.sampler!r}, expected one of {', '.join(SAMPLERS)}")
    side = AUTOENCODER_FACTOR * m.model.patch
    if m.resolution[0] % side or m.resolution[1] % side:
        fail(f"resolution {m.resolution[0]}x{m.resolution[1]} is not a multiple of {side} pixels (one token)")
    if m.block_size not in BLOCK_SIZES:
        fail(f"block_size is {m.block_size}, the custom op takes {' or '.join(map(str, BLOCK_SIZES))}")
    if m.tokens_per_frame % m.block_size:
        fail(f"a frame's {m.tokens_per_frame} tokens are not a whole number of {m.block_size}-token blocks")
    if m.model.width % m.model.heads:
        fail(f"width {m.model.width} is not divisible by heads {m.model.heads}")
    if m.top_k > m.cache_frames or m.keep_recent > m.top_k:
        fail(f"need keep_recent ({m.keep_recent}) <= top_k ({m.top_k}) <= cache_frames ({m.cache_frames})")
    for graph, variants in m.graphs.items():
        for precision, file in variants.items():
            if file not in m.files:
                fail(f"graph {graph} ({precision}) is {file!r}, which has no sha256 in 'files'")
    if m.portrait and m.portrait not in m.files:
        fail(f"the portrait is {m.portrait!r}, which has no sha256 in 'files'")
    for precision, file in m.weights.items():
        if file not in m.files:
            fail(f"the {precision} weights are {file!r}, which has no sha256 in 'files'")
        if "/" in file or "\\" in file:
            fail(f"the {precision} weight file {file!r} is not a plain file name inside the pack")


# --------------------------------------------------------------------------------------------------
# Loading and verifying
# --------------------------------------------------------------------------------------------------

@dataclass
class ModelPack:
    """A verified pack. Graphs are read with :meth:`graph_source`."""

    path: Path
    manifest: PackManifest
    _zip_prefix: str | None = field(default=None, repr=False)

    @property
    def is_zip(self) -> bool:
        return self._zip_prefix is not None

    def precisions(self, graph: str) -> tuple[str, ...]:
        """Precisions the pack has for ``graph`` (empty if it has no such graph)."""
        return tuple(self.manifest.graphs.get(graph, {}))

    def graph_source(self, graph: str, precision: str) -> str | bytes:
        """What ``onnxruntime.InferenceSession`` takes: a file path (folder pack) or the bytes (zip pack)."""
        try:
            name = self.manifest.graphs[graph][precision]
        except KeyError:
            raise ModelLoadError(f"model pack {self.path} has no {precision} {graph} graph (it has "
                                 f"{', '.join(self.precisions(graph)) or 'none'})") from None
        return self._read(name)

    def weight_files(self, precision: str) -> dict[str, bytes]:
        """The shared weight file of ``precision`` as ``{name: bytes}`` (empty when its graphs hold their own
        weights), for ``SessionOptions.add_external_initializers_from_files_in_memory``. The bytes are checked
        against the manifest's sha256 again, so what ONNX Runtime gets is what was verified."""
        name = self.manifest.weights.get(precision)
        if name is None:
            return {}
        data = self._read(name, as_bytes=True)
        _check_hash(self.path, name, hashlib.sha256(data).hexdigest(), self.manifest.files[name])
        return {name: data}

    def portrait(self) -> bytes | None:
        """The encoded image (PNG or JPEG) of the portrait the pack was made for, or None."""
        return self._read(self.manifest.portrait, as_bytes=True) if self.manifest.portrait else None

    def _read(self, name: str, as_bytes: bool = False) -> str | bytes:
        if self._zip_prefix is None:
            return (self.path / name).read_bytes() if as_bytes else str(self.path / name)
        with zipfile.ZipFile(self.path) as archive:
            return archive.read(self._zip_prefix + name)


_verified: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) → sha256, for folder packs


def load_pack(path: str | Path) -> ModelPack:
    """Reads and verifies the pack at ``path`` (a folder or a ``.zip``).

    Checks the manifest (fields, types, consistency), that the pack needs no newer custom op than this
    Podium has, and that every file it lists is there with the listed sha256.

    Raises:
        ModelLoadError: anything wrong, in one sentence with the fix.
    """
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model pack {path} does not exist; choose a pack folder or .zip from `main.py doctor`")
    if path.is_dir():
        pack = _load_folder(path)
    elif zipfile.is_zipfile(path):
        pack = _load_zip(path)
    else:
        raise ModelLoadError(f"model pack {path} is neither a folder nor a zip archive; {_REPACK}")
    _check_op_version(pack.manifest, path)
    return pack


def _load_folder(path: Path) -> ModelPack:
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ModelLoadError(f"model pack {path} has no {MANIFEST}; {_REPACK}")
    manifest = PackManifest.from_json(_parse_manifest(manifest_path.read_bytes, manifest_path), str(manifest_path))
    for name, expected in manifest.files.items():
        file = path / name
        if not file.is_file():
            raise ModelLoadError(f"model pack {path}: the file {name} is missing; {_REPACK}")
        stat = file.stat()
        key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _verified:
            _verified[key] = _sha256_file(file)
        _check_hash(path, name, _verified[key], expected)
    return ModelPack(path=path, manifest=manifest)


def _load_zip(path: Path) -> ModelPack:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            manifests = sorted(n for n in names if n == MANIFEST or n.endswith("/" + MANIFEST))
            if not manifests:
                raise ModelLoadError(f"model pack {path} holds no {MANIFEST}; {_REPACK}")
            prefix = manifests[0][: -len(MANIFEST)]
            where = f"{path}:{manifests[0]}"
            manifest = PackManifest.from_json(_parse_manifest(lambda: archive.read(manifests[0]), where), where)
            for name, expected in manifest.files.items():
                if prefix + name not in names:
                    raise ModelLoadError(f"model pack {path}: the file {name} is missing from the archive; {_REPACK}")
                digest = hashlib.sha256()
                with archive.open(prefix + name) as member:
                    for block in iter(lambda: member.read(1 << 20), b""):  # noqa: B023 - consumed at once
                        digest.update(block)
                _check_hash(path, name, digest.hexdigest(), expected)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelLoadError(f"model pack {path} is a damaged zip archive ({exc}); {_REPACK}") from exc
    return ModelPack(path=path, manifest=manifest, _zip_prefix=prefix)


def _parse_manifest(read: Any, where: Path | str) -> object:
    try:
        return json.loads(read())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(f"{where} cannot be read as JSON ({exc}); {_REPACK}") from exc


def _sha256_file(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_hash(path: Path, name: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise ModelLoadError(f"model pack {path}: the file {name} is damaged or was changed (sha256 {actual[:12]}…, "
                             f"the manifest says {expected[:12]}…); download or rebuild the pack")


def _check_op_version(manifest: PackManifest, path: Path) -> None:
    from inference.ops import OP_DOMAIN, OP_VERSION

    if manifest.op_version > OP_VERSION:
        raise ModelLoadError(f"model pack {path} needs the {OP_DOMAIN} ops version {manifest.op_version}, this Podium has "
                             f"version {OP_VERSION}; update Podium (and rebuild the op with installer/build_ops.sh)")


def sha256_of(file: Path) -> str:
    """The sha256 (hex) of a file, as the manifest lists it."""
    return _sha256_file(Path(file))


# --------------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PackInfo:
    """A pack found on disk. ``status`` is "ok" or what is wrong with its manifest (files are not hashed
    here; :func:`load_pack` does that)."""

    name: str
    path: Path
    status: str
    manifest: PackManifest | None = None


def pack_folders() -> list[Path]:
    """Folders searched for packs, bundled first."""
    return [ASSETS_DIR / "packs", user_packs_dir()]


def find_packs() -> list[PackInfo]:
    """Every pack folder (with a manifest) and ``.zip`` in :func:`pack_folders`, with its status."""
    found = []
    for folder in pack_folders():
        if not folder.is_dir():
            continue
        for candidate in sorted(folder.iterdir()):
            if candidate.is_dir() and (candidate / MANIFEST).exists():
                found.append(_describe(candidate, lambda c=candidate: (c / MANIFEST).read_bytes(),
                                       str(candidate / MANIFEST)))
            elif candidate.suffix.lower() == ".zip" and candidate.is_file():
                found.append(_describe_zip(candidate))
    return found


def _describe(path: Path, read: Any, where: str) -> PackInfo:
    try:
        manifest = PackManifest.from_json(_parse_manifest(read, where), where)
        _check_op_version(manifest, path)
    except ModelLoadError as exc:
        return PackInfo(name=path.stem, path=path, status=str(exc))
    return PackInfo(name=manifest.name, path=path, status="ok", manifest=manifest)


def _describe_zip(path: Path) -> PackInfo:
    try:
        with zipfile.ZipFile(path) as archive:
            manifests = sorted(n for n in archive.namelist() if n == MANIFEST or n.endswith("/" + MANIFEST))
            if not manifests:
                return PackInfo(name=path.stem, path=path, status=f"no {MANIFEST} in the archive")
            data = archive.read(manifests[0])
    except (zipfile.BadZipFile, OSError) as exc:
        return PackInfo(name=path.stem, path=path, status=f"damaged zip archive ({exc})")
    return _describe(path, lambda: data, f"{path}:{manifests[0]}")
