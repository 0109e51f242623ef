"""inference.ops: finding the library, saying why it cannot be used, registering it."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest

from inference import ops
from inference.errors import CustomOpError


def test_available_when_built(op_library: Path) -> None:
    ok, reason = ops.availability()
    assert ok, reason
    assert str(op_library) in reason and f"{ops.OP_DOMAIN} ops v{ops.OP_VERSION}" in reason
    assert isinstance(ops.has_cuda_kernel(), bool)


def test_register_adds_the_domain(op_library: Path) -> None:
    options = ort.SessionOptions()
    ops.register(options)  # a bad library would raise here


def test_missing_library_says_how_to_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ops.LIBRARY_ENV, str(tmp_path / "libpodium_ops.so"))
    assert ops.library_path() is None
    ok, reason = ops.availability()
    assert not ok and "not built" in reason and "installer/build_ops.sh" in reason and "\n" not in reason
    assert not ops.has_cuda_kernel()
    with pytest.raises(CustomOpError, match="installer/build_ops.sh"):
        ops.register(ort.SessionOptions())


def test_broken_library_says_it_cannot_be_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "libpodium_ops.so"
    broken.write_bytes(b"not a shared library")
    monkeypatch.setenv(ops.LIBRARY_ENV, str(broken))
    ok, reason = ops.availability()
    assert not ok and "cannot be loaded" in reason and "installer/build_ops.sh" in reason
    with pytest.raises(CustomOpError, match="cannot be loaded"):
        ops.register(ort.SessionOptions())


def test_version_mismatch_is_reported(op_library: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ops, "OP_VERSION", ops.OP_VERSION + 1)
    ok, reason = ops.availability()
    assert not ok and f"needs version {ops.OP_VERSION}" in reason
