"""The CUDA execution provider check: a provider that is listed but does not start is reported, never used."""

from __future__ import annotations

import onnxruntime as ort
import pytest

from inference import gpu


@pytest.fixture(autouse=True)
def _fresh_status():
    cached = gpu.cuda_problem  # (a test may replace it)
    cached.cache_clear()
    yield
    cached.cache_clear()


def test_an_onnxruntime_without_cuda_says_so_and_how_to_get_it(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    ok, reason = gpu.cuda_status()
    assert not ok
    assert "built without CUDA" in reason and "installer/setup.sh --gpu" in reason


class _CpuSession:
    """What ONNX Runtime builds when the CUDA provider it was asked for does not start: a CPU session."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def get_providers(self) -> list[str]:
        return ["CPUExecutionProvider"]


def test_a_listed_provider_that_does_not_start_is_reported(monkeypatch):
    """onnxruntime-gpu lists CUDA even where its libraries cannot load; a session then quietly runs on the CPU."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", _CpuSession)
    preloaded = []
    monkeypatch.setattr(ort, "preload_dlls", lambda *a, **k: preloaded.append(True), raising=False)
    ok, reason = gpu.cuda_status()
    assert preloaded == [True]  # the libraries were offered first
    assert not ok
    assert "did not start" in reason and "cuDNN" in reason and "installer/setup.sh --gpu" in reason


def test_a_failing_preload_is_not_fatal(monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("libcudnn.so.9: cannot open shared object file")

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", _CpuSession)
    monkeypatch.setattr(ort, "preload_dlls", fail, raising=False)
    ok, reason = gpu.cuda_status()
    assert not ok and "did not start" in reason


def test_the_student_is_unavailable_where_the_provider_does_not_start(monkeypatch):
    from inference.render import student

    monkeypatch.setattr(gpu, "cuda_problem", lambda: "ONNX Runtime's CUDA execution provider did not start")
    monkeypatch.delenv(student.CPU_ENV, raising=False)
    ok, reason = student.availability()
    assert not ok
    assert reason.startswith("the student needs an NVIDIA GPU: ONNX Runtime's CUDA execution provider did not start")
    assert "PODIUM_STUDENT_CPU=1" in reason
