"""YOLOX: output `(N, anchors, 5 + classes)` of raw box offsets, objectness and class scores.

Boxes need the grid decode (`xy = (xy + grid) * stride`, `wh = exp(wh) * stride`); the score is
objectness times the class score; class-aware NMS follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgevision.detections import Detections
from edgevision.families.base import Shape
from edgevision.families.nms import batched_nms
from edgevision.inference.engine import Engine
from edgevision.inference.status import EngineError
from edgevision.models.manifest import ModelManifest
from edgevision.preprocess import LetterboxMeta


class YoloxSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["yolox"] = "yolox"
    strides: tuple[int, ...] = (8, 16, 32)
    max_detections: int = Field(default=300, ge=1, le=10_000)


def anchor_count(width: int, height: int, strides: Sequence[int]) -> int:
    return sum((width // s) * (height // s) for s in strides)


class YoloxFamily:
    name = "yolox"

    def settings(self, manifest: ModelManifest) -> YoloxSettings:
        return YoloxSettings(strides=manifest.strides)

    def recognise(self, input_shape: Shape, output_shapes: Sequence[Shape], manifest: ModelManifest) -> str | None:
        if len(output_shapes) != 1 or len(output_shapes[0]) != 3:
            return None
        anchors = anchor_count(manifest.input.width, manifest.input.height, manifest.strides)
        _, rows, columns = output_shapes[0]
        if rows == anchors and isinstance(columns, int) and columns > 5:
            return f"one output [N, {anchors}, 5 + {columns - 5}]: grid anchors of strides {list(manifest.strides)}"
        return None

    def check(self, engine: Engine, manifest: ModelManifest, file_name: str) -> None:
        spec = manifest.input
        if engine.takes_frames:
            if engine.input_shape[1:] != ["height", "width", 3]:
                raise EngineError(
                    f"{file_name}: frame input shape {engine.input_shape}; [N, height, width, 3] expected"
                )
        elif engine.input_shape[1:] != [3, spec.height, spec.width]:
            raise EngineError(
                f"{file_name}: input shape {engine.input_shape} does not match the manifest's "
                f"{['N', 3, spec.height, spec.width]}"
            )
        out_shape = engine.output_shapes[0]
        expected = [anchor_count(spec.width, spec.height, manifest.strides), 5 + manifest.num_classes]
        if out_shape[1:] != expected:
            raise EngineError(f"{file_name}: output shape {out_shape} does not match the manifest's {['N', *expected]}")

    def decoder(self, manifest: ModelManifest, score_threshold: float, nms_iou: float) -> YoloxDecoder:
        return YoloxDecoder(manifest, score_threshold, nms_iou, self.settings(manifest).max_detections)


class YoloxDecoder:
    """Decodes a batch of raw YOLOX outputs `(N, anchors, 5 + classes)` in one vectorised pass."""

    def __init__(
        self, manifest: ModelManifest, score_threshold: float = 0.3, nms_iou: float = 0.45, max_detections: int = 300
    ) -> None:
        self.num_classes = manifest.num_classes
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.max_detections = max_detections
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
        inv_scale = np.array([1.0 / m.scale for m in metas], dtype=np.float32)[frame_idx, None]
        top_left = (centre - size / 2) * inv_scale
        size *= inv_scale
        return batched_nms(
            top_left,
            size,
            scores,
            class_ids,
            frame_idx,
            metas,
            self.num_classes,
            threshold,
            self.nms_iou,
            self.max_detections,
        )
