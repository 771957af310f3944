"""Measurements for `edgevision benchmark`: stage costs, the bare-inference limit, the naive loop
and the pipeline itself, each returning plain numbers."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from edgevision.accel.telemetry import GpuTelemetry
from edgevision.benchmark.usage import NullSink, Usage, core_ms
from edgevision.config.load import validate
from edgevision.detector.loader import DetectorLoader
from edgevision.families.registry import family_of
from edgevision.inference.options import EngineConfig
from edgevision.inference.providers import CPU, PROVIDER_NAMES, provider_load_error
from edgevision.metrics import percentiles
from edgevision.models.store import ResolvedModel
from edgevision.pipeline.build import Seams
from edgevision.pipeline.layout import choose_layout
from edgevision.pipeline.pipeline import Pipeline
from edgevision.preprocess import Letterbox
from edgevision.publish.messages import encode, result_message

STAGES = ("decode", "preprocess", "inference", "postprocess", "publish")


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
    loader: DetectorLoader,
    model: ResolvedModel,
    provider: str,
    video: Path,
    preprocess: str,
    repeats: int,
    items: int = 100,
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
    detector = loader.load(model, config, 1, in_graph=preprocess == "graph")
    engine = detector.engine
    runner = engine.runner(1)
    prepare = detector.preprocessor()

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
    outputs = [output.copy() for output in runner.run()]
    decoder = detector.decoder()
    detections = decoder(outputs, metas)[0]

    def post() -> int:
        for _ in range(items * 5):
            decoder(outputs, metas)
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
    return {name: provider_load_error(PROVIDER_NAMES[name]) for name in wanted}


def measure_limit(
    loader: DetectorLoader,
    model: ResolvedModel,
    provider: str,
    batch: int,
    seconds: float,
    gpu: GpuTelemetry | None = None,
) -> dict[str, Any]:
    """Bare session.run on preallocated, IO-bound input: the ceiling for this batch size.

    With the pipeline's own parallelism: on a CPU one runner per worker thread, one intra-op
    thread each; on a GPU one runner.
    """
    layout = choose_layout(validate({}), on_gpu=provider != "cpu")
    config = EngineConfig(
        provider=provider,
        strict=provider != "cpu",
        io_binding=True,
        intra_op_threads=layout.intra_op_threads,
        allow_spinning=False,
    )
    engine = loader.load(model, config, max(batch, 2)).engine
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
    session = ort.InferenceSession(str(model.path), providers=list(dict.fromkeys([PROVIDER_NAMES[provider], CPU])))
    inputs = session.get_inputs()
    name = next(i.name for i in inputs if len(i.shape) == 4)
    # The naive loop is plain ONNX Runtime on the model's own file; only the decoding is ours.
    family = family_of(model.manifest)
    # A DETR deployment export's sizes input, as any sample passes it.
    extra = family.extra_inputs(model.manifest, [i.name for i in inputs if i.name != name])
    feed_extra = {key: row[None] for key, row in extra.items()}
    letterbox = Letterbox(model.manifest.input)
    decoder = family.decoder(model.manifest, 0.3, 0.45)
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
        detections = decoder(session.run(None, {name: blob, **feed_extra}), [meta])[0]
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
    model: dict[str, Any] | None = None,
    seams: Seams | None = None,
) -> dict[str, Any]:
    sink = NullSink()
    cameras = {
        f"cam{i}": {"uri": uri, "max_frames": frames, "every_frame": every_frame, "loop": every_frame}
        for i, uri in enumerate(uris)
    }
    document = {
        "cameras": cameras,
        "inference": {"provider": provider, "preprocess": preprocess},
        **({"model": model} if model else {}),
        "metrics_interval_s": 3600,
        "http": {"enabled": False},
    }
    pipeline = Pipeline(validate(document), sink, seams=seams)
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
