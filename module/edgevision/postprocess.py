"""YOLOX output decoding: grid decode, score filter, class-aware NMS, boxes back to the frame."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edgevision.models.manifest import ModelManifest
from edgevision.preprocess import LetterboxMeta
from edgevision.results import Detections


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

    def __call__(self, output: np.ndarray, metas: Sequence[LetterboxMeta]) -> list[Detections]:
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

        # One NMS over the whole batch: frame and class together form the group id, so boxes
        # only suppress boxes of the same class in the same frame.
        keep_idx = cv2.dnn.NMSBoxesBatched(
            np.concatenate((top_left, size), axis=1),
            scores.astype(np.float32),
            (frame_idx * self.num_classes + class_ids).astype(np.int32),
            threshold,
            self.nms_iou,
        )
        keep_idx = np.asarray(keep_idx, dtype=np.int64).reshape(-1)

        results = []
        for i, meta in enumerate(metas):
            sel = keep_idx[frame_idx[keep_idx] == i]
            if sel.size == 0:
                results.append(Detections.empty(meta.width, meta.height))
                continue
            sel = sel[np.argsort(-scores[sel], kind="stable")][: self.max_detections]
            boxes = np.concatenate((top_left[sel], top_left[sel] + size[sel]), axis=1)
            np.clip(boxes, 0, [meta.width, meta.height, meta.width, meta.height], out=boxes)
            results.append(
                Detections(
                    boxes.astype(np.float32),
                    scores[sel].astype(np.float32),
                    class_ids[sel].astype(np.int64),
                    meta.width,
                    meta.height,
                )
            )
        return results
