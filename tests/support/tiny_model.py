"""A real, tiny detector in YOLOX's layout, for tests that need ONNX Runtime to run a model in
milliseconds: input `images [N, 3, 32, 32]`, output `[N, 21, 85]` (the 21 anchors of strides 8,
16 and 32 at 32 x 32, 80 classes), random but fixed weights, a dynamic batch. Its manifest names
it a YOLOX model, so the module loads it like any other (variants, fp16, letterbox in the graph)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgevision.families.yolox import anchor_count
from edgevision.models.manifest import find_manifest

SIZE = 32
ANCHORS = anchor_count(SIZE, SIZE, (8, 16, 32))
COLUMNS = 85


def tiny_model(folder: Path, name: str = "tiny") -> tuple[Path, Path]:
    """The model file and its manifest (a JSON file beside it), written into `folder`."""
    rng = np.random.default_rng(7)
    weights = [
        numpy_helper.from_array(rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32), "conv"),
        numpy_helper.from_array(rng.normal(0, 0.5, (4, ANCHORS * COLUMNS)).astype(np.float32), "head"),
        # Reshape's 0 copies the batch, so the batch stays dynamic through the head.
        numpy_helper.from_array(np.array([0, ANCHORS, COLUMNS], np.int64), "rows"),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "conv"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "head"], ["m"]),
        helper.make_node("Reshape", ["m", "rows"], ["o"]),
        helper.make_node("Sigmoid", ["o"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", ANCHORS, COLUMNS])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    manifest = {
        "name": name,
        "family": "yolox",
        "file": path.name,
        "license": "test",
        "input": {"width": SIZE, "height": SIZE, "channel_order": "BGR", "resize": "letterbox", "pad_value": 114},
        "labels": list(find_manifest("yolox-nano").labels),
    }
    manifest_path = folder / f"{name}.json"
    manifest_path.write_text(json.dumps(manifest))
    return path, manifest_path
