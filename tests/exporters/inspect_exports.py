"""Read every export `export_ultralytics.py` made with the module's recogniser, run each once
through `detect`, and write what was found as a Markdown record."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edgevision.detector.detector import Detector
from edgevision.detector.inspect import inspect_model
from edgevision.detector.load import load_detector
from edgevision.detector.resolve import resolve_model
from edgevision.inference.options import EngineConfig

# What each export must be recognised as: (family, DETR layout).
EXPECTED = {
    "yolo11n": ("ultralytics", None),
    "yolo11n-dynamic": ("ultralytics", None),
    "yolo11n-nms": ("end2end", None),
    "yolov8n": ("ultralytics", None),
    "yolov5nu": ("ultralytics", None),
    "yolov10n": ("ultralytics", None),
    "yolov10n-end2end": ("end2end", None),
    "yolo26n": ("ultralytics", None),
    "yolo26n-end2end": ("end2end", None),
    "rtdetr-l": ("detr", "ultralytics-topk"),
}


def main(folder: Path, record: Path) -> int:
    exports = json.loads((folder / "exports.json").read_text())
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    rows, failures = [], []
    for stem, (family, layout) in EXPECTED.items():
        report = inspect_model(folder / f"{stem}.onnx")
        got = (report.get("family"), report.get("layout"))
        ran = "-"
        if report["recognised"]:
            # Random weights find nothing worth keeping; this proves the layout decodes end to end.
            detections = Detector(
                load_detector(resolve_model(str(folder / f"{stem}.onnx")), EngineConfig(provider="cpu"))
            ).detect([frame])[0]
            ran = f"ran, {len(detections)} detection(s)"
        ok = got == (family, layout)
        if not ok:
            failures.append(f"{stem}: {got}, expected {(family, layout)}")
        args = exports["models"][stem]["export"]
        extra = ", ".join(f"{k}={v}" for k, v in args.items() if k not in ("format", "imgsz")) or "defaults"
        rows.append(
            f"| {stem} ({exports['models'][stem]['yaml']}, {extra}) | {'; '.join(report['outputs'])} | "
            f"{got[0]}{f' / {got[1]}' if got[1] else ''} | {report.get('why', report.get('why_not'))} | "
            f"{report.get('batch', {}).get('batches', '-')} | {ran} | {'ok' if ok else 'WRONG'} |"
        )
    lines = [
        f"# Ultralytics exports read by the recogniser (ultralytics {exports['ultralytics']})",
        "",
        "Made by `make check-exporters` (not in CI: it installs torch and ultralytics): each model built from its "
        f"yaml with random weights, exported with `format=onnx imgsz={exports['models']['yolo11n']['export']['imgsz']}` "
        "and the arguments shown, then read by `edgevision models inspect` and run once through `detect` on the CPU.",
        "",
        "| export | outputs | recognised as | why | batch | detect | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        "With `nms` unset (the default of this release) YOLOv10 and YOLO26 export their one-to-many head "
        "(`[N, 84, anchors]`, NMS needed); `nms=False` exports the NMS-free head (`end2end: True`), `nms=True` "
        "puts NMS in the graph. This release's RT-DETR writes top-k rows of normalised boxes (`[N, 300, 6]`), "
        "told from an end-to-end export by `head: RTDETRDecoder`.",
        "",
    ]
    record.write_text("\n".join(lines))
    for failure in failures:
        print(f"wrong: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
