"""Real-weight test models of every detector family, made from YOLOX-Nano by graph surgery.

No exporter's weights can be downloaded here, so each family's exact input convention, output
layout and metadata are grafted onto the YOLOX-Nano graph of the test assets:

- a prefix takes the family's input (RGB 0-1, or ImageNet-normalised for RF-DETR) back to the
  BGR 0-255 YOLOX expects;
- a suffix decodes the YOLOX grid (`xy = (xy + grid) * stride`, `wh = exp(wh) * stride`) and
  multiplies objectness into the class scores, then lays the result out as the family does:
  anchors in columns for Ultralytics; for the NMS-free layouts (end-to-end, DETR) NMS runs in
  the graph (per class, on the best class of each anchor, as YOLOX's decoder does) and the kept
  rows are zero-padded to a fixed count, since those exports carry no duplicates.

So each model must find what YOLOX-Nano finds through YOLOX's decoder. The DETR layouts take a
stretched input (as DETR models are trained); their reference is YOLOX-Nano on the same
stretched input.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgevision.families.yolox import anchor_count
from edgevision.models.dynbatch import make_dynamic_batch

SIDE = 416
STRIDES = (8, 16, 32)
ANCHORS = anchor_count(SIDE, SIDE, STRIDES)
CLASSES = 80
# Rows an NMS-free export keeps (YOLOv10/YOLO26 and RT-DETR keep 300).
ROWS = 300
# The in-graph NMS keeps candidates down to this score; the decoder's threshold (0.3 by default)
# then decides, as it does on a real end-to-end export that keeps its top rows whatever the score.
NMS_SCORE = 0.05
NMS_IOU = 0.45
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _Graft:
    """Nodes and constants added to the YOLOX graph, named `fam.*`."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.nodes: list[onnx.NodeProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.graph.initializer.append(numpy_helper.from_array(value, f"fam.{name}"))
        return f"fam.{name}"

    def ints(self, name: str, *values: int) -> str:
        return self.const(name, np.asarray(values, dtype=np.int64))

    def floats(self, name: str, value: float | np.ndarray) -> str:
        return self.const(name, np.asarray(value, dtype=np.float32))

    def op(self, op: str, inputs: list[str], output: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [f"fam.{output}"], **attrs))
        return f"fam.{output}"

    def slice(self, source: str, start: int, end: int, output: str) -> str:
        return self.op(
            "Slice",
            [source, self.ints(f"{output}.s", start), self.ints(f"{output}.e", end), self.ints(f"{output}.a", 2)],
            output,
        )


def _yolox(source: Path, dynamic: bool) -> onnx.ModelProto:
    model = onnx.load(str(source))
    return make_dynamic_batch(model) if dynamic else model


def _replace_input(model: onnx.ModelProto, g: _Graft, name: str, normalization: str, dims: list) -> None:
    """The family's image input in place of YOLOX's `images` (BGR 0-255)."""
    graph = model.graph
    original = graph.input[0]
    graph.input.remove(original)
    graph.input.insert(0, helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
    x = name
    if normalization == "imagenet":
        std = np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
        mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
        x = g.op("Mul", [x, g.floats("std", std)], "unstd")
        x = g.op("Add", [x, g.floats("mean", mean)], "unnorm")
    rgb = g.op("Gather", [x, g.ints("bgr", 2, 1, 0)], "bgr_order", axis=1)
    scaled = g.op("Mul", [rgb, g.floats("255", 255.0)], "bgr255")
    # YOLOX's first nodes read `images`; they now read the converted input, made before them.
    for node in graph.node:
        for i, value in enumerate(node.input):
            if value == original.name:
                node.input[i] = scaled
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(g.nodes + existing)
    g.nodes.clear()


def _decode(g: _Graft, output: str) -> tuple[str, str, str]:
    """(cxcywh [N, A, 4] in input pixels, class scores [N, A, C], anchors x 4 xyxy)."""
    grids, strides = [], []
    for stride in STRIDES:
        side = SIDE // stride
        ys, xs = np.meshgrid(np.arange(side, dtype=np.float32), np.arange(side, dtype=np.float32), indexing="ij")
        grids.append(np.stack((xs, ys), axis=-1).reshape(-1, 2))
        strides.append(np.full((side * side, 1), stride, dtype=np.float32))
    grid = g.floats("grid", np.concatenate(grids)[None])
    stride = g.floats("stride", np.concatenate(strides)[None])
    xy = g.op("Mul", [g.op("Add", [g.slice(output, 0, 2, "xy"), grid], "xy_grid"), stride], "cxcy")
    wh = g.op("Mul", [g.op("Exp", [g.slice(output, 2, 4, "wh")], "wh_exp"), stride], "size")
    scores = g.op("Mul", [g.slice(output, 4, 5, "obj"), g.slice(output, 5, 5 + CLASSES, "cls")], "scores")
    cxcywh = g.op("Concat", [xy, wh], "cxcywh", axis=2)
    half = g.op("Div", [wh, g.floats("2", 2.0)], "half")
    xyxy = g.op("Concat", [g.op("Sub", [xy, half], "tl"), g.op("Add", [xy, half], "br")], "xyxy", axis=2)
    return cxcywh, scores, xyxy


def _finish(
    model: onnx.ModelProto, g: _Graft, outputs: list[tuple[str, str, int, list]], metadata: dict[str, str]
) -> onnx.ModelProto:
    graph = model.graph
    graph.node.extend(g.nodes)
    for value in list(graph.output):
        graph.output.remove(value)
    for name, produced, dtype, dims in outputs:
        graph.node.append(helper.make_node("Identity", [produced], [name]))
        graph.output.append(helper.make_tensor_value_info(name, dtype, dims))
    del graph.value_info[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model


def _kept_rows(g: _Graft, scores: str, xyxy: str) -> tuple[str, str, str]:
    """NMS in the graph, per class on each anchor's best class: (xyxy [R, 4], score [R], class [R]),
    the top ROWS by score, zero-padded to ROWS rows (batch 1)."""
    best = g.op("ReduceMax", [scores], "best", axes=[2], keepdims=1)
    only_best = g.op(
        "Mul",
        [
            scores,
            g.op(
                "Cast",
                [g.op("Not", [g.op("Less", [scores, best], "below_best")], "is_best")],
                "best_mask",
                to=TensorProto.FLOAT,
            ),
        ],
        "best_scores",
    )
    per_class = g.op("Transpose", [only_best], "per_class", perm=[0, 2, 1])
    selected = g.op(
        "NonMaxSuppression",
        [
            xyxy,
            per_class,
            g.ints("max_out", ROWS),
            g.floats("iou", np.asarray([NMS_IOU], np.float32)),
            g.floats("min_score", np.asarray([NMS_SCORE], np.float32)),
        ],
        "selected",
    )
    score = g.op("GatherND", [per_class, selected], "sel_score")
    cls = g.op("Gather", [selected, g.ints("col1", 1)], "sel_cls2", axis=1)
    cls = g.op("Squeeze", [cls], "sel_cls", axes=[1])
    box_idx = g.op("Squeeze", [g.op("Gather", [selected, g.ints("col2", 2)], "sel_box2", axis=1)], "sel_box", axes=[1])
    boxes = g.op("Gather", [g.op("Squeeze", [xyxy], "xyxy0", axes=[0]), box_idx], "sel_xyxy", axis=0)
    # ROWS zero rows after the kept ones, then the top ROWS by score: the kept rows sorted, padded.
    rows_only = g.ints("pads1", 0, ROWS)
    rows_of_four = g.ints("pads2", 0, 0, ROWS, 0)
    padded_score = g.op("Pad", [score, rows_only], "padded_score", mode="constant")
    padded_box = g.op("Pad", [boxes, rows_of_four], "padded_box", mode="constant")
    padded_cls = g.op(
        "Pad", [g.op("Cast", [cls], "cls_f", to=TensorProto.FLOAT), rows_only], "padded_cls", mode="constant"
    )
    top_score = g.op("TopK", [padded_score, g.ints("rows", ROWS)], "top_score", axis=0)
    g.nodes[-1].output.append("fam.order")
    return (
        g.op("Gather", [padded_box, "fam.order"], "rows_xyxy", axis=0),
        top_score,
        g.op("Gather", [padded_cls, "fam.order"], "rows_cls", axis=0),
    )


def _names() -> str:
    from edgevision.models.manifest import find_manifest

    return str(dict(enumerate(find_manifest("yolox-nano").labels)))


def ultralytics_metadata(**extra: str) -> dict[str, str]:
    """What `yolo export format=onnx` writes (Ultralytics 8.4): every value is `str(value)`."""
    return {
        "description": "Ultralytics YOLO11n model trained on coco.yaml",
        "author": "Ultralytics",
        "version": "8.4.190",
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "stride": "32",
        "task": "detect",
        "head": "Detect",
        "batch": "1",
        "imgsz": f"[{SIDE}, {SIDE}]",
        "names": _names(),
        "args": "{'batch': 1, 'half': False, 'nms': None, 'dynamic': False}",
        "channels": "3",
        "end2end": "False",
        **extra,
    }


def ultralytics(source: Path, dynamic: bool = False) -> onnx.ModelProto:
    """`yolo export format=onnx` (dynamic=True: batch, height and width symbolic)."""
    model = _yolox(source, dynamic)
    g = _Graft(model.graph)
    batch = "batch" if dynamic else 1
    _replace_input(model, g, "images", "0-1", [batch, 3, "height" if dynamic else SIDE, "width" if dynamic else SIDE])
    cxcywh, scores, _ = _decode(g, "output")
    rows = g.op("Concat", [cxcywh, scores], "rows", axis=2)
    columns = g.op("Transpose", [rows], "columns", perm=[0, 2, 1])
    meta = ultralytics_metadata(**({"args": "{'batch': 1, 'nms': None, 'dynamic': True}"} if dynamic else {}))
    dims = [batch, 4 + CLASSES, "anchors" if dynamic else ANCHORS]
    return _finish(model, g, [("output0", columns, TensorProto.FLOAT, dims)], meta)


def end2end(source: Path) -> onnx.ModelProto:
    """`yolo export format=onnx nms=False` of YOLO26 / YOLOv10: [1, 300, 6] rows, x1 y1 x2 y2 score class."""
    model = _yolox(source, False)
    g = _Graft(model.graph)
    _replace_input(model, g, "images", "0-1", [1, 3, SIDE, SIDE])
    _, scores, xyxy = _decode(g, "output")
    boxes, score, cls = _kept_rows(g, scores, xyxy)
    rows = g.op(
        "Concat",
        [boxes, g.op("Unsqueeze", [score], "s1", axes=[1]), g.op("Unsqueeze", [cls], "c1", axes=[1])],
        "rows6",
        axis=1,
    )
    out = g.op("Unsqueeze", [rows], "out", axes=[0])
    meta = ultralytics_metadata(
        description="Ultralytics YOLO26n model trained on coco.yaml",
        end2end="True",
        args="{'batch': 1, 'nms': False, 'dynamic': False}",
    )
    return _finish(model, g, [("output0", out, TensorProto.FLOAT, [1, ROWS, 6])], meta)


def _normalised_cxcywh(g: _Graft, boxes: str) -> str:
    x1y1 = g.op("Slice", [boxes, g.ints("n.s0", 0), g.ints("n.e0", 2), g.ints("n.a0", 1)], "n.x1y1")
    x2y2 = g.op("Slice", [boxes, g.ints("n.s1", 2), g.ints("n.e1", 4), g.ints("n.a1", 1)], "n.x2y2")
    centre = g.op("Div", [g.op("Add", [x1y1, x2y2], "n.sum"), g.floats("n.2", 2.0)], "n.centre")
    size = g.op("Sub", [x2y2, x1y1], "n.size")
    return g.op("Div", [g.op("Concat", [centre, size], "n.cxcywh", axis=1), g.floats("n.side", float(SIDE))], "n.norm")


def detr(source: Path, layout: str) -> onnx.ModelProto:
    """A DETR-style export: `ultralytics-topk` (RT-DETR from Ultralytics 8.4), `ultralytics`
    (earlier Ultralytics RT-DETR), `postprocessed` (RT-DETR / D-FINE deployment), `rf-detr`."""
    model = _yolox(source, False)
    g = _Graft(model.graph)
    image = "input" if layout == "rf-detr" else "images"
    _replace_input(model, g, image, "imagenet" if layout == "rf-detr" else "0-1", [1, 3, SIDE, SIDE])
    _, scores, xyxy = _decode(g, "output")
    boxes, score, cls = _kept_rows(g, scores, xyxy)
    rtdetr = {"description": "Ultralytics rtdetr-l model trained on coco.yaml", "head": "RTDETRDecoder"}
    outputs: list[tuple[str, str, int, list]]
    meta: dict[str, str] = {}
    if layout == "ultralytics-topk":
        rows = g.op(
            "Concat",
            [
                _normalised_cxcywh(g, boxes),
                g.op("Unsqueeze", [score], "s1", axes=[1]),
                g.op("Unsqueeze", [cls], "c1", axes=[1]),
            ],
            "rows6",
            axis=1,
        )
        outputs = [("output0", g.op("Unsqueeze", [rows], "out", axes=[0]), TensorProto.FLOAT, [1, ROWS, 6])]
        meta = ultralytics_metadata(**rtdetr)
    elif layout == "ultralytics":
        onehot = g.op(
            "OneHot",
            [
                g.op("Cast", [cls], "cls_i", to=TensorProto.INT64),
                g.ints("depth", CLASSES),
                g.floats("onoff", np.asarray([0.0, 1.0], np.float32)),
            ],
            "onehot",
            axis=-1,
        )
        class_scores = g.op("Mul", [onehot, g.op("Unsqueeze", [score], "s1", axes=[1])], "class_scores")
        rows = g.op("Concat", [_normalised_cxcywh(g, boxes), class_scores], "rows84", axis=1)
        outputs = [("output0", g.op("Unsqueeze", [rows], "out", axes=[0]), TensorProto.FLOAT, [1, ROWS, 4 + CLASSES])]
        # Earlier releases wrote no `head`; the description names the model.
        meta = {k: v for k, v in ultralytics_metadata(**rtdetr).items() if k not in ("head", "end2end", "channels")}
        meta["version"] = "8.3.40"
    elif layout == "postprocessed":
        sizes = "orig_target_sizes"
        model.graph.input.append(helper.make_tensor_value_info(sizes, TensorProto.INT64, [1, 2]))
        scale = g.op(
            "Div",
            [
                g.op("Cast", [g.op("Tile", [sizes, g.ints("twice", 1, 2)], "sizes4")], "sizes4f", to=TensorProto.FLOAT),
                g.floats("p.side", float(SIDE)),
            ],
            "p.scale",
        )
        scaled = g.op(
            "Mul",
            [g.op("Unsqueeze", [boxes], "b1", axes=[0]), g.op("Unsqueeze", [scale], "scale1", axes=[1])],
            "p.boxes",
        )
        outputs = [
            (
                "labels",
                g.op("Unsqueeze", [g.op("Cast", [cls], "lab_i", to=TensorProto.INT64)], "lab", axes=[0]),
                TensorProto.INT64,
                [1, ROWS],
            ),
            ("boxes", scaled, TensorProto.FLOAT, [1, ROWS, 4]),
            ("scores", g.op("Unsqueeze", [score], "sc", axes=[0]), TensorProto.FLOAT, [1, ROWS]),
        ]
    elif layout == "rf-detr":
        # Class logits with the background in column 0: the kept class gets logit(score), the rest -20.
        clipped = g.op("Clip", [score, g.floats("lo", 1e-6), g.floats("hi", 1 - 1e-6)], "clipped")
        logit = g.op(
            "Log", [g.op("Div", [clipped, g.op("Sub", [g.floats("one", 1.0), clipped], "rest")], "odds")], "logit"
        )
        column = g.op("Add", [g.op("Cast", [cls], "cls_i", to=TensorProto.INT64), g.ints("plus1", 1)], "column")
        onehot = g.op(
            "OneHot",
            [column, g.ints("depth", CLASSES + 1), g.floats("onoff", np.asarray([0.0, 1.0], np.float32))],
            "onehot",
            axis=-1,
        )
        lifted = g.op("Add", [g.op("Unsqueeze", [logit], "l1", axes=[1]), g.floats("20", 20.0)], "lifted")
        logits = g.op("Sub", [g.op("Mul", [onehot, lifted], "on"), g.floats("20b", 20.0)], "logits")
        outputs = [
            ("dets", g.op("Unsqueeze", [_normalised_cxcywh(g, boxes)], "d", axes=[0]), TensorProto.FLOAT, [1, ROWS, 4]),
            ("labels", g.op("Unsqueeze", [logits], "lg", axes=[0]), TensorProto.FLOAT, [1, ROWS, CLASSES + 1]),
        ]
    else:
        raise ValueError(layout)
    return _finish(model, g, outputs, meta)


BUILDERS: dict[str, Callable[[Path], onnx.ModelProto]] = {
    "ultralytics": ultralytics,
    "ultralytics-dynamic": lambda source: ultralytics(source, dynamic=True),
    "end2end": end2end,
    "detr-ultralytics-topk": lambda source: detr(source, "ultralytics-topk"),
    "detr-ultralytics": lambda source: detr(source, "ultralytics"),
    "detr-postprocessed": lambda source: detr(source, "postprocessed"),
    "rf-detr": lambda source: detr(source, "rf-detr"),
}
# The family each one must be recognised as, and whether its input is stretched.
EXPECTED = {
    "ultralytics": ("ultralytics", None),
    "ultralytics-dynamic": ("ultralytics", None),
    "end2end": ("end2end", None),
    "detr-ultralytics-topk": ("detr", "ultralytics-topk"),
    "detr-ultralytics": ("detr", "ultralytics"),
    "detr-postprocessed": ("detr", "postprocessed"),
    "rf-detr": ("detr", "rf-detr"),
}


def write_family_models(source: Path, folder: Path) -> dict[str, Path]:
    """Every family's test model, written once into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, build in BUILDERS.items():
        path = folder / f"{name}.onnx"
        if not path.is_file():
            onnx.save(build(source), str(path))
        paths[name] = path
    return paths
