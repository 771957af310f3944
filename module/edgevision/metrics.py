"""Throughput metrics: per-camera counters, latency windows, stage times, batch sizes."""

from __future__ import annotations

import bisect
import collections
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edgevision.outcomes import WINDOW_S, Outcomes

LATENCY_WINDOW = 2048  # samples per camera kept for percentiles
# Cumulative latency histogram buckets (ms), for Prometheus.
LATENCY_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
STAGES = ("decode", "preprocess", "inference", "postprocess", "publish")


def percentiles(samples: collections.deque[float] | list[float]) -> dict[str, float | None]:
    if not samples:
        return {"p50": None, "p95": None, "p99": None}
    values = np.percentile(np.fromiter(samples, dtype=np.float64, count=len(samples)), (50, 95, 99))
    return {"p50": round(float(values[0]), 2), "p95": round(float(values[1]), 2), "p99": round(float(values[2]), 2)}


class CameraStats:
    """One camera's counters, written by its reader and the pipeline stages."""

    def __init__(self, camera: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.camera = camera
        self._clock = clock
        self._lock = threading.Lock()
        self.captured = 0
        self.inferred = 0
        self.carried = 0
        self.dropped: collections.Counter[str] = collections.Counter()
        self.corrupt = 0
        # Frames refused for their size (sources.max_frame_pixels).
        self.oversize = 0
        self.outages = 0
        self.reconnects = 0
        self.stalls = 0
        self.outage_seconds = 0.0
        self.state = "starting"
        self.last_error: str | None = None
        self.last_frame_mono: float | None = None
        self._outage_started: float | None = None
        self._latency: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self._inferred_mark = 0
        # Per bucket (and one past the last): how many latencies fell there; cumulated on export.
        self._latency_buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self._latency_sum_ms = 0.0

    def captured_frame(self) -> None:
        with self._lock:
            self.captured += 1
            self.last_frame_mono = self._clock()

    def corrupt_frame(self) -> None:
        with self._lock:
            self.corrupt += 1

    def oversize_frame(self) -> None:
        with self._lock:
            self.oversize += 1

    def dropped_frames(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self.dropped[reason] += count

    def inferred_frame(self, latency_ms: float, detected: bool = True) -> None:
        """A result published: of a frame the detector saw, or one whose boxes the tracker carried."""
        with self._lock:
            self.inferred += 1
            if not detected:
                self.carried += 1
            self._latency.append(latency_ms)
            self._latency_buckets[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1
            self._latency_sum_ms += latency_ms

    def latency_histogram(self) -> tuple[list[tuple[str, int]], float]:
        """Cumulative (upper bound, count) pairs ending with +Inf, and the sum, in milliseconds."""
        with self._lock:
            counts, total = list(self._latency_buckets), self._latency_sum_ms
        cumulative, running = [], 0
        for bound, count in zip([*map(str, LATENCY_BUCKETS_MS), "+Inf"], counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return cumulative, total

    def record_error(self, error: str) -> None:
        with self._lock:
            self.last_error = error

    def set_state(self, state: str, error: str | None = None) -> None:
        with self._lock:
            self.state = state
            if error is not None:
                self.last_error = error

    def outage_began(self, error: str) -> bool:
        """Record a failure; True if it starts a new outage (not a failed retry of one)."""
        with self._lock:
            self.last_error = error
            self.state = "reconnecting"
            if self._outage_started is not None:
                return False
            self._outage_started = self._clock()
            self.outages += 1
            return True

    def connected(self) -> float | None:
        """Streaming again; returns the outage's length if one just ended."""
        with self._lock:
            self.state = "streaming"
            if self._outage_started is None:
                return None
            length = self._clock() - self._outage_started
            self._outage_started = None
            self.reconnects += 1
            self.outage_seconds += length
            return length

    def stalled(self) -> None:
        with self._lock:
            self.stalls += 1

    def snapshot(self, interval_s: float, uptime_s: float, advance: bool = True) -> dict[str, Any]:
        with self._lock:
            fps = (self.inferred - self._inferred_mark) / interval_s if interval_s > 0 else 0.0
            if advance:
                self._inferred_mark = self.inferred
            outage = self.outage_seconds + (self._clock() - self._outage_started if self._outage_started else 0.0)
            return {
                "state": self.state,
                "captured": self.captured,
                "inferred": self.inferred,
                "carried": self.carried,
                "dropped": sum(self.dropped.values()),
                "dropped_by_reason": dict(self.dropped),
                "corrupt": self.corrupt,
                "oversize": self.oversize,
                "fps": round(fps, 2),
                "fps_avg": round(self.inferred / uptime_s, 2) if uptime_s > 0 else 0.0,
                "latency_ms": percentiles(self._latency),
                "outages": self.outages,
                "reconnects": self.reconnects,
                "stalls": self.stalls,
                "outage_s": round(outage, 2),
                "last_error": self.last_error,
            }

    def latency_samples(self) -> list[float]:
        with self._lock:
            return list(self._latency)


class PipelineMetrics:
    """Everything a metrics snapshot reports, for all cameras."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.started_mono = clock()
        self.cameras: dict[str, CameraStats] = {}
        self._stage_total: dict[str, list[float]] = {s: [0.0, 0] for s in STAGES}
        self._stage_mark: dict[str, list[float]] = {s: [0.0, 0] for s in STAGES}
        self.batch_sizes: collections.Counter[int] = collections.Counter()
        self._last_snapshot = clock()
        # Engine switches at run time (GPU -> CPU fallbacks and restores).
        self.provider_switches = 0
        # Frames inference ran or failed, and results the sink wrote or lost, lately and in all.
        self.inference = Outcomes(clock=clock)
        self.results = Outcomes(clock=clock)

    def camera(self, camera: str) -> CameraStats:
        with self._lock:
            stats = self.cameras.get(camera)
            if stats is None:
                stats = self.cameras[camera] = CameraStats(camera, self._clock)
            return stats

    def stage(self, name: str, seconds: float, frames: int = 1) -> None:
        with self._lock:
            total = self._stage_total[name]
            total[0] += seconds * 1e3
            total[1] += frames

    def batch(self, size: int) -> None:
        with self._lock:
            self.batch_sizes[size] += 1

    def latency_histograms(self) -> dict[str, tuple[list[tuple[str, int]], float]]:
        """Per camera: cumulative latency buckets and their sum (Prometheus histograms)."""
        with self._lock:
            cameras = dict(self.cameras)
        return {camera: stats.latency_histogram() for camera, stats in sorted(cameras.items())}

    def stage_ms_per_frame(self) -> dict[str, float | None]:
        """Mean milliseconds per frame of each stage since the start."""
        with self._lock:
            return {
                name: round(total[0] / total[1], 3) if total[1] else None for name, total in self._stage_total.items()
            }

    def snapshot(
        self, *, queues: dict[str, int], extra: dict[str, Any] | None = None, advance: bool = True
    ) -> dict[str, Any]:
        """The figures of a metrics message. Interval figures (fps, stage times) cover the time
        since the last advancing snapshot; only the periodic metrics message advances, so views
        (status, a Prometheus scrape) do not shorten its interval."""
        now = self._clock()
        with self._lock:
            interval = now - self._last_snapshot
            stages = {}
            for name, total in self._stage_total.items():
                mark = self._stage_mark[name]
                frames = total[1] - mark[1]
                stages[name] = round((total[0] - mark[0]) / frames, 3) if frames else None
                if advance:
                    self._stage_mark[name] = list(total)
            if advance:
                self._last_snapshot = now
            batches = dict(self.batch_sizes)
            cameras = dict(self.cameras)
        uptime = now - self.started_mono
        per_camera = {cid: stats.snapshot(interval, uptime, advance) for cid, stats in sorted(cameras.items())}
        all_latency = [ms for stats in cameras.values() for ms in stats.latency_samples()]
        batch_count = sum(batches.values())
        document = {
            "uptime_s": round(uptime, 2),
            "interval_s": round(interval, 3),
            "totals": {
                "captured": sum(c["captured"] for c in per_camera.values()),
                "inferred": sum(c["inferred"] for c in per_camera.values()),
                "carried": sum(c["carried"] for c in per_camera.values()),
                "dropped": sum(c["dropped"] for c in per_camera.values()),
                "corrupt": sum(c["corrupt"] for c in per_camera.values()),
                "fps": round(sum(c["fps"] for c in per_camera.values()), 2),
                "fps_avg": round(sum(c["fps_avg"] for c in per_camera.values()), 2),
                "latency_ms": percentiles(all_latency),
            },
            "cameras": per_camera,
            "stages_ms_per_frame": stages,
            "stages_ms_per_frame_total": self.stage_ms_per_frame(),
            "batches": {
                "count": batch_count,
                "histogram": {str(k): v for k, v in sorted(batches.items())},
                "mean_size": round(sum(k * v for k, v in batches.items()) / batch_count, 2) if batch_count else None,
            },
            "queues": queues,
            "provider_switches": self.provider_switches,
            "inference": _outcomes(self.inference),
            "results_written": _outcomes(self.results),
        }
        if extra:
            document.update(extra)
        return document


def _outcomes(outcomes: Outcomes) -> dict[str, Any]:
    recent = outcomes.recent()
    return {
        "window_s": WINDOW_S,
        "ok_recent": recent.ok,
        "failed_recent": recent.failed,
        "failed_total": recent.total_failed,
        "failing": recent.failing,
        "last_error": recent.last_error,
    }
