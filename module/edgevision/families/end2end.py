"""End-to-end exports (YOLOv10, YOLO26 by default, Ultralytics `nms=True`): `[N, K, 6]` rows of
`x1, y1, x2, y2, score, class` in model-input pixels, already free of duplicates: no NMS.

YOLOv10 and YOLO26 keep the top K whatever their score; an `nms=True` export pads with zero
rows. Input as Ultralytics: RGB 0-1, letterboxed with 114.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgevision.detections import Detections
from edgevision.families.base import ContractError, Recognition, Thresholds
from edgevision.families.boxes import inverse_scales, select_per_frame
from edgevision.families.ultralytics import input_size, rgb_input, ultralytics_metadata
from edgevision.families.yolox import check_image_input, output_shapes
from edgevision.models.manifest import ModelManifest
from edgevision.models.onnx_facts import ModelFacts
from edgevision.preprocess import LetterboxMeta


class End2EndFamily:
    name = "end2end"
    rewrites_batch = False

    def recognise(self, facts: ModelFacts) -> Recognition | None:
        meta = ultralytics_metadata(facts)
        if meta is not None and (meta.task != "detect" or meta.detr):
            return None
        size = input_size(facts, meta)
        if size is None or len(facts.outputs) != 1 or len(facts.outputs[0].shape) != 3:
            return None
        _, rows, columns = facts.outputs[0].shape
        if columns != 6:
            return None
        if meta is not None:
            if not (meta.end2end or meta.nms) or meta.names is None:
                return None
            flag = "end2end True" if meta.end2end else "args nms True"
            why = f"Ultralytics metadata ({flag}); one output [N, {rows}, 6]: x1 y1 x2 y2 score class"
            return Recognition(self.name, why, rgb_input(size), len(meta.names), labels=meta.names)
        why = f"one output [N, {rows}, 6]: rows of x1 y1 x2 y2 score class (no metadata)"
        return Recognition(self.name, why, rgb_input(size), 0)

    def check(self, facts: ModelFacts, manifest: ModelManifest, file_name: str) -> None:
        check_image_input(facts, manifest.input, file_name)
        shapes = output_shapes(facts)
        if len(shapes) != 1 or len(shapes[0]) != 3 or shapes[0][2] != 6:
            raise ContractError(f"{file_name}: output shapes {shapes}; one [N, K, 6] expected")

    def extra_inputs(self, manifest: ModelManifest, names: Sequence[str]) -> dict[str, np.ndarray]:
        return {}

    def decoder(self, manifest: ModelManifest, score_threshold: float, nms_iou: float) -> End2EndDecoder:
        return End2EndDecoder(manifest.num_classes, score_threshold, nms_iou)


class End2EndDecoder(Thresholds):
    """Rows over the threshold, boxes mapped to the frame; `nms_iou` is unused (no duplicates)."""

    def __call__(self, outputs: Sequence[np.ndarray], metas: Sequence[LetterboxMeta]) -> list[Detections]:
        output = outputs[0]
        n = len(metas)
        if output.ndim != 3 or output.shape[0] < n or output.shape[2] != 6:
            raise ValueError(f"model output shape {output.shape}; (N, K, 6) expected")
        frame_idx, row_idx = np.nonzero(output[:n, :, 4] > self.score_threshold)
        rows = output[frame_idx, row_idx]
        class_ids = rows[:, 5].astype(np.int64)
        # A class the labels do not name (or garbage) is dropped, never an index error later.
        known = (class_ids >= 0) & (class_ids < self.num_classes) & (rows[:, 5] == np.floor(rows[:, 5]))
        frame_idx, rows, class_ids = frame_idx[known], rows[known], class_ids[known]
        boxes = rows[:, :4] * inverse_scales(metas)[frame_idx]
        return select_per_frame(boxes, rows[:, 4], class_ids, frame_idx, metas, self.max_detections)
