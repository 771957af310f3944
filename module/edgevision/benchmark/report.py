"""The benchmark's report: JSON, a Markdown table and a PNG chart (drawn with OpenCV)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np


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
    failures = report.get("failures", [])
    lines += ["Failures (a pipeline run below the naive loop, or under half its binding ceiling):", ""]
    lines += [f"- {failure}" for failure in failures] if failures else ["- none"]
    lines.append("")
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
    decoders = report.get("decoders_ms_per_frame") or {}
    if decoders:
        lines += [
            "## Decoding, per family",
            "",
            "One core, a 640 input, 100 detections kept and the rest under the threshold (budget 0.5 ms per frame).",
            "",
            "| layout | ms per frame | kept | within budget |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {name} | {d['ms_per_frame']} | {d['kept']} | {'yes' if d['within_budget'] else 'no'} |"
            for name, d in decoders.items()
        ]
        lines.append("")
    tracking = report.get("tracking") or {}
    if tracking:
        cost = tracking["cost_at_50_detections"]
        lines += [
            "## Tracking, zones and lines",
            "",
            f"One core, {cost['detections']} detections per frame (budget {cost['budget_ms']} ms per frame):",
            "",
            "| work | ms per frame | within budget |",
            "| --- | --- | --- |",
        ]
        lines += [
            f"| {name} | {figures['ms_per_frame']} | {'yes' if figures['within_budget'] else 'no'} |"
            for name, figures in cost.items()
            if isinstance(figures, dict)
        ]
        lines += [
            "",
            "The tracker on real clips (no ground truth: fragmentation as ids issued per object in view per minute):",
            "",
            "| clip | frames | objects in view | ids issued | ids / minute | ids / object-minute | median track length |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {c['clip']} | {c['frames']} ({c['seconds']} s) | {c['mean_objects_in_view']} | {c['ids_issued']} | "
            f"{c['ids_per_minute']} | {c['ids_per_object_minute']} | {c['median_track_frames']} frames |"
            for c in tracking["clips"]
        ]
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
