"""What comes back from the GPU machine: the most important files first, never past the device tool's limits."""

from __future__ import annotations

from training.gpu.outbox import main, plan


def _sparse(path, mib: float):
    with open(path, "wb") as f:
        f.truncate(int(mib * 2**20))
    return path


def test_files_are_taken_in_order_until_a_limit(tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    for i in range(10):
        (src / f"f{i}.txt").write_text(str(i))
    decisions = plan(tmp_path / "out", [("a", str(src / "f*.txt"))])
    kept = [d for d in decisions if d.target is not None]
    assert [d.source.name for d in kept] == [f"f{i}.txt" for i in range(8)]
    assert {d.reason for d in decisions if d.target is None} == {"the 8 files are taken"}


def test_size_depth_name_and_missing_files_are_reported(tmp_path):
    parts = [_sparse(tmp_path / f"part{i}.ckpt", 15) for i in range(5)]
    _sparse(tmp_path / "huge.ckpt", 17)
    (tmp_path / "bad name.txt").write_text("x")
    requests = [("t", str(p)) for p in parts] + [("t", str(tmp_path / "huge.ckpt")), ("a/b/c", str(parts[0])),
                                                  ("t", str(tmp_path / "bad name.txt")), ("t", str(tmp_path / "nope*"))]
    reasons = [d.reason for d in plan(tmp_path / "out", requests)]
    assert reasons[:4] == ["", "", "", ""]
    assert "together would pass 64 MiB" in reasons[4]
    assert "over the 16 MiB a file" in reasons[5]
    assert "more than two levels deep" in reasons[6]
    assert "name has characters" in reasons[7]
    assert reasons[8] == "no such file"


def test_the_command_copies_and_refuses_malformed_requests(tmp_path, capsys):
    (tmp_path / "metrics.json").write_text("{}")
    assert main([str(tmp_path / "out"), f"teacher={tmp_path / 'metrics.json'}", f".={tmp_path / 'missing.txt'}"]) == 0
    assert (tmp_path / "out" / "teacher" / "metrics.json").read_text() == "{}"
    assert "left out" in capsys.readouterr().out
    assert main([str(tmp_path / "out"), "no-equals-sign"]) == 1
    assert "is not FOLDER=PATTERN" in capsys.readouterr().err
