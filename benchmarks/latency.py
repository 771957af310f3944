"""Single-image latency per provider, per stage, and the postprocessing budget.

Usage: python benchmarks/latency.py [--providers cpu cuda tensorrt] [--repeats 50] [--out benchmarks/results]

Single-image latency is bounded by inference on one core set: on a CPU it is the model's
core-ms divided by the intra-op threads that help (few, for YOLOX-Nano), not by the stages
around it. Medians over repeated runs after warm-up; the machine is named in the output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

from edgevision.accel.discover import discover
from edgevision.detector.detector import Detector, StageTimes
from edgevision.detector.load import load_detector
from edgevision.detector.resolve import resolve_model
from edgevision.families.yolox import YoloxDecoder
from edgevision.imageio import read_image
from edgevision.inference.options import EngineConfig
from edgevision.inference.status import ProviderUnavailableError
from edgevision.preprocess import Letterbox


def _median_ms(fn: Callable[[], Any], repeats: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def reference_decode(output: np.ndarray, scale: float, strides=(8, 16, 32), size=416, thr=0.3, iou=0.45) -> list:
    """The straightforward decode most samples use: full grid decode, full class product,
    per-class Python NMS loop. Kept only as the baseline the decoder is measured against."""
    grids, expanded = [], []
    for s in strides:
        n = size // s
        xv, yv = np.meshgrid(np.arange(n), np.arange(n))
        grids.append(np.stack((xv, yv), 2).reshape(1, -1, 2))
        expanded.append(np.full((1, n * n, 1), s))
    grid, stride = np.concatenate(grids, 1), np.concatenate(expanded, 1)
    out = output.copy()
    out[..., :2] = (out[..., :2] + grid) * stride
    out[..., 2:4] = np.exp(out[..., 2:4]) * stride
    pred = out[0]
    boxes = np.empty((len(pred), 4), np.float32)
    boxes[:, :2] = pred[:, :2] - pred[:, 2:4] / 2
    boxes[:, 2:] = pred[:, :2] + pred[:, 2:4] / 2
    boxes /= scale
    scores = pred[:, 4:5] * pred[:, 5:]
    kept = []
    for cls in range(scores.shape[1]):
        cls_scores = scores[:, cls]
        mask = cls_scores > thr
        if not mask.any():
            continue
        b, sc = boxes[mask], cls_scores[mask]
        order = sc.argsort()[::-1]
        while order.size:
            i = order[0]
            kept.append((cls, sc[i], b[i]))
            xx1 = np.maximum(b[i, 0], b[order[1:], 0])
            yy1 = np.maximum(b[i, 1], b[order[1:], 1])
            xx2 = np.minimum(b[i, 2], b[order[1:], 2])
            yy2 = np.minimum(b[i, 3], b[order[1:], 3])
            inter = np.maximum(0, xx2 - xx1) * np.maximum(0, yy2 - yy1)
            area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
            ovr = inter / (area(b[i]) + area(b[order[1:]]) - inter)
            order = order[1:][ovr <= iou]
    return kept


def bench_provider(provider: str, model, frames: dict[str, np.ndarray], repeats: int) -> dict[str, Any]:
    try:
        detector = Detector(load_detector(model, EngineConfig(provider=provider, strict=provider != "cpu")))
    except ProviderUnavailableError as exc:
        return {"provider": provider, "available": False, "reason": str(exc)}
    per_image = {}
    for name, frame in frames.items():
        times = StageTimes()
        total = _median_ms(lambda f=frame, t=times: detector.detect([f], t), repeats)
        per_image[name] = {"total_ms": round(total, 3)}
    # Stage medians on one image, measured separately so each is a clean median.
    frame = next(iter(frames.values()))
    runner = detector.engine.runner(1)
    letterbox = Letterbox(model.manifest.input)
    meta = letterbox(frame, runner.input[0])
    output = runner.run()[0].copy()
    decoder = YoloxDecoder(model.manifest)
    stages = {
        "preprocess_ms": _median_ms(lambda: letterbox(frame, runner.input[0]), repeats),
        "inference_ms": _median_ms(runner.run, repeats),
        "postprocess_ms": _median_ms(lambda: decoder([output], [meta]), repeats * 4),
        "reference_postprocess_ms": _median_ms(lambda: reference_decode(output, meta.scale), repeats),
    }
    return {
        "provider": detector.engine.provider,
        "available": True,
        "io_binding": detector.engine.status.io_binding,
        "per_image": per_image,
        "stages": {k: round(v, 3) for k, v in stages.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--model", default="yolox-nano")
    parser.add_argument("--images", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    ort.set_default_logger_severity(3)

    images = args.images or sorted(Path(os.environ["EDGEVISION_ASSETS"], "images").glob("*.jpg"))
    frames = {p.stem: read_image(p) for p in images}
    model = resolve_model(args.model)
    accel = discover()
    report = {
        "benchmark": "single-image latency",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "accelerator": accel.summary(),
        },
        "versions": {"onnxruntime": ort.__version__, "opencv": cv2.__version__, "numpy": np.__version__},
        "model": model.name,
        "repeats": args.repeats,
        "results": [bench_provider(p, model, frames, args.repeats) for p in args.providers],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"latency-{'gpu' if accel.has_gpu else 'cpu'}"
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# Single-image latency, {model.name}",
        "",
        f"Machine: {report['machine']['cores']} cores, {report['machine']['accelerator']}; "
        f"onnxruntime {ort.__version__}; {report['date']}; medians of {args.repeats} runs after warm-up.",
        "",
        "| provider | image | total ms | preprocess ms | inference ms | postprocess ms | reference decode ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in report["results"]:
        if not result["available"]:
            lines.append(f"| {result['provider']} | - | unavailable: {result['reason']} | | | | |")
            continue
        s = result["stages"]
        for name, r in result["per_image"].items():
            lines.append(
                f"| {result['provider']} | {name} | {r['total_ms']} | {s['preprocess_ms']} | {s['inference_ms']} "
                f"| {s['postprocess_ms']} | {s['reference_postprocess_ms']} |"
            )
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
