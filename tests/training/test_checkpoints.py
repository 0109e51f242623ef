"""Checkpoints in parts: bit-exact round trips, and a clear message for every way a part can be wrong."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from training.checkpoints import (
    HEADER_BYTES,
    CheckpointError,
    bf16_state_dict,
    load_checkpoint,
    main,
    read_manifest,
    save_checkpoint,
)
from training.models.autoencoder import load_autoencoder

SMALL_PARTS = HEADER_BYTES + 40_000


def _state() -> dict:
    generator = torch.Generator().manual_seed(0)
    return {
        "model": {"w": torch.randn(64, 200, generator=generator), "b": torch.randn(7, generator=generator).bfloat16(),
                  "count": torch.tensor(3, dtype=torch.int64)},
        "run": {"step": 12, "history": [{"loss": 0.5}], "name": "x"},
    }


def _write(tmp_path, **kwargs) -> list:
    return save_checkpoint(tmp_path, "weights", _state(), meta={"kind": "test", "step": 12}, part_bytes=SMALL_PARTS,
                           **kwargs)


def test_round_trip_is_bit_exact_across_parts(tmp_path):
    files = _write(tmp_path)
    assert len(files) == 2 and [f.name for f in files] == ["weights.p1of2.ckpt", "weights.p2of2.ckpt"]
    assert all(f.stat().st_size <= SMALL_PARTS for f in files)
    for where in (tmp_path / "weights", files[1], tmp_path / "weights.ckpt"):
        checkpoint = load_checkpoint(where)
        original = _state()
        for key, tensor in original["model"].items():
            loaded = checkpoint.state["model"][key]
            assert loaded.dtype == tensor.dtype and torch.equal(loaded, tensor)
        assert checkpoint.state["run"] == original["run"] and checkpoint.meta == {"kind": "test", "step": 12}
    assert checkpoint.sha256 == read_manifest(files[0])["payload_sha256"]
    assert checkpoint.sha256 == hashlib.sha256(b"".join(f.read_bytes()[12 + _header_length(f):] for f in files)).hexdigest()


def _header_length(path) -> int:
    return int.from_bytes(path.read_bytes()[8:12], "little")


def test_a_missing_part_is_named(tmp_path):
    files = _write(tmp_path)
    files[1].unlink()
    with pytest.raises(CheckpointError, match=r"has 2 parts but part 2 \(weights.p2of2.ckpt\) is missing"):
        load_checkpoint(files[0])


def test_a_damaged_part_is_named(tmp_path):
    files = _write(tmp_path)
    data = bytearray(files[1].read_bytes())
    data[-5] ^= 0xFF
    files[1].write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="part 2 of 2 of checkpoint 'weights' is damaged"):
        load_checkpoint(tmp_path / "weights")
    files[1].write_bytes(files[1].read_bytes()[:100])  # truncated inside the header
    with pytest.raises(CheckpointError, match="damaged header"):
        load_checkpoint(tmp_path / "weights")


def test_parts_of_two_saves_do_not_mix(tmp_path):
    first = _write(tmp_path)
    kept = first[1].read_bytes()
    save_checkpoint(tmp_path, "weights", {**_state(), "extra": torch.ones(3)}, part_bytes=SMALL_PARTS)
    (tmp_path / "weights.p2of2.ckpt").write_bytes(kept)
    with pytest.raises(CheckpointError, match="belongs to another save"):
        load_checkpoint(tmp_path / "weights")


def test_a_new_save_removes_the_parts_of_the_old_one(tmp_path):
    _write(tmp_path)
    save_checkpoint(tmp_path, "weights", {"x": torch.zeros(2)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.p1of1.ckpt"]


def test_wrong_inputs_get_clear_messages(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint named 'weights'"):
        load_checkpoint(tmp_path / "weights")
    (tmp_path / "other.p1of1.ckpt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a Podium checkpoint part"):
        load_checkpoint(tmp_path / "other.p1of1.ckpt")
    with pytest.raises(ValueError, match="may hold only letters"):
        save_checkpoint(tmp_path, "bad name/x", {})
    with pytest.raises(ValueError, match="JSON-able"):
        save_checkpoint(tmp_path, "w", {}, meta={"x": object()})
    save_checkpoint(tmp_path, "teacherish", {"transformer": {}}, meta={"kind": "teacher"})
    with pytest.raises(CheckpointError, match="not an autoencoder"):
        load_autoencoder(tmp_path / "teacherish")


def test_bf16_state_dict_halves_floats_and_keeps_integers():
    module = torch.nn.Linear(3, 2)
    module.register_buffer("count", torch.tensor(5))
    state = bf16_state_dict(module)
    assert state["weight"].dtype == torch.bfloat16 and state["count"].dtype == torch.int64


def test_the_command_verifies_and_reports(tmp_path, capsys):
    _write(tmp_path)
    assert main([str(tmp_path / "weights")]) == 0
    out = capsys.readouterr().out
    assert "2 part(s) verified" in out and json.loads(out.split("\n", 1)[1]) == {"kind": "test", "step": 12}
    (tmp_path / "weights.p1of2.ckpt").unlink()
    assert main([str(tmp_path / "weights")]) == 1
    assert "missing" in capsys.readouterr().err
