"""What a benchmark run costs and delivers: results counted at the sink, CPU and GPU use."""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from edgevision.accel.telemetry import GpuTelemetry
from edgevision.publish.messages import encode


class NullSink:
    """Serialises every message (part of publishing) and notes when results arrive."""

    def __init__(self) -> None:
        self.results = 0
        self.first: float | None = None
        self.last = 0.0

    def publish(self, message: dict[str, Any]) -> None:
        encode(message)
        if message["type"] == "result":
            self.results += 1
            self.last = time.perf_counter()
            if self.first is None:
                self.first = self.last

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def steady_fps(self) -> float:
        """Results per second from the first to the last: start-up and shutdown excluded."""
        return (self.results - 1) / (self.last - self.first) if self.first and self.last > self.first else 0.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Usage:
    """CPU use (share of all cores) and GPU utilisation over a measured interval."""

    def __init__(self, gpu: GpuTelemetry | None, period_s: float = 0.25) -> None:
        self._gpu = gpu
        self._period = period_s
        self._stop = threading.Event()
        self._readings: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._sample, name="usage", daemon=True)

    def __enter__(self) -> Usage:
        self._cpu, self._wall = cpu_seconds(), time.perf_counter()
        if self._gpu is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu_utilisation = (cpu_seconds() - self._cpu) / (time.perf_counter() - self._wall) / (os.cpu_count() or 1)
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self._period):
            self._readings.extend(r for r in self._gpu.sample() if "utilization_pct" in r)  # type: ignore[union-attr]

    def summary(self) -> dict[str, Any]:
        util = [r["utilization_pct"] for r in self._readings]
        memory = [r["memory_used_mib"] for r in self._readings if "memory_used_mib" in r]
        return {
            "cpu_utilisation": round(self.cpu_utilisation, 3),
            "gpu_utilisation_pct": round(statistics.mean(util), 1) if util else None,
            "gpu_memory_used_mib": max(memory) if memory else None,
        }


def core_ms(fn: Callable[[], int], repeats: int) -> float:
    """Median CPU milliseconds per item over repeated runs of fn (which returns its item count)."""
    samples = []
    for _ in range(repeats):
        start = cpu_seconds()
        items = fn()
        samples.append((cpu_seconds() - start) * 1e3 / items)
    return statistics.median(samples)
