"""YOLOX: output `(N, anchors, 5 + classes)` of raw box offsets, objectness and class scores.

Boxes need the grid decode (`xy = (xy + grid) * stride`, `wh = exp(wh) * stride`); the score is
objectness times the class score; class-aware NMS follows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgevision.detections import Detections
from edgevision.families.base import ContractError, Recognition, Thresholds
from edgevision.families.boxes import inverse_scales
from edgevision.models.manifest import InputSpec, ModelManifest
from edgevision.models.onnx_facts import ModelFacts
from edgevision.preprocess import LetterboxMeta


def anchor_count(width: int, height: int, strides: Sequence[int]) -> int:
    return sum((width // s) * (height // s) for s in strides)


def yolox_input(width: int, height: int) -> InputSpec:
    """How the official YOLOX exports take their input: BGR, 0-255, letterboxed, padded with 114."""
    return InputSpec(width=width, height=height, channel_order="BGR", resize="letterbox", pad_value=114)


class YoloxFamily:
    name = "yolox"
    rewrites_batch = True

    def recognise(self, facts: ModelFacts) -> Recognition | None:
        image = facts.image_input
        if image is None or len(facts.outputs) != 1 or len(facts.outputs[0].shape) != 3:
            return None
        height, width = image.shape[2], image.shape[3]
        if not isinstance(height, int) or not isinstance(width, int):
            return None
        strides = (8, 16, 32)
        anchors = anchor_count(width, height, strides)
        _, rows, columns = facts.outputs[0].shape
        if rows != anchors or not isinstance(columns, int) or columns <= 5:
            return None
        reason = f"one output [N, {anchors}, 5 + {columns - 5}]: YOLOX grid anchors of strides {list(strides)}"
        return Recognition(self.name, reason, yolox_input(width, height), columns - 5, strides=strides)

    def check(self, facts: ModelFacts, manifest: ModelManifest, file_name: str) -> None:
        spec = manifest.input
        check_image_input(facts, spec, file_name)
        shapes = output_shapes(facts)
        expected = [anchor_count(spec.width, spec.height, manifest.strides), 5 + manifest.num_classes]
        if len(shapes) != 1 or shapes[0][1:] != expected:
            raise ContractError(
                f"{file_name}: output shape {shapes[0]} does not match the manifest's {['N', *expected]}"
            )

    def extra_inputs(self, manifest: ModelManifest, names: Sequence[str]) -> dict[str, np.ndarray]:
        return {}

    def decoder(self, manifest: ModelManifest, score_threshold: float, nms_iou: float) -> YoloxDecoder:
        return YoloxDecoder(manifest, score_threshold, nms_iou)


def output_shapes(facts: ModelFacts) -> list[list[int | str]]:
    return [list(o.shape) for o in facts.outputs]


def check_image_input(facts: ModelFacts, spec: InputSpec, file_name: str) -> None:
    """The image input is the manifest's size (or, with the letterbox in the graph, frames). A
    height or width the export left open is fed at the manifest's size, so it fits."""
    image = facts.image_input
    if image is None:
        raise ContractError(f"{file_name}: no 4-D image input")
    shape = list(image.shape)
    if image.dtype == "uint8":
        if shape[1:] != ["height", "width", 3]:
            raise ContractError(f"{file_name}: frame input shape {shape}; [N, height, width, 3] expected")
        return
    fed = [shape[1]] + [
        d if isinstance(d, int) else size for d, size in zip(shape[2:], (spec.height, spec.width), strict=True)
    ]
    if fed != [3, spec.height, spec.width]:
        raise ContractError(
            f"{file_name}: input shape {shape} does not match the manifest's {['N', 3, spec.height, spec.width]}"
        )


class YoloxDecoder(Thresholds):
    """Decodes a batch of raw YOLOX outputs `(N, anchors, 5 + classes)` in one vectorised pass."""

    def __init__(
        self, manifest: ModelManifest, score_threshold: float = 0.3, nms_iou: float = 0.45, max_detections: int = 300
    ) -> None:
        super().__init__(manifest.num_classes, score_threshold, nms_iou, max_detections)
        # Grid offsets and strides per anchor, computed once per input size.
        grids, strides = [], []
        for stride in manifest.strides:
            gh, gw = manifest.input.height // stride, manifest.input.width // stride
            ys, xs = np.meshgrid(np.arange(gh, dtype=np.float32), np.arange(gw, dtype=np.float32), indexing="ij")
            grids.append(np.stack((xs, ys), axis=-1).reshape(-1, 2))
            strides.append(np.full((gh * gw, 1), stride, dtype=np.float32))
        self._grid = np.concatenate(grids)
        self._stride = np.concatenate(strides)

    def __call__(self, outputs: Sequence[np.ndarray], metas: Sequence[LetterboxMeta]) -> list[Detections]:
        output = outputs[0]
        n = len(metas)
        expected = (len(self._grid), 5 + self.num_classes)
        if output.ndim != 3 or output.shape[0] < n or output.shape[1:] != expected:
            raise ValueError(
                f"model output shape {output.shape} does not match the manifest (N, {expected[0]}, {expected[1]})"
            )
        threshold = self.score_threshold
        # score = objectness x class score <= objectness, so filtering on objectness first is
        # exact and leaves only a few rows for the class product.
        frame_idx, anchor_idx = np.nonzero(output[:n, :, 4] > threshold)
        rows = output[frame_idx, anchor_idx]
        class_ids = rows[:, 5:].argmax(axis=1)
        scores = rows[:, 4] * rows[np.arange(len(rows)), 5 + class_ids]
        keep = scores > threshold
        frame_idx, anchor_idx, rows, class_ids, scores = (
            frame_idx[keep],
            anchor_idx[keep],
            rows[keep],
            class_ids[keep],
            scores[keep],
        )

        stride = self._stride[anchor_idx]
        centre = (rows[:, 0:2] + self._grid[anchor_idx]) * stride
        size = np.exp(rows[:, 2:4]) * stride
        inverse = inverse_scales(metas)[frame_idx, :2]
        top_left = (centre - size / 2) * inverse
        size *= inverse
        return self.suppress(top_left, size, scores, class_ids, frame_idx, metas)
