"""`edgevision benchmark`: how fast it is on this machine, against its ceilings and a naive loop.

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
from tqdm import tqdm

from edgevision import config as configuration
from edgevision.accel import discover
from edgevision.accel.telemetry import GpuTelemetry
from edgevision.detector import load_engine
from edgevision.engine import CPU, CUDA, TENSORRT, EngineConfig, provider_load_error
from edgevision.metrics import percentiles
from edgevision.models import ResolvedModel, resolve_model
from edgevision.pipeline import Pipeline, choose_layout
from edgevision.postprocess import YoloxDecoder
from edgevision.preprocess import Letterbox, preprocessor
from edgevision.publish.messages import result_message
from edgevision.publish.sink import encode

PROVIDERS = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT}
# End-to-end targets against the binding ceiling (issue 6): CPU stages share every core, so
# little is lost to scheduling; a GPU pipeline also waits on transfers and launches.
TARGETS = {"cpu": 0.90, "cuda": 0.85, "tensorrt": 0.85}
STAGES = ("decode", "preprocess", "inference", "postprocess", "publish")


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


def decode_frames(video: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames: list[np.ndarray] = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            if not frames:
                raise ValueError(f"{video}: no frame decodes")
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        frames.append(frame)
    return frames


def measure_stages(
    model: ResolvedModel, provider: str, video: Path, preprocess: str, repeats: int, items: int = 100
) -> dict[str, float]:
    """Core-ms per frame of each stage, measured alone (process CPU time, so the decoder's and
    ONNX Runtime's own threads count; on a GPU, inference is the host's share of a run)."""
    frames = decode_frames(video, min(items, 100))

    def decode() -> int:
        capture = cv2.VideoCapture(str(video))
        n = 0
        while n < 2 * items and capture.grab() and capture.retrieve()[0]:
            n += 1
        return max(n, 1)

    gpu = provider != "cpu"
    config = EngineConfig(provider=provider, strict=gpu, intra_op_threads=0 if gpu else 1, allow_spinning=False)
    engine = load_engine(model, config, 1, in_graph=preprocess == "graph")
    runner = engine.runner(1)
    prepare = preprocessor(model.manifest.input, engine.takes_frames)

    def pre() -> int:
        for frame in frames:
            prepare.prepare([frame], runner)
        return len(frames)

    runs = max(items // 4, 5)

    def infer() -> int:
        for _ in range(runs):
            runner.run()
        return runs

    metas, _ = prepare.prepare([frames[0]], runner)
    output = runner.run()[0].copy()
    decoder = YoloxDecoder(model.manifest)
    detections = decoder(output, metas)[0]

    def post() -> int:
        for _ in range(items * 5):
            decoder(output, metas)
        return items * 5

    def publish() -> int:
        for seq in range(items * 5):
            encode(
                result_message(
                    camera="cam0",
                    seq=seq,
                    captured_at=time.time(),
                    latency_ms=1.0,
                    detections=detections,
                    labels=model.manifest.labels,
                    model=model.name,
                    provider=engine.provider,
                    batch_id=seq,
                    batch_size=1,
                )
            )
        return items * 5

    measured = {"decode": decode, "preprocess": pre, "inference": infer, "postprocess": post, "publish": publish}
    return {name: round(core_ms(fn, repeats), 3) for name, fn in measured.items()}


def ceilings(stages: dict[str, float], cores: int, inference_fps: float | None, source: str) -> dict[str, float]:
    """The three ceilings a run can hit: host CPU work (every stage's core-ms shares the cores,
    decode included for video), video decode alone, and bare inference at the chosen batch."""
    host = sum(stages[s] for s in STAGES if s != "decode" or source == "video")
    out = {"cpu_stages": round(cores * 1000.0 / host, 1)}
    if source == "video":
        out["decode"] = round(cores * 1000.0 / stages["decode"], 1)
    if inference_fps:
        out["inference"] = inference_fps
    return out


def usable_providers(wanted: list[str]) -> dict[str, str | None]:
    """Provider -> None if usable here, else why not."""
    return {name: provider_load_error(PROVIDERS[name]) for name in wanted}


def measure_limit(
    model: ResolvedModel, provider: str, batch: int, seconds: float, gpu: GpuTelemetry | None = None
) -> dict[str, Any]:
    """Bare session.run on preallocated, IO-bound input: the ceiling for this batch size.

    With the pipeline's own parallelism: on a CPU one runner per worker thread, one intra-op
    thread each; on a GPU one runner.
    """
    layout = choose_layout(configuration.validate({}), on_gpu=provider != "cpu")
    config = EngineConfig(
        provider=provider,
        strict=provider != "cpu",
        io_binding=True,
        intra_op_threads=layout.intra_op_threads,
        allow_spinning=False,
    )
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

    with Usage(gpu) as usage:
        started = time.perf_counter()
        threads = [threading.Thread(target=loop, args=(i, started + seconds)) for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    batches = sum(len(s) for s in samples)
    return {
        "batch": batch,
        "workers": workers,
        "fps": round(batches * batch / elapsed, 1),
        "batch_latency_ms": percentiles([ms for s in samples for ms in s]),
        **usage.summary(),
    }


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
        sink.publish(
            result_message(
                camera="cam0",
                seq=len(samples),
                captured_at=time.time(),
                latency_ms=0.0,
                detections=detections,
                labels=model.manifest.labels,
                model=model.name,
                provider=provider,
                batch_id=len(samples),
                batch_size=1,
            )
        )
        samples.append((time.perf_counter() - started) * 1e3)
    return {"fps": round(1000.0 / statistics.median(samples), 1), "latency_ms": percentiles(samples)}


def measure_pipeline(
    provider: str,
    uris: list[str],
    frames: int,
    every_frame: bool,
    preprocess: str = "host",
    gpu: GpuTelemetry | None = None,
) -> dict[str, Any]:
    sink = NullSink()
    cameras = {
        f"cam{i}": {"uri": uri, "max_frames": frames, "every_frame": every_frame, "loop": every_frame}
        for i, uri in enumerate(uris)
    }
    document = {
        "cameras": cameras,
        "inference": {"provider": provider, "preprocess": preprocess},
        "metrics_interval_s": 3600,
        "http": {"enabled": False},
    }
    pipeline = Pipeline(configuration.validate(document), sink)
    pipeline.start()
    with Usage(gpu) as usage:
        pipeline.wait()
    snapshot = pipeline.metrics_snapshot()
    return {
        "cameras": len(uris),
        "preprocess": preprocess,
        "fps": round(sink.steady_fps(), 1),
        "frames": sink.results,
        "latency_ms": snapshot["totals"]["latency_ms"],
        **usage.summary(),
        "stages_ms_per_frame": snapshot["stages_ms_per_frame_total"],
        "batch_mean": snapshot["batches"]["mean_size"],
        "layout": pipeline.status()["layout"],
    }


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r["fps"])
    result = dict(ordered[len(ordered) // 2])
    result["fps_runs"] = [r["fps"] for r in runs]
    return result


def run_benchmark(
    video: Path, providers: list[str], plan: Plan, progress: bool = True, model_spec: str = "yolox-nano"
) -> dict[str, Any]:
    ort.set_default_logger_severity(3)
    model = resolve_model(model_spec)
    usable = usable_providers(providers)
    accelerator = discover()
    gpu = GpuTelemetry.open(accelerator)
    steps: list[tuple[str, Callable[[], Any]]] = []
    results: dict[str, Any] = {}
    for name, reason in usable.items():
        if reason:
            results[name] = {"available": False, "reason": reason}
            continue
        entry: dict[str, Any] = {"available": True, "limit": [], "edgevision": [], "stage_core_ms": {}}
        results[name] = entry
        for path in ("host", "graph"):
            steps.append(
                (
                    f"{name} stages ({path})",
                    lambda n=name, p=path, e=entry: e["stage_core_ms"].__setitem__(
                        p, measure_stages(model, n, video, p, plan.repeats, items=max(plan.frames // 6, 10))
                    ),
                )
            )
        for batch in plan.batches:
            steps.append(
                (
                    f"{name} limit b{batch}",
                    lambda n=name, b=batch, e=entry: e["limit"].append(
                        measure_limit(model, n, b, plan.limit_seconds, gpu)
                    ),
                )
            )
        steps.append(
            (
                f"{name} naive",
                lambda n=name, e=entry: e.__setitem__(
                    "naive", _median_run([measure_naive(model, n, video, plan.frames) for _ in range(plan.repeats)])
                ),
            )
        )
        runs = [("video", str(video), True, count, "host") for count in (1, 4)]
        runs += [("synthetic", "synthetic:1280x720@0", False, count, "host") for count in (1, 4)]
        runs += [("video", str(video), True, 1, "graph"), ("synthetic", "synthetic:1280x720@0", False, 1, "graph")]
        for source, uri, every, count, path in runs:
            steps.append(
                (
                    f"{name} edgevision {source} x{count} ({path})",
                    lambda n=name, s=source, u=uri, c=count, ev=every, p=path, e=entry: e["edgevision"].append(
                        {
                            "source": s,
                            **_median_run(
                                [
                                    measure_pipeline(n, [u] * c, plan.frames // c * c, ev, p, gpu)
                                    for _ in range(plan.repeats)
                                ]
                            ),
                        }
                    ),
                )
            )
    try:
        for label, step in tqdm(steps, desc="benchmark", unit="step", disable=not progress or None):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - one failed measurement must not lose the others
                results[label.split()[0]].setdefault("errors", []).append(f"{label}: {exc}")
    finally:
        if gpu is not None:
            gpu.close()
    for name, entry in results.items():
        if entry.get("available"):
            _judge(name, entry, os.cpu_count() or 1)
    return {
        "benchmark": "edgevision",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "accelerator": accelerator.summary(),
        },
        "versions": {"onnxruntime": ort.__version__, "opencv": cv2.__version__},
        "model": model.name,
        "video": video.name,
        "plan": vars(plan),
        "targets_vs_binding_ceiling": TARGETS,
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


def _judge(provider: str, entry: dict[str, Any], cores: int) -> None:
    """Each run against the limit, the naive loop, and its binding ceiling (named)."""
    limits = {r["batch"]: r["fps"] for r in entry["limit"]}
    naive = entry.get("naive", {}).get("fps")
    best = max(limits.values(), default=None)
    for run in entry["edgevision"]:
        run["vs_limit"] = round(run["fps"] / best, 3) if best else None
        run["vs_naive"] = round(run["fps"] / naive, 3) if naive else None
        stages = entry["stage_core_ms"].get(run["preprocess"])
        if stages is None:
            continue
        # Bare inference at the batch this run used (the largest measured one not above it).
        chosen = max((b for b in limits if b <= run["layout"]["max_batch"]), default=None)
        run["ceilings_fps"] = ceilings(stages, cores, limits.get(chosen), run["source"])
        run["binding"] = min(run["ceilings_fps"], key=run["ceilings_fps"].get)
        run["vs_binding"] = round(run["fps"] / run["ceilings_fps"][run["binding"]], 3)
        run["target"] = TARGETS[provider]
        run["meets_target"] = run["vs_binding"] >= TARGETS[provider]


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# edgevision benchmark, {report['model']}",
        "",
        f"{report['machine']['cores']} cores ({report['machine']['cpu']}), {report['machine']['accelerator']}; "
        f"onnxruntime {report['versions']['onnxruntime']}; {report['date']}; medians of {report['plan']['repeats']} "
        "run(s) after warm-up.",
        "",
        "Each run is judged against the smallest of three ceilings: `cpu_stages` (cores / core-ms per frame of "
        "every host stage, decode included for video), `decode` (cores / decode core-ms) and `inference` "
        "(bare session.run at the run's batch); the column names the one that binds.",
        "",
    ]
    for name, entry in report["providers"].items():
        if not entry["available"]:
            lines += [f"## {name}: unavailable", "", entry["reason"], ""]
            continue
        lines += [f"## {name}", ""]
        for path, stages in entry["stage_core_ms"].items():
            lines.append(
                f"- core-ms per frame, preprocessing {'on the host' if path == 'host' else 'in the graph'}: "
                + ", ".join(f"{k} {v}" for k, v in stages.items())
            )
        lines += [
            "",
            "| path | fps | latency p50 / p95 / p99 ms | binding ceiling | vs binding | vs limit | vs naive "
            "| CPU use | GPU use |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for limit in entry["limit"]:
            lat = limit["batch_latency_ms"]
            lines.append(
                f"| limit, batch {limit['batch']} | {limit['fps']} | {lat['p50']} / {lat['p95']} / {lat['p99']} "
                f"(per batch) | | | | | {limit['cpu_utilisation']:.0%} | {_pct(limit['gpu_utilisation_pct'])} |"
            )
        if "naive" in entry:
            naive = entry["naive"]
            lines.append(
                f"| naive loop, video | {naive['fps']} | {naive['latency_ms']['p50']} / "
                f"{naive['latency_ms']['p95']} / {naive['latency_ms']['p99']} | | | | 1.00x | | |"
            )
        for run in entry["edgevision"]:
            lat = run["latency_ms"]
            binding = f"{run['binding']} {run['ceilings_fps'][run['binding']]}" if "binding" in run else ""
            verdict = (
                f"{run['vs_binding']:.0%} {'ok' if run['meets_target'] else 'below'} {run['target']:.0%}"
                if "binding" in run
                else ""
            )
            lines.append(
                f"| edgevision, {run['source']} x{run['cameras']}, preprocess {run['preprocess']} | {run['fps']} | "
                f"{lat['p50']} / {lat['p95']} / {lat['p99']} | {binding} | {verdict} | {_ratio(run['vs_limit'], '%')} | "
                f"{_ratio(run['vs_naive'], 'x')} | {run['cpu_utilisation']:.0%} | {_pct(run['gpu_utilisation_pct'])} |"
            )
        for error in entry.get("errors", []):
            lines.append(f"\nFailed: {error}")
        lines.append("")
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def _ratio(value: float | None, kind: str) -> str:
    if value is None:
        return ""
    return f"{value:.0%}" if kind == "%" else f"{value:.2f}x"


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
            graph = run["preprocess"] == "graph"
            bars.append(
                (
                    f"{name} {run['source']} x{run['cameras']}{' graph' if graph else ''}",
                    run["fps"],
                    (170, 120, 40) if graph else (60, 170, 60),
                )
            )
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
