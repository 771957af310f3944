"""The ONNX Runtime engine: provider selection, reported fallback, IO-bound runners."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from edgevision.inference.engine import Engine
from edgevision.inference.options import EngineConfig
from edgevision.inference.providers import CPU, CUDA
from edgevision.inference.status import EngineError, ProviderUnavailableError


@pytest.fixture(scope="module")
def frame_batch() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.uniform(0, 255, size=(1, 3, 416, 416)).astype(np.float32)


def test_auto_reports_cpu_and_why_cuda_was_not_used(model_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    engine = Engine(model_path, EngineConfig(provider="auto"))
    status = engine.status
    assert status.requested == [CUDA, CPU]
    assert status.provider == CPU and status.in_use == [CPU]
    assert status.fell_back and CUDA in status.dropped and status.dropped[CUDA]
    assert not engine.on_gpu and not status.io_binding
    assert any(CUDA in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_forced_cpu_drops_nothing(model_path: Path) -> None:
    engine = Engine(model_path, EngineConfig(provider="cpu"))
    assert engine.status.provider == CPU and engine.status.dropped == {}


def test_forced_cuda_falls_back_reported_or_fails_when_strict(model_path: Path) -> None:
    engine = Engine(model_path, EngineConfig(provider="cuda"))
    assert engine.provider == CPU and CUDA in engine.status.dropped
    with pytest.raises(ProviderUnavailableError, match=CUDA):
        Engine(model_path, EngineConfig(provider="cuda", strict=True))


def test_unknown_provider_is_rejected(model_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        Engine(model_path, EngineConfig(provider="opencl"))  # type: ignore[arg-type]


def test_corrupt_model_is_an_engine_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage")
    with pytest.raises(EngineError, match="cannot load model"):
        Engine(bad, EngineConfig(provider="cpu"))


def test_io_bound_runner_matches_plain_run_and_reuses_buffers(model_path: Path, frame_batch: np.ndarray) -> None:
    engine = Engine(model_path, EngineConfig(provider="cpu", io_binding=True))
    assert engine.status.io_binding
    runner = engine.runner(1)
    runner.input[...] = frame_batch
    first = runner.run()
    expected = engine.run(frame_batch)[0]
    np.testing.assert_array_equal(first[0], expected)
    buffer_address = first[0].__array_interface__["data"][0]
    runner.input[...] = 114.0
    second = runner.run()
    # Same preallocated output, new contents: nothing allocated per frame.
    assert second[0].__array_interface__["data"][0] == buffer_address
    assert not np.array_equal(second[0], expected)


def test_unbound_runner_matches_plain_run(model_path: Path, frame_batch: np.ndarray) -> None:
    engine = Engine(model_path, EngineConfig(provider="cpu"))
    runner = engine.runner(1)
    runner.input[...] = frame_batch
    np.testing.assert_array_equal(runner.run()[0], engine.run(frame_batch)[0])


def test_fixed_batch_model_refuses_other_batch_sizes(model_path: Path) -> None:
    engine = Engine(model_path, EngineConfig(provider="cpu"))
    assert not engine.dynamic_batch
    with pytest.raises(EngineError, match="fixed batch"):
        engine.runner(2)
