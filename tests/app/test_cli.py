"""main.py end to end, as a user runs it: help, render, bad input, devices, doctor, bench list."""

import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

REPO = Path(__file__).resolve().parents[2]


def run_main(*args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=full_env)


def test_help_lists_every_command():
    out = run_main("--help")
    assert out.returncode == 0
    for word in ("render", "devices", "doctor", "bench", "With no command, the window opens"):
        assert word in out.stdout


def test_render_writes_a_video_with_audio(tmp_path, onset_wav):
    target = tmp_path / "talk.mp4"
    out = run_main("render", "--audio", str(onset_wav), "-o", str(target), "--renderer", "pose-map", "--size", "256")
    assert out.returncode == 0, out.stderr
    assert "wrote" in out.stdout and "rendering" in out.stderr  # the progress bar
    with av.open(str(target)) as c:
        assert {s.type for s in c.streams} == {"video", "audio"}
        assert c.streams.video[0].width == 256
        assert float(c.duration / 1e6) == pytest.approx(3.0, abs=0.15)


@pytest.mark.parametrize("case", ["missing", "truncated", "text", "empty"])
def test_bad_audio_gives_one_line_error_and_no_output(tmp_path, onset_wav, case):
    audio = tmp_path / f"{case}.wav"
    if case == "truncated":
        audio.write_bytes(onset_wav.read_bytes()[:5000])
    elif case == "text":
        audio.write_text("hello\n" * 100)
    elif case == "empty":
        audio.write_bytes(b"")
    target = tmp_path / "out" / "x.mp4"
    target.parent.mkdir()
    out = run_main("render", "--audio", str(audio), "-o", str(target))
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert list(target.parent.iterdir()) == []


def test_portrait_that_is_not_an_image(tmp_path, onset_wav):
    portrait = tmp_path / "me.jpg"
    portrait.write_text("definitely not a jpeg")
    target = tmp_path / "x.mp4"
    out = run_main("render", "--audio", str(onset_wav), "--portrait", str(portrait), "-o", str(target))
    assert out.returncode == 1 and "not an image" in out.stderr and "error:" in out.stderr
    assert not target.exists()


def test_output_path_that_cannot_be_written(tmp_path, onset_wav):
    out = run_main("render", "--audio", str(onset_wav), "-o", str(tmp_path / "no" / "such" / "dir" / "x.mp4"))
    assert out.returncode == 1 and "does not exist" in out.stderr
    out = run_main("render", "--audio", str(onset_wav), "-o", str(tmp_path / "x.mov"))
    assert out.returncode == 1 and "unsupported file type" in out.stderr


def test_unknown_renderer(tmp_path, onset_wav):
    out = run_main("render", "--audio", str(onset_wav), "-o", str(tmp_path / "x.mp4"), "--renderer", "magic")
    assert out.returncode == 1 and "unknown renderer" in out.stderr


def test_devices_and_doctor_run_without_hardware():
    devices = run_main("devices")
    assert devices.returncode == 0 and "Microphones:" in devices.stdout and "Virtual cameras:" in devices.stdout
    doctor = run_main("doctor")
    assert "ONNX Runtime" in doctor.stdout and "Virtual camera" in doctor.stdout
    assert doctor.returncode in (0, 1)


def test_bench_list():
    out = run_main("bench", "--list")
    assert out.returncode == 0 and "pipeline" in out.stdout
    assert run_main("bench", "nonexistent").returncode == 2


def test_headless_start_renders_the_demo(tmp_path):
    env = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "QT_QPA_PLATFORM": "", "PODIUM_DATA_DIR": str(tmp_path)}
    out = run_main(env=env)
    assert out.returncode == 0, out.stderr
    assert "No display found" in out.stdout
    assert (tmp_path / "renders" / "demo.mp4").stat().st_size > 10_000


def test_render_and_the_demo_leave_the_portrait_to_the_renderer_unless_one_is_chosen(tmp_path, monkeypatch):
    """--portrait, else the portrait chosen in the window, else none chosen (the renderer's own, else the default)."""
    from dataclasses import replace

    from app import cli
    from inference.settings import Settings, save_settings

    jobs = []
    monkeypatch.setattr(cli, "render_with_progress", lambda job, show_progress=True: jobs.append(job) or cli.EXIT_OK)
    render = ["render", "--audio", "talk.wav", "-o", str(tmp_path / "talk.mp4")]
    cli._cmd_render(cli.build_parser().parse_args(render))
    cli._cmd_render(cli.build_parser().parse_args([*render, "--portrait", "me.jpg"]))
    settings = Settings()
    save_settings(replace(settings, render=replace(settings.render, portrait="/photos/chosen.jpg")))
    cli._cmd_render(cli.build_parser().parse_args(render))
    cli._cmd_render(cli.build_parser().parse_args([*render, "--portrait", "me.jpg"]))
    cli._headless_demo(settings)
    assert [job.portrait for job in jobs] == [None, Path("me.jpg"), Path("/photos/chosen.jpg"), Path("me.jpg"), None]
