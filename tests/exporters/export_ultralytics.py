"""Export randomly initialised Ultralytics models to ONNX, one per layout the module reads.

Run by `make check-exporters` in its own virtual environment (torch and ultralytics are not the
module's dependencies); `inspect_exports.py` then reads each file with the module's recogniser.
No weights are downloaded: each model is built from its yaml with random weights, which is all
a layout check needs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# (file stem, model yaml, export arguments): the layouts of `yolo export format=onnx`.
CASES = [
    ("yolo11n", "yolo11n.yaml", {}),
    ("yolo11n-dynamic", "yolo11n.yaml", {"dynamic": True}),
    ("yolo11n-nms", "yolo11n.yaml", {"nms": True}),
    ("yolov8n", "yolov8n.yaml", {}),
    ("yolov5nu", "yolov5nu.yaml", {}),
    ("yolov10n", "yolov10n.yaml", {}),
    ("yolov10n-end2end", "yolov10n.yaml", {"nms": False}),
    ("yolo26n", "yolo26n.yaml", {}),
    ("yolo26n-end2end", "yolo26n.yaml", {"nms": False}),
    ("rtdetr-l", "rtdetr-l.yaml", {}),
]
IMGSZ = 320


def main(out: Path) -> int:
    import ultralytics
    from ultralytics import RTDETR, YOLO

    out.mkdir(parents=True, exist_ok=True)
    made = {}
    for stem, yaml, arguments in CASES:
        model = (RTDETR if yaml.startswith("rtdetr") else YOLO)(yaml)
        exported = Path(model.export(format="onnx", imgsz=IMGSZ, **arguments))
        target = out / f"{stem}.onnx"
        exported.replace(target)
        made[stem] = {"yaml": yaml, "export": {"format": "onnx", "imgsz": IMGSZ, **arguments}}
    (out / "exports.json").write_text(json.dumps({"ultralytics": ultralytics.__version__, "models": made}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
