"""`edgevision benchmark --soak MINUTES`: two cameras at full speed for a long run, watching for leaks.

Samples every few seconds: process RSS, GPU memory (NVML, when it answers), threads, open file
descriptors and fps; reports each one's least-squares slope per hour, so growth shows as a number.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgevision.accel.discover import discover
from edgevision.accel.telemetry import GpuTelemetry
from edgevision.benchmark.usage import NullSink
from edgevision.config.load import validate
from edgevision.config.model import ModelConfig
from edgevision.pipeline.pipeline import Pipeline


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def slope_per_hour(times: list[float], values: list[float]) -> float | None:
    """Least-squares slope of values over time (seconds), scaled to one hour."""
    n = len(times)
    if n < 3:
        return None
    mean_t, mean_v = sum(times) / n, sum(values) / n
    var = sum((t - mean_t) ** 2 for t in times)
    if var == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True)) / var * 3600


def run_soak(
    video: Path, minutes: float, provider: str = "auto", sample_s: float = 5.0, model: ModelConfig | None = None
) -> dict[str, Any]:
    accelerator = discover()
    gpu = GpuTelemetry.open(accelerator)
    uri = str(video)
    document = {
        "cameras": {
            "cam0": {"uri": uri, "every_frame": True, "loop": True},
            "cam1": {"uri": uri, "every_frame": True, "loop": True},
        },
        "inference": {"provider": provider},
        **({"model": model.model_dump(exclude_none=True)} if model else {}),
        "metrics_interval_s": 3600,
        "http": {"enabled": False},
    }
    sink = NullSink()
    pipeline = Pipeline(validate(document), sink)
    pipeline.start()
    started = time.monotonic()
    # The first samples include warm-up (arena growth, caches); slopes use the rest.
    warmup_s = min(60.0, minutes * 60 * 0.2)
    samples: list[dict[str, Any]] = []
    last_results, last_t = 0, started
    try:
        while (elapsed := time.monotonic() - started) < minutes * 60:
            time.sleep(min(sample_s, max(0.0, minutes * 60 - elapsed)))
            now = time.monotonic()
            results = sink.results
            sample = {
                "t": round(now - started, 1),
                "rss_mib": round(_rss_mib(), 1),
                "threads": threading.active_count(),
                "fds": _open_fds(),
                "fps": round((results - last_results) / (now - last_t), 1),
            }
            readings = gpu.sample() if gpu is not None else []
            used = [r["memory_used_mib"] for r in readings if "memory_used_mib" in r]
            sample["gpu_memory_mib"] = sum(used) if used else None
            samples.append(sample)
            last_results, last_t = results, now
    finally:
        pipeline.request_stop()
        pipeline.wait(60)
        if gpu is not None:
            gpu.close()
    steady = [s for s in samples if s["t"] >= warmup_s] or samples
    times = [s["t"] for s in steady]
    slopes = {
        key: slope_per_hour(times, [s[key] for s in steady]) for key in ("rss_mib", "threads", "fds", "fps") if steady
    }
    if steady and all(s["gpu_memory_mib"] is not None for s in steady):
        slopes["gpu_memory_mib"] = slope_per_hour(times, [s["gpu_memory_mib"] for s in steady])
    fps = [s["fps"] for s in steady]
    return {
        "benchmark": "soak",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "accelerator": accelerator.summary(),
        "provider": provider,
        "minutes": minutes,
        "video": video.name,
        "cameras": 2,
        "results": sink.results,
        "warmup_s": warmup_s,
        "slopes_per_hour": {k: round(v, 3) if v is not None else None for k, v in slopes.items()},
        "fps": {"min": min(fps), "max": max(fps), "mean": round(sum(fps) / len(fps), 1)} if fps else None,
        "threads": {"first": steady[0]["threads"], "last": steady[-1]["threads"]} if steady else None,
        "fds": {"first": steady[0]["fds"], "last": steady[-1]["fds"]} if steady else None,
        "samples": samples,
    }


def write_soak(report: dict[str, Any], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = "soak-" + ("cpu" if "no GPU" in report["accelerator"] else "gpu")
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    slopes = report["slopes_per_hour"]
    lines = [
        f"# Soak, {report['minutes']} min, 2 cameras at full speed",
        "",
        f"{report['accelerator']}; provider {report['provider']}; {report['video']}; {report['date']}; "
        f"{report['results']} results; slopes after {report['warmup_s']:.0f} s of warm-up.",
        "",
        "| measure | slope per hour | first | last |",
        "| --- | --- | --- | --- |",
    ]
    steady = [s for s in report["samples"] if s["t"] >= report["warmup_s"]] or report["samples"]
    for key in ("rss_mib", "gpu_memory_mib", "threads", "fds", "fps"):
        if key in slopes and steady:
            lines.append(f"| {key} | {slopes[key]} | {steady[0][key]} | {steady[-1][key]} |")
    md_path.write_text("\n".join(lines) + "\n")
    return [json_path, md_path]
