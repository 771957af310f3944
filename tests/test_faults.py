"""Faults injected into the real pipeline: a GPU that fails or hangs at run time."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edgevision import config as configuration
from edgevision.detector import load_engine
from edgevision.engine import CPU, CUDA, Engine, EngineConfig
from edgevision.pipeline import Pipeline

from conftest import CollectingSink

CUDA_FAILURE = "[ONNXRuntimeError] : 1 : FAIL : CUDA failure 700: an illegal memory access was encountered"


class FlakyGpu:
    """Injected provider: a real engine that reports CUDA and, after `fail_after` runs, fails as
    a GPU does when it is lost (or hangs for `hang_s`). Everything else is the real engine."""

    def __init__(self, engine: Engine, fail_after: int, hang_s: float | None = None) -> None:
        self._engine = engine
        self.fail_after = fail_after
        self.hang_s = hang_s
        self.runs = 0
        self._lock = threading.Lock()
        self.status = dataclasses.replace(engine.status, provider=CUDA, in_use=[CUDA, CPU])

    provider = CUDA
    on_gpu = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def runner(self, batch_size: int) -> Any:
        return _FlakyRunner(self._engine.runner(batch_size), self)

    def count(self) -> int:
        with self._lock:
            self.runs += 1
            return self.runs


class _FlakyRunner:
    def __init__(self, runner: Any, gpu: FlakyGpu) -> None:
        self._runner = runner
        self._gpu = gpu

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)

    def run(self) -> list[Any]:
        if self._gpu.count() > self._gpu.fail_after:
            if self._gpu.hang_s is None:
                raise RuntimeError(CUDA_FAILURE)
            time.sleep(self._gpu.hang_s)
        return self._runner.run()


def flaky_loader(fail_after: int, hang_s: float | None = None, built: list[FlakyGpu] | None = None):
    """An engine loader for Pipeline: CPU requests get the real CPU engine, GPU ones a FlakyGpu."""
    def load(model, config: EngineConfig, max_batch: int, in_graph: bool = False):
        real = load_engine(model, dataclasses.replace(config, provider="cpu"), max_batch, in_graph)
        if config.provider == "cpu":
            return real
        gpu = FlakyGpu(real, fail_after, hang_s)
        if built is not None:
            built.append(gpu)
        return gpu
    return load


@pytest.fixture(autouse=True)
def _model_dir(model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEVISION_MODEL_DIR", str(model_path.parent))


def _events(sink: CollectingSink, name: str) -> list[dict[str, Any]]:
    return [m for m in sink.of_type("event") if m["event"] == name]


@pytest.mark.slow
def test_gpu_failure_switches_to_cpu_loses_nothing_and_retries_with_backoff() -> None:
    frames = 900
    built: list[FlakyGpu] = []
    document = {"cameras": {"cam": {"uri": "synthetic:320x240@0", "max_frames": frames}},
                "inference": {"provider": "cuda", "gpu_retry_initial_s": 0.5, "gpu_retry_max_s": 4},
                "metrics_interval_s": 3600}
    sink = CollectingSink()
    pipeline = Pipeline(configuration.validate(document), sink, engine_loader=flaky_loader(60, built=built))
    pipeline.start()
    assert pipeline.wait(180)

    results = sink.of_type("result")
    # Nothing lost: the batches that met the failure ran again on the CPU.
    assert sorted(r["seq"] for r in results) == list(range(frames))
    assert not [r for r in results if r.get("error")]
    switched = _events(sink, "provider_switched")
    restored = _events(sink, "provider_restored")
    assert len(switched) >= 2 and len(restored) >= 1, [m["event"] for m in sink.of_type("event")]
    first, second = switched[:2]
    assert first["previous"] == CUDA and first["provider"] == CPU and "CUDA failure 700" in first["reason"]
    # Capped exponential backoff between GPU retries.
    assert first["retry_gpu_in_s"] == 0.5 and second["retry_gpu_in_s"] == 1.0
    assert restored[0]["provider"] == CUDA
    providers = {r["provider"] for r in results}
    assert providers == {CUDA, CPU}
    assert len(built) >= 2 and all(g.runs > g.fail_after for g in built[:2])
    status = pipeline.status()["failover"]
    assert status["switches"] >= 2 and status["restores"] >= 1 and "CUDA failure" in status["last_failure"]
    assert pipeline.metrics_snapshot()["provider_switches"] == len(switched) + len(restored)


@pytest.mark.slow
def test_hung_gpu_run_is_abandoned_and_the_cpu_takes_over() -> None:
    document = {"cameras": {"cam": {"uri": "synthetic:320x240@0", "max_frames": 400}},
                "inference": {"provider": "cuda", "inference_timeout_s": 1.0, "gpu_retry_initial_s": 3600},
                "metrics_interval_s": 3600}
    sink = CollectingSink()
    pipeline = Pipeline(configuration.validate(document), sink, engine_loader=flaky_loader(20, hang_s=30.0))
    started = time.monotonic()
    pipeline.start()
    assert pipeline.wait(120)
    assert time.monotonic() - started < 60  # not held up by the hung run
    (switch,) = _events(sink, "provider_switched")
    assert "has not returned" in switch["reason"] and switch["provider"] == CPU
    results = sink.of_type("result")
    seqs = [r["seq"] for r in results]
    assert len(seqs) == len(set(seqs))
    # Only the frames in the hung runs (one per worker) are lost, and they are counted as such;
    # the batches queued behind them ran on the CPU, and results kept flowing in order.
    layout = pipeline.status()["layout"]
    lost = 400 - len(seqs)
    assert 0 < lost == switch["frames_abandoned"] <= layout["workers"] * layout["max_batch"]
    assert seqs == sorted(seqs)
    camera = pipeline.metrics_snapshot()["cameras"]["cam"]
    assert camera["dropped_by_reason"].get("error") == lost
    assert pipeline.status()["failover"]["on_fallback"]
