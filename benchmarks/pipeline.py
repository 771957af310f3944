"""End-to-end pipeline throughput against its ceiling and against a naive loop, in one run.

Usage: python benchmarks/pipeline.py [--video PATH] [--frames 1000] [--repeats 3] [--out benchmarks/results]

What bounds it on a CPU: every stage shares the cores, so the ceiling is
    cores / (decode + preprocess + inference + postprocess + publish core-ms per frame)
with each stage's core-ms measured alone (process CPU time, so FFmpeg's and ONNX Runtime's own
threads count). The pipeline is compared with that ceiling, with bare session.run at the same
parallelism, and with the sequential read -> preprocess -> run -> postprocess -> send loop.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import onnxruntime as ort

from edgevision import config as configuration
from edgevision.accel import discover
from edgevision.benchmark import cpu_seconds, measure_limit, measure_naive, measure_pipeline
from edgevision.detector import load_engine
from edgevision.engine import EngineConfig
from edgevision.models import resolve_model
from edgevision.pipeline import choose_layout
from edgevision.postprocess import YoloxDecoder
from edgevision.preprocess import Letterbox
from edgevision.publish.messages import result_message
from edgevision.publish.sink import encode


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
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        frames.append(frame)
    return frames


def measure_stages(video: Path, model, frames: list[np.ndarray], repeats: int) -> dict[str, float]:
    def decode() -> int:
        capture = cv2.VideoCapture(str(video))
        n = 0
        while n < 200 and capture.grab() and capture.retrieve()[0]:
            n += 1
        return n

    engine = load_engine(model, EngineConfig(provider="cpu", intra_op_threads=1, allow_spinning=False), 1)
    runner = engine.runner(1)
    letterbox = Letterbox(model.manifest.input)
    sample = frames[:100]

    def preprocess() -> int:
        for frame in sample:
            letterbox(frame, runner.input[0])
        return len(sample)

    def infer() -> int:
        for _ in range(30):
            runner.run()
        return 30

    letterbox(frames[0], runner.input[0])
    metas = [letterbox(frames[0], runner.input[0])]
    output = runner.run()[0].copy()
    decoder = YoloxDecoder(model.manifest)
    detections = decoder(output, metas)[0]

    def postprocess() -> int:
        for _ in range(500):
            decoder(output, metas)
        return 500

    def publish() -> int:
        for seq in range(500):
            encode(result_message(camera="cam0", seq=seq, captured_at=time.time(), latency_ms=1.0, detections=detections,
                                  labels=model.manifest.labels, model=model.name, provider=engine.provider, batch_id=seq,
                                  batch_size=1))
        return 500

    return {
        "decode": core_ms(decode, repeats),
        "preprocess": core_ms(preprocess, repeats),
        "inference": core_ms(infer, repeats),
        "postprocess": core_ms(postprocess, repeats),
        "publish": core_ms(publish, repeats),
        "detections_per_frame": len(detections),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    ort.set_default_logger_severity(3)
    video = args.video or Path(os.environ["EDGEVISION_ASSETS"]) / "video" / "pedestrians-720p.avi"
    model = resolve_model("yolox-nano")
    cores = os.cpu_count() or 1
    layout = choose_layout(configuration.validate({}), on_gpu=False)

    frames = decode_frames(video, 100)
    stages = measure_stages(video, model, frames, args.repeats)
    per_frame = sum(v for k, v in stages.items() if k != "detections_per_frame")
    ceiling_video = cores * 1000.0 / per_frame
    ceiling_synthetic = cores * 1000.0 / (per_frame - stages["decode"])
    bare = statistics.median(measure_limit(model, "cpu", 1, 3.0)["fps"] for _ in range(args.repeats))
    naive = statistics.median(measure_naive(model, "cpu", video, args.frames // 2)["fps"] for _ in range(args.repeats))
    video_runs = [measure_pipeline("cpu", [str(video)], args.frames, True) for _ in range(args.repeats)]
    synthetic_runs = [measure_pipeline("cpu", ["synthetic:1280x720@0"], args.frames, False) for _ in range(args.repeats)]
    video_run = sorted(video_runs, key=lambda r: r["fps"])[len(video_runs) // 2]
    synthetic_run = sorted(synthetic_runs, key=lambda r: r["fps"])[len(synthetic_runs) // 2]

    report = {
        "benchmark": "pipeline end to end, CPU",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": cores, "accelerator": discover().summary()},
        "versions": {"onnxruntime": ort.__version__, "opencv": cv2.__version__},
        "model": model.name,
        "video": video.name,
        "layout": vars(layout),
        "stage_core_ms_per_frame": {k: round(v, 3) for k, v in stages.items()},
        "ceiling_fps": {"video": round(ceiling_video, 1), "synthetic": round(ceiling_synthetic, 1),
                        "bare_inference_same_parallelism": round(bare, 1)},
        "naive_fps": round(naive, 1),
        "edgevision": {"video": video_run, "synthetic": synthetic_run,
                       "video_fps_runs": [round(r["fps"], 1) for r in video_runs],
                       "synthetic_fps_runs": [round(r["fps"], 1) for r in synthetic_runs]},
        "ratios": {
            "video_vs_ceiling": round(video_run["fps"] / ceiling_video, 3),
            "synthetic_vs_ceiling": round(synthetic_run["fps"] / ceiling_synthetic, 3),
            "video_vs_naive": round(video_run["fps"] / naive, 3),
        },
        "targets": {"vs_ceiling": 0.9, "vs_naive": 1.3},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pipeline-cpu.json").write_text(json.dumps(report, indent=2) + "\n")
    s = report["stage_core_ms_per_frame"]
    lines = [
        "# Pipeline throughput, CPU",
        "",
        f"{cores} cores ({report['machine']['cpu']}), {report['machine']['accelerator']}; onnxruntime "
        f"{ort.__version__}; {model.name} on {video.name}; {report['date']}; medians of {args.repeats} runs.",
        "",
        "Per-frame core-ms, each stage measured alone: "
        + ", ".join(f"{k} {v}" for k, v in s.items() if k != "detections_per_frame")
        + f" ({s['detections_per_frame']} detections per frame).",
        "",
        "| path | fps | ceiling fps | vs ceiling | vs naive | latency p50 / p95 ms | CPU use |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| edgevision, video (decode included) | {video_run['fps']:.1f} | {ceiling_video:.1f} | "
        f"{report['ratios']['video_vs_ceiling']:.0%} | {report['ratios']['video_vs_naive']:.2f}x | "
        f"{video_run['latency_ms']['p50']} / {video_run['latency_ms']['p95']} | {video_run['cpu_utilisation']:.0%} |",
        f"| edgevision, synthetic (decode excluded) | {synthetic_run['fps']:.1f} | {ceiling_synthetic:.1f} | "
        f"{report['ratios']['synthetic_vs_ceiling']:.0%} | | "
        f"{synthetic_run['latency_ms']['p50']} / {synthetic_run['latency_ms']['p95']} | {synthetic_run['cpu_utilisation']:.0%} |",
        f"| naive sequential loop, video | {naive:.1f} | | | 1.00x | | |",
        f"| bare session.run, {layout.workers} workers x {layout.intra_op_threads} thread | {bare:.1f} | | | | | |",
        "",
        f"Layout: {layout.workers} inference workers x {layout.intra_op_threads} intra-op thread, batch {layout.max_batch}. "
        "Targets: >= 90% of the ceiling, >= 1.3x the naive loop.",
    ]
    (args.out / "pipeline-cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
