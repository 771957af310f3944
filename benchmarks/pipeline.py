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
from datetime import UTC, datetime
from pathlib import Path

import cv2
import onnxruntime as ort

from edgevision.accel.discover import discover
from edgevision.benchmark.measure import measure_limit, measure_naive, measure_pipeline, measure_stages
from edgevision.config.load import validate
from edgevision.detector.resolve import resolve_model
from edgevision.pipeline.layout import choose_layout


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
    layout = choose_layout(validate({}), on_gpu=False)

    stages = measure_stages(model, "cpu", video, "host", args.repeats)
    per_frame = sum(stages.values())
    ceiling_video = cores * 1000.0 / per_frame
    ceiling_synthetic = cores * 1000.0 / (per_frame - stages["decode"])
    bare = statistics.median(measure_limit(model, "cpu", 1, 3.0)["fps"] for _ in range(args.repeats))
    naive = statistics.median(measure_naive(model, "cpu", video, args.frames // 2)["fps"] for _ in range(args.repeats))
    video_runs = [measure_pipeline("cpu", [str(video)], args.frames, True) for _ in range(args.repeats)]
    synthetic_runs = [
        measure_pipeline("cpu", ["synthetic:1280x720@0"], args.frames, False) for _ in range(args.repeats)
    ]
    video_run = sorted(video_runs, key=lambda r: r["fps"])[len(video_runs) // 2]
    synthetic_run = sorted(synthetic_runs, key=lambda r: r["fps"])[len(synthetic_runs) // 2]

    report = {
        "benchmark": "pipeline end to end, CPU",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": cores,
            "accelerator": discover().summary(),
        },
        "versions": {"onnxruntime": ort.__version__, "opencv": cv2.__version__},
        "model": model.name,
        "video": video.name,
        "layout": vars(layout),
        "stage_core_ms_per_frame": {k: round(v, 3) for k, v in stages.items()},
        "ceiling_fps": {
            "video": round(ceiling_video, 1),
            "synthetic": round(ceiling_synthetic, 1),
            "bare_inference_same_parallelism": round(bare, 1),
        },
        "naive_fps": round(naive, 1),
        "edgevision": {
            "video": video_run,
            "synthetic": synthetic_run,
            "video_fps_runs": [round(r["fps"], 1) for r in video_runs],
            "synthetic_fps_runs": [round(r["fps"], 1) for r in synthetic_runs],
        },
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
        "Per-frame core-ms, each stage measured alone: " + ", ".join(f"{k} {v}" for k, v in s.items()) + ".",
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
