"""`edgevision benchmark`: how fast it is on this machine, against the limit and a naive loop.

For each usable provider: the limit (bare session.run on preallocated, IO-bound input) per batch
size; the naive sequential loop; and the real pipeline on a real video (decode included) and on
synthetic frames (decode excluded), with one and four cameras. Medians of repeated runs after
warm-up; JSON, a Markdown table and a PNG chart.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from edgevision import config as configuration
from edgevision.accel import discover
from edgevision.detector import load_engine
from edgevision.engine import CPU, CUDA, TENSORRT, EngineConfig, provider_load_error
from edgevision.metrics import percentiles
from edgevision.models import ResolvedModel, resolve_model
from edgevision.pipeline import Pipeline, choose_layout
from edgevision.postprocess import YoloxDecoder
from edgevision.preprocess import Letterbox
from edgevision.publish.messages import result_message
from edgevision.publish.sink import encode

PROVIDERS = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT}


@dataclass(frozen=True)
class Plan:
    batches: tuple[int, ...] = (1, 4, 8, 16)
    frames: int = 600
    repeats: int = 3
    limit_seconds: float = 3.0

    @classmethod
    def quick(cls) -> Plan:
        return cls(batches=(1, 2), frames=24, repeats=1, limit_seconds=0.5)


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


def usable_providers(wanted: list[str]) -> dict[str, str | None]:
    """Provider -> None if usable here, else why not."""
    return {name: provider_load_error(PROVIDERS[name]) for name in wanted}


def measure_limit(model: ResolvedModel, provider: str, batch: int, seconds: float) -> dict[str, Any]:
    """Bare session.run on preallocated, IO-bound input: the ceiling for this batch size.

    With the pipeline's own parallelism: on a CPU one runner per worker thread, one intra-op
    thread each; on a GPU one runner.
    """
    layout = choose_layout(configuration.validate({}), on_gpu=provider != "cpu")
    config = EngineConfig(provider=provider, strict=provider != "cpu", io_binding=True,
                          intra_op_threads=layout.intra_op_threads, allow_spinning=False)
    engine = load_engine(model, config, max(batch, 2))
    workers = layout.workers if provider == "cpu" else 1
    runners = [engine.runner(batch) for _ in range(workers)]
    samples: list[list[float]] = [[] for _ in runners]
    for runner in runners:
        runner.input[...] = 114.0
        runner.run()

    def loop(index: int, deadline: float) -> None:
        while time.perf_counter() < deadline or len(samples[index]) < 3:
            started = time.perf_counter()
            runners[index].run()
            samples[index].append((time.perf_counter() - started) * 1e3)

    started = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i, started + seconds)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    batches = sum(len(s) for s in samples)
    return {"batch": batch, "workers": workers, "fps": round(batches * batch / elapsed, 1),
            "batch_latency_ms": percentiles([ms for s in samples for ms in s])}


def measure_naive(model: ResolvedModel, provider: str, video: Path, frames: int) -> dict[str, Any]:
    """The loop most samples use: read, preprocess into a fresh array, run, decode, send, in one thread."""
    session = ort.InferenceSession(str(model.path), providers=list(dict.fromkeys([PROVIDERS[provider], CPU])))
    name = session.get_inputs()[0].name
    letterbox = Letterbox(model.manifest.input)
    decoder = YoloxDecoder(model.manifest)
    sink = NullSink()
    capture = cv2.VideoCapture(str(video))
    samples = []
    while len(samples) < frames:
        started = time.perf_counter()
        ok, frame = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        blob = np.empty((1, 3, model.manifest.input.height, model.manifest.input.width), np.float32)
        meta = letterbox(frame, blob[0])
        detections = decoder(session.run(None, {name: blob})[0], [meta])[0]
        sink.publish(result_message(camera="cam0", seq=len(samples), captured_at=time.time(), latency_ms=0.0,
                                    detections=detections, labels=model.manifest.labels, model=model.name,
                                    provider=provider, batch_id=len(samples), batch_size=1))
        samples.append((time.perf_counter() - started) * 1e3)
    return {"fps": round(1000.0 / statistics.median(samples), 1), "latency_ms": percentiles(samples)}


def measure_pipeline(provider: str, uris: list[str], frames: int, every_frame: bool) -> dict[str, Any]:
    sink = NullSink()
    cameras = {f"cam{i}": {"uri": uri, "max_frames": frames, "every_frame": every_frame, "loop": every_frame}
               for i, uri in enumerate(uris)}
    document = {"cameras": cameras, "inference": {"provider": provider}, "metrics_interval_s": 3600,
                "http": {"enabled": False}}
    pipeline = Pipeline(configuration.validate(document), sink)
    pipeline.start()
    started, cpu_started = time.perf_counter(), cpu_seconds()
    pipeline.wait()
    elapsed = time.perf_counter() - started
    snapshot = pipeline.metrics_snapshot()
    return {
        "cameras": len(uris),
        "fps": round(sink.steady_fps(), 1),
        "frames": sink.results,
        "latency_ms": snapshot["totals"]["latency_ms"],
        "cpu_utilisation": round((cpu_seconds() - cpu_started) / elapsed / (os.cpu_count() or 1), 3),
        "stages_ms_per_frame": snapshot["stages_ms_per_frame_total"],
        "batch_mean": snapshot["batches"]["mean_size"],
        "layout": pipeline.status()["layout"],
    }


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r["fps"])
    result = dict(ordered[len(ordered) // 2])
    result["fps_runs"] = [r["fps"] for r in runs]
    return result


def run_benchmark(video: Path, providers: list[str], plan: Plan, progress: bool = True,
                  model_spec: str = "yolox-nano") -> dict[str, Any]:
    ort.set_default_logger_severity(3)
    model = resolve_model(model_spec)
    usable = usable_providers(providers)
    steps: list[tuple[str, Callable[[], Any]]] = []
    results: dict[str, Any] = {}
    for name, reason in usable.items():
        if reason:
            results[name] = {"available": False, "reason": reason}
            continue
        entry: dict[str, Any] = {"available": True, "limit": [], "edgevision": []}
        results[name] = entry
        for batch in plan.batches:
            steps.append((f"{name} limit b{batch}",
                          lambda n=name, b=batch, e=entry: e["limit"].append(measure_limit(model, n, b, plan.limit_seconds))))
        steps.append((f"{name} naive", lambda n=name, e=entry: e.__setitem__(
            "naive", _median_run([measure_naive(model, n, video, plan.frames) for _ in range(plan.repeats)]))))
        for source, uri, every in (("video", str(video), True), ("synthetic", "synthetic:1280x720@0", False)):
            for count in (1, 4):
                steps.append((f"{name} edgevision {source} x{count}",
                              lambda n=name, s=source, u=uri, c=count, ev=every, e=entry: e["edgevision"].append(
                                  {"source": s, **_median_run([measure_pipeline(n, [u] * c, plan.frames // c * c, ev)
                                                               for _ in range(plan.repeats)])})))
    accelerator = discover()
    for label, step in tqdm(steps, desc="benchmark", unit="step", disable=not progress or None):
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - one failed measurement must not lose the others
            results[label.split()[0]].setdefault("errors", []).append(f"{label}: {exc}")
    for entry in results.values():
        if entry.get("available"):
            _ratios(entry)
    return {
        "benchmark": "edgevision",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "accelerator": accelerator.summary()},
        "versions": {"onnxruntime": ort.__version__, "opencv": cv2.__version__},
        "model": model.name,
        "video": video.name,
        "plan": vars(plan),
        "providers": results,
        "cpu_layout": vars(choose_layout(configuration.validate({}), on_gpu=False)),
    }


def sample_video(directory: Path, frames: int = 150) -> Path:
    """A 720p MJPEG clip to decode when no video is given (a container without test assets)."""
    path = directory / "edgevision-benchmark-720p.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (1280, 720))
    rng = np.random.default_rng(1)
    base = rng.integers(60, 200, (720, 1280, 3), dtype=np.uint8)
    for i in range(frames):
        frame = np.roll(base, i * 8, axis=1)
        cv2.rectangle(frame, (100 + 4 * i, 200), (260 + 4 * i, 560), (40, 40, 200), -1)
        writer.write(frame)
    writer.release()
    return path


def _ratios(entry: dict[str, Any]) -> None:
    if not entry["limit"] or "naive" not in entry:
        return
    best_limit = max(entry["limit"], key=lambda r: r["fps"])
    naive = entry["naive"]["fps"]
    for run in entry["edgevision"]:
        run["vs_limit"] = round(run["fps"] / best_limit["fps"], 3) if best_limit["fps"] else None
        run["vs_naive"] = round(run["fps"] / naive, 3) if naive else None


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# edgevision benchmark, {report['model']}", "",
             f"{report['machine']['cores']} cores ({report['machine']['cpu']}), {report['machine']['accelerator']}; "
             f"onnxruntime {report['versions']['onnxruntime']}; {report['date']}; medians of {report['plan']['repeats']} "
             "run(s) after warm-up.", ""]
    for name, entry in report["providers"].items():
        if not entry["available"]:
            lines += [f"## {name}: unavailable", "", entry["reason"], ""]
            continue
        lines += [f"## {name}", "", "| path | fps | latency p50 / p95 / p99 ms | vs limit | vs naive | CPU use |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for limit in entry["limit"]:
            lat = limit["batch_latency_ms"]
            lines.append(f"| limit, batch {limit['batch']} | {limit['fps']} | {lat['p50']} / {lat['p95']} / {lat['p99']} "
                         "(per batch) | | | |")
        naive = entry["naive"]
        lines.append(f"| naive loop, video | {naive['fps']} | {naive['latency_ms']['p50']} / {naive['latency_ms']['p95']} / "
                     f"{naive['latency_ms']['p99']} | | 1.00x | |")
        for run in entry["edgevision"]:
            lat = run["latency_ms"]
            lines.append(f"| edgevision, {run['source']} x{run['cameras']} | {run['fps']} | {lat['p50']} / {lat['p95']} / "
                         f"{lat['p99']} | {run['vs_limit']:.0%} | {run['vs_naive']:.2f}x | {run['cpu_utilisation']:.0%} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def chart(report: dict[str, Any], path: Path) -> None:
    """fps by provider and path as bars, each provider's best limit as a line (drawn with OpenCV)."""
    bars: list[tuple[str, float, tuple[int, int, int]]] = []
    limits: list[tuple[int, int, float]] = []
    for name, entry in report["providers"].items():
        if not entry["available"]:
            continue
        start = len(bars)
        for limit in entry["limit"]:
            bars.append((f"{name} limit b{limit['batch']}", limit["fps"], (180, 180, 180)))
        bars.append((f"{name} naive", entry["naive"]["fps"], (90, 90, 220)))
        for run in entry["edgevision"]:
            bars.append((f"{name} {run['source']} x{run['cameras']}", run["fps"], (60, 170, 60)))
        limits.append((start, len(bars), max(r["fps"] for r in entry["limit"])))
    width, height, left, bottom, top = max(640, 70 * len(bars) + 120), 480, 70, 150, 40
    image = np.full((height, width, 3), 255, np.uint8)
    peak = max([b[1] for b in bars] + [1.0]) * 1.1
    scale = (height - bottom - top) / peak
    cv2.line(image, (left, height - bottom), (width - 20, height - bottom), (0, 0, 0), 1)
    cv2.putText(image, "frames per second", (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for i, (label, fps, color) in enumerate(bars):
        x = left + 10 + i * 70
        y = int(height - bottom - fps * scale)
        cv2.rectangle(image, (x, y), (x + 50, height - bottom), color, -1)
        cv2.putText(image, f"{fps:.0f}", (x, y - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        text = np.full((20, 140, 3), 255, np.uint8)
        cv2.putText(text, label[:22], (0, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        rotated = cv2.rotate(text, cv2.ROTATE_90_COUNTERCLOCKWISE)
        image[height - bottom + 5 : height - bottom + 145, x + 15 : x + 35] = rotated
    for start, end, fps in limits:
        y = int(height - bottom - fps * scale)
        cv2.line(image, (left + 5 + start * 70, y), (left + 5 + end * 70, y), (0, 0, 200), 2)
        cv2.putText(image, "limit", (left + 5 + end * 70 - 40, y - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 200), 1)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")


def write_report(report: dict[str, Any], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = "benchmark-" + ("gpu" if "no GPU" not in report["machine"]["accelerator"] else "cpu")
    paths = [directory / f"{stem}.json", directory / f"{stem}.md", directory / f"{stem}.png"]
    paths[0].write_text(json.dumps(report, indent=2) + "\n")
    paths[1].write_text(markdown(report))
    chart(report, paths[2])
    return paths
