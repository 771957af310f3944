"""ONNX files that only declare inputs, outputs and metadata: what a recogniser reads, no weights.

The shapes and metadata below are those real exporters write (Ultralytics 8.4.190's were read
off its own exports: see benchmarks/results/exporters-ultralytics.md).
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from edgevision.models.manifest import find_manifest

TYPES = {"float32": TensorProto.FLOAT, "int64": TensorProto.INT64, "uint8": TensorProto.UINT8}
COCO = str(dict(enumerate(find_manifest("yolox-nano").labels)))

Tensor = tuple[str, str, list[int | str]]


def shape_model(
    path: Path, inputs: list[Tensor], outputs: list[Tensor], metadata: dict[str, str] | None = None, opset: int = 17
) -> Path:
    graph = helper.make_graph(
        [],
        "shapes",
        [helper.make_tensor_value_info(n, TYPES[t], d) for n, t, d in inputs],
        [helper.make_tensor_value_info(n, TYPES[t], d) for n, t, d in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def ultralytics_meta(**extra: str) -> dict[str, str]:
    """The metadata `yolo export format=onnx` wrote (Ultralytics 8.4.190), values as it writes them."""
    return {
        "description": "Ultralytics YOLO11n model ",
        "author": "Ultralytics",
        "version": "8.4.190",
        "stride": "32",
        "task": "detect",
        "head": "Detect",
        "batch": "1",
        "imgsz": "[320, 320]",
        "names": COCO,
        "args": "{'data': None, 'batch': 1, 'fraction': 1.0, 'quantize': None, 'nms': None, 'dynamic': False}",
        "channels": "3",
        "end2end": "False",
        **extra,
    }
