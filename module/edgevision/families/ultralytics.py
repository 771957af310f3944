"""Ultralytics YOLOv5u / v8 / 11 / 12 (`yolo export format=onnx`): one output `[N, 4 + C, anchors]`.

Each anchor column holds `cx, cy, w, h` in model-input pixels, then C class scores (already
sigmoid, no objectness); class-aware NMS follows. The input is RGB scaled to 0-1, letterboxed
with 114 (Ultralytics centres the image; here it sits at the top-left: the boxes are mapped back
either way, and a convolutional detector finds the same objects). The file's metadata holds the
class names (`names`, a Python dict literal), `imgsz`, `stride`, `task`, `batch` and, since 8.3,
`end2end`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgevision.detections import Detections
from edgevision.families.base import ContractError, Recognition, Thresholds
from edgevision.families.boxes import inverse_scales
from edgevision.families.yolox import anchor_count, check_image_input, output_shapes
from edgevision.models.manifest import InputSpec, ModelManifest, Normalization
from edgevision.models.onnx_facts import ModelFacts, class_names, literal
from edgevision.preprocess import LetterboxMeta

STRIDES = (8, 16, 32)
RGB_0_1 = Normalization(scale=1 / 255)


@dataclass(frozen=True)
class UltralyticsMetadata:
    """What an Ultralytics export says about itself in its ONNX metadata."""

    task: str
    names: tuple[str, ...] | None
    imgsz: tuple[int, int] | None
    end2end: bool
    nms: bool
    # An RT-DETR head (`head: RTDETRDecoder`; older exports only say so in `description`).
    detr: bool
    # The Ultralytics release that exported it, as (major, minor), if it says.
    version: tuple[int, int] | None
    keys: tuple[str, ...]

    def newer_than(self, major: int, minor: int) -> bool:
        return self.version is not None and self.version >= (major, minor)


def ultralytics_metadata(facts: ModelFacts) -> UltralyticsMetadata | None:
    meta = facts.metadata
    if "names" not in meta or not ({"imgsz", "stride", "task"} & meta.keys()):
        return None
    imgsz = literal(meta.get("imgsz", ""))
    size = None
    if (
        isinstance(imgsz, (list, tuple))
        and len(imgsz) == 2
        and all(isinstance(v, int) and 0 < v <= 4096 for v in imgsz)
    ):
        size = (imgsz[0], imgsz[1])
    args = literal(meta.get("args", ""))
    nms = isinstance(args, dict) and args.get("nms") is True
    head = meta.get("head", "")
    detr = head == "RTDETRDecoder" or (not head and "rtdetr" in meta.get("description", "").lower().replace("-", ""))
    return UltralyticsMetadata(
        task=meta.get("task", "detect"),
        names=class_names(literal(meta["names"])),
        imgsz=size,
        end2end=meta.get("end2end", "").strip() == "True",
        nms=nms,
        detr=detr,
        version=_version(meta.get("version", "")),
        keys=tuple(k for k in ("names", "imgsz", "stride", "task", "head", "batch", "end2end", "args") if k in meta),
    )


def _version(text: str) -> tuple[int, int] | None:
    parts = text.split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1])


def input_size(facts: ModelFacts, meta: UltralyticsMetadata | None) -> tuple[int, int] | None:
    """(height, width): the image input's fixed size, else the metadata's imgsz (a dynamic export)."""
    image = facts.image_input
    if image is not None and isinstance(image.shape[2], int) and isinstance(image.shape[3], int):
        return image.shape[2], image.shape[3]
    return meta.imgsz if meta is not None else None


def rgb_input(size: tuple[int, int], resize: str = "letterbox", normalization: Normalization = RGB_0_1) -> InputSpec:
    height, width = size
    return InputSpec(
        width=width, height=height, channel_order="RGB", resize=resize, pad_value=114, normalization=normalization
    )


class UltralyticsFamily:
    name = "ultralytics"
    rewrites_batch = False

    def recognise(self, facts: ModelFacts) -> Recognition | None:
        meta = ultralytics_metadata(facts)
        if meta is not None and (meta.task != "detect" or meta.end2end or meta.nms or meta.detr):
            return None
        size = input_size(facts, meta)
        if size is None or len(facts.outputs) != 1 or len(facts.outputs[0].shape) != 3:
            return None
        _, rows, columns = facts.outputs[0].shape
        anchors = anchor_count(size[1], size[0], STRIDES)
        if not isinstance(rows, int) or rows <= 4 or (isinstance(columns, int) and columns != anchors):
            return None
        count = rows - 4
        if meta is not None:
            if meta.names is not None and len(meta.names) != count:
                return None
            why = f"Ultralytics metadata ({', '.join(meta.keys)}), task detect; one output [N, 4 + {count}, {columns}]"
            return Recognition(self.name, why, rgb_input(size), count, labels=meta.names, strides=STRIDES)
        if columns != anchors:
            return None
        why = f"one output [N, 4 + {count}, {anchors}]: anchors of strides {list(STRIDES)} in columns (no metadata)"
        return Recognition(self.name, why, rgb_input(size), count, strides=STRIDES)

    def check(self, facts: ModelFacts, manifest: ModelManifest, file_name: str) -> None:
        spec = manifest.input
        check_image_input(facts, spec, file_name)
        shapes = output_shapes(facts)
        expected = [4 + manifest.num_classes, anchor_count(spec.width, spec.height, manifest.strides)]
        if len(shapes) != 1 or shapes[0][1:] != expected:
            raise ContractError(f"{file_name}: output shapes {shapes}; [N, {expected[0]}, {expected[1]}] expected")

    def extra_inputs(self, manifest: ModelManifest, names: Sequence[str]) -> dict[str, np.ndarray]:
        return {}

    def decoder(self, manifest: ModelManifest, score_threshold: float, nms_iou: float) -> UltralyticsDecoder:
        return UltralyticsDecoder(manifest.num_classes, score_threshold, nms_iou)


class UltralyticsDecoder(Thresholds):
    """`[N, 4 + C, anchors]` -> detections: best class per anchor, threshold, class-aware NMS."""

    def __call__(self, outputs: Sequence[np.ndarray], metas: Sequence[LetterboxMeta]) -> list[Detections]:
        output = outputs[0]
        n = len(metas)
        if output.ndim != 3 or output.shape[0] < n or output.shape[1] != 4 + self.num_classes:
            raise ValueError(f"model output shape {output.shape}; (N, {4 + self.num_classes}, anchors) expected")
        threshold = self.score_threshold
        classes = output[:n, 4:, :]
        best = classes.max(axis=1)
        frame_idx, anchor_idx = np.nonzero(best > threshold)
        scores = best[frame_idx, anchor_idx]
        class_ids = classes[frame_idx, :, anchor_idx].argmax(axis=1)
        boxes = output[frame_idx, :4, anchor_idx]
        inverse = inverse_scales(metas)[frame_idx, :2]
        top_left = (boxes[:, 0:2] - boxes[:, 2:4] / 2) * inverse
        size = boxes[:, 2:4] * inverse
        return self.suppress(top_left, size, scores, class_ids, frame_idx, metas)
