"""DETR-style detectors: a fixed set of queries, each one box, no NMS. Four export layouts:

- `ultralytics` (Ultralytics RT-DETR, earlier releases): one output `[N, Q, 4 + C]`, boxes
  `cx, cy, w, h` normalised to the input, then sigmoid class scores; the best class per query.
- `ultralytics-topk` (Ultralytics RT-DETR, recent releases: seen in 8.4.190, whose
  `RTDETRDecoder.postprocess` keeps the top K of queries x classes): one output `[N, K, 6]`,
  rows of normalised `cx, cy, w, h`, score, class. Told from an end-to-end export only by the
  metadata's `head: RTDETRDecoder`.
- `postprocessed` (RT-DETR / RT-DETRv2 and D-FINE deployment exports): inputs `images` and
  `orig_target_sizes` (`[N, 2]` int64, width then height), outputs `labels [N, K]`,
  `boxes [N, K, 4]` (`x1, y1, x2, y2` scaled by the sizes given) and `scores [N, K]`. The module
  gives the model input's own size, so boxes come back in input pixels.
- `rf-detr` (RF-DETR): outputs `dets [N, Q, 4]` (normalised `cx, cy, w, h`) and `labels
  [N, Q, C + 1]` class logits, column 0 the background; a (query, class) pair counts when its
  sigmoid passes the threshold, as RF-DETR's own post-processing does.

All take RGB scaled to 0-1 (RF-DETR then ImageNet mean and std), stretched to the input size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgevision.detections import Detections
from edgevision.families.base import ContractError, Recognition, Thresholds
from edgevision.families.boxes import cxcywh_to_xyxy, inverse_scales, select_per_frame
from edgevision.families.ultralytics import UltralyticsMetadata, input_size, rgb_input, ultralytics_metadata
from edgevision.families.yolox import anchor_count, check_image_input, output_shapes
from edgevision.models.manifest import ModelManifest, Normalization
from edgevision.models.onnx_facts import ModelFacts, TensorFacts
from edgevision.preprocess import LetterboxMeta

LAYOUTS = ("ultralytics", "ultralytics-topk", "postprocessed", "rf-detr")
_OUTPUTS = {"ultralytics": 1, "ultralytics-topk": 1, "postprocessed": 3, "rf-detr": 2}
IMAGENET = Normalization(scale=1 / 255, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
# More queries than this is not a DETR head (an anchor grid, or garbage).
MAX_QUERIES = 5000


class DetrFamily:
    name = "detr"
    rewrites_batch = False

    def recognise(self, facts: ModelFacts) -> Recognition | None:
        meta = ultralytics_metadata(facts)
        size = input_size(facts, meta)
        if size is None or facts.image_input is None:
            return None
        outputs = facts.outputs
        if len(facts.inputs) == 2 and len(outputs) == 3:
            return self._postprocessed(facts, size)
        if len(facts.inputs) != 1:
            return None
        if len(outputs) == 2 and all(len(o.shape) == 3 for o in outputs):
            return self._rf_detr(outputs, size)
        if len(outputs) != 1 or len(outputs[0].shape) != 3:
            return None
        _, queries, columns = outputs[0].shape
        if not isinstance(columns, int) or columns <= 4:
            return None
        if meta is not None:
            return self._ultralytics(meta, queries, columns, size)
        # Without metadata: [N, Q, 4 + C] where neither axis is an anchor grid (YOLOX's rows,
        # Ultralytics' columns), and not the 6 columns of an end-to-end export.
        anchors = anchor_count(size[1], size[0], (8, 16, 32))
        if columns == 6 or anchors in (queries, columns) or (isinstance(queries, int) and queries > MAX_QUERIES):
            return None
        why = (
            f"one output [N, {queries}, 4 + {columns - 4}]: queries of normalised boxes and class scores (no metadata)"
        )
        return Recognition(self.name, why, rgb_input(size, "stretch"), columns - 4, layout="ultralytics")

    def _ultralytics(
        self, meta: UltralyticsMetadata, queries: int | str, columns: int, size: tuple[int, int]
    ) -> Recognition | None:
        if not meta.detr or meta.task != "detect" or meta.names is None:
            return None
        count = len(meta.names)
        spec = rgb_input(size, "stretch")
        topk = columns == 6 and (count != 2 or meta.newer_than(8, 4))
        if topk:
            why = f"Ultralytics metadata (head RTDETRDecoder); one output [N, {queries}, 6]: cx cy w h (normalised) score class"
            return Recognition(self.name, why, spec, count, labels=meta.names, layout="ultralytics-topk")
        if columns != 4 + count:
            return None
        why = f"Ultralytics metadata (head RTDETRDecoder); one output [N, {queries}, 4 + {count}]"
        return Recognition(self.name, why, spec, count, labels=meta.names, layout="ultralytics")

    def _postprocessed(self, facts: ModelFacts, size: tuple[int, int]) -> Recognition | None:
        sizes = next(i for i in facts.inputs if i is not facts.image_input)
        if len(sizes.shape) != 2 or sizes.shape[1] != 2 or not sizes.dtype.startswith("int"):
            return None
        if _postprocessed_roles(facts.outputs) is None:
            return None
        why = (
            f"inputs image and {sizes.name} [N, 2]; outputs labels, boxes [N, K, 4], scores: "
            "an RT-DETR / D-FINE deployment export"
        )
        return Recognition(self.name, why, rgb_input(size, "stretch"), 0, layout="postprocessed")

    def _rf_detr(self, outputs: Sequence[TensorFacts], size: tuple[int, int]) -> Recognition | None:
        boxes, logits = _rf_detr_roles(outputs)
        if boxes is None or not isinstance(logits.shape[2], int) or logits.shape[2] < 2:
            return None
        if boxes.shape[1] != logits.shape[1]:
            return None
        why = (
            f"outputs {boxes.name} [N, Q, 4] and {logits.name} [N, Q, {logits.shape[2]}] "
            "(class logits, column 0 the background): RF-DETR"
        )
        return Recognition(self.name, why, rgb_input(size, "stretch", IMAGENET), logits.shape[2] - 1, layout="rf-detr")

    def check(self, facts: ModelFacts, manifest: ModelManifest, file_name: str) -> None:
        check_image_input(facts, manifest.input, file_name)
        count = _OUTPUTS.get(manifest.layout or "")
        if count is None:
            raise ContractError(f"{file_name}: DETR layout {manifest.layout!r}; one of {', '.join(LAYOUTS)} expected")
        shapes = output_shapes(facts)
        if len(shapes) != count:
            raise ContractError(f"{file_name}: {len(shapes)} outputs; the {manifest.layout} layout has {count}")
        shape = shapes[0]
        if manifest.layout == "ultralytics" and shape[2:] != [4 + manifest.num_classes]:
            raise ContractError(f"{file_name}: output shape {shape}; [N, Q, {4 + manifest.num_classes}] expected")
        if manifest.layout == "ultralytics-topk" and shape[2:] != [6]:
            raise ContractError(f"{file_name}: output shape {shape}; [N, K, 6] expected")
        if manifest.layout == "rf-detr":
            columns = max((s[2] for s in shapes if len(s) == 3), key=lambda c: c if isinstance(c, int) else -1)
            if columns != manifest.num_classes + 1:
                raise ContractError(
                    f"{file_name}: {columns} logit columns; {manifest.num_classes} classes + the background expected"
                )

    def extra_inputs(self, manifest: ModelManifest, names: Sequence[str]) -> dict[str, np.ndarray]:
        if manifest.layout != "postprocessed":
            return {}
        if len(names) != 1:
            raise ContractError(f"a DETR deployment export takes one size input besides the image, not {list(names)}")
        # Width then height: the export multiplies x by the first and y by the second.
        return {names[0]: np.asarray([manifest.input.width, manifest.input.height], dtype=np.int64)}

    def decoder(self, manifest: ModelManifest, score_threshold: float, nms_iou: float) -> DetrDecoder:
        return DetrDecoder(manifest, score_threshold, nms_iou)


def _postprocessed_roles(outputs: Sequence[TensorFacts]) -> tuple[int, int, int] | None:
    """Positions of labels, boxes and scores among three outputs (by name, else by shape and type)."""
    names = [o.name for o in outputs]
    if sorted(names) == ["boxes", "labels", "scores"]:
        return names.index("labels"), names.index("boxes"), names.index("scores")
    boxes = [i for i, o in enumerate(outputs) if len(o.shape) == 3 and o.shape[2] == 4]
    labels = [i for i, o in enumerate(outputs) if len(o.shape) == 2 and o.dtype.startswith("int")]
    scores = [i for i, o in enumerate(outputs) if len(o.shape) == 2 and o.dtype.startswith("float")]
    if len(boxes) == len(labels) == len(scores) == 1:
        return labels[0], boxes[0], scores[0]
    return None


def _rf_detr_roles(outputs: Sequence[TensorFacts]) -> tuple[TensorFacts | None, TensorFacts]:
    """(boxes [N, Q, 4], logits [N, Q, C + 1]) by name (dets, labels), else by shape."""
    first, second = outputs
    if first.name == "labels" or (second.shape[2] == 4 and first.shape[2] != 4):
        first, second = second, first
    return (first if first.shape[2] == 4 else None), second


class DetrDecoder(Thresholds):
    """Queries over the threshold, boxes mapped to the frame; `nms_iou` is unused (no duplicates)."""

    def __init__(
        self, manifest: ModelManifest, score_threshold: float = 0.3, nms_iou: float = 0.45, max_detections: int = 300
    ) -> None:
        super().__init__(manifest.num_classes, score_threshold, nms_iou, max_detections)
        self.layout = manifest.layout
        self.size = np.asarray([manifest.input.width, manifest.input.height] * 2, dtype=np.float32)

    def __call__(self, outputs: Sequence[np.ndarray], metas: Sequence[LetterboxMeta]) -> list[Detections]:
        n = len(metas)
        if self.layout == "postprocessed":
            frame_idx, boxes, scores, class_ids = self._postprocessed(outputs, n)
        elif self.layout == "rf-detr":
            frame_idx, boxes, scores, class_ids = self._rf_detr(outputs, n)
        elif self.layout == "ultralytics-topk":
            frame_idx, boxes, scores, class_ids = self._topk(outputs[0], n)
        else:
            frame_idx, boxes, scores, class_ids = self._ultralytics(outputs[0], n)
        known = (class_ids >= 0) & (class_ids < self.num_classes)
        frame_idx, boxes, scores, class_ids = frame_idx[known], boxes[known], scores[known], class_ids[known]
        boxes = boxes * inverse_scales(metas)[frame_idx]
        return select_per_frame(boxes, scores, class_ids, frame_idx, metas, self.max_detections)

    def _ultralytics(self, output: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
        if output.ndim != 3 or output.shape[0] < n or output.shape[2] != 4 + self.num_classes:
            raise ValueError(f"model output shape {output.shape}; (N, Q, {4 + self.num_classes}) expected")
        classes = output[:n, :, 4:]
        best = classes.max(axis=2)
        frame_idx, query_idx = np.nonzero(best > self.score_threshold)
        class_ids = classes[frame_idx, query_idx].argmax(axis=1)
        boxes = cxcywh_to_xyxy(output[frame_idx, query_idx, :4]) * self.size
        return frame_idx, boxes, best[frame_idx, query_idx], class_ids

    def _topk(self, output: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
        if output.ndim != 3 or output.shape[0] < n or output.shape[2] != 6:
            raise ValueError(f"model output shape {output.shape}; (N, K, 6) expected")
        frame_idx, row_idx = np.nonzero(output[:n, :, 4] > self.score_threshold)
        rows = output[frame_idx, row_idx]
        # A class that is not a whole number (garbage) is dropped with the unknown ones.
        class_ids = np.where(rows[:, 5] == np.floor(rows[:, 5]), rows[:, 5], -1).astype(np.int64)
        return frame_idx, cxcywh_to_xyxy(rows[:, :4]) * self.size, rows[:, 4], class_ids

    def _postprocessed(self, outputs: Sequence[np.ndarray], n: int) -> tuple[np.ndarray, ...]:
        boxes_out = next((o for o in outputs if o.ndim == 3 and o.shape[2] == 4), None)
        labels_out = next((o for o in outputs if o.ndim == 2 and o.dtype.kind in "iu"), None)
        scores_out = next((o for o in outputs if o.ndim == 2 and o.dtype.kind == "f"), None)
        if boxes_out is None or labels_out is None or scores_out is None:
            raise ValueError(f"model outputs {[o.shape for o in outputs]}; labels, boxes and scores expected")
        frame_idx, row_idx = np.nonzero(scores_out[:n] > self.score_threshold)
        boxes = boxes_out[frame_idx, row_idx].astype(np.float32)
        return frame_idx, boxes, scores_out[frame_idx, row_idx], labels_out[frame_idx, row_idx].astype(np.int64)

    def _rf_detr(self, outputs: Sequence[np.ndarray], n: int) -> tuple[np.ndarray, ...]:
        first, second = outputs[0], outputs[1]
        dets, logits = (first, second) if first.shape[-1] == 4 else (second, first)
        if dets.ndim != 3 or logits.ndim != 3 or dets.shape[2] != 4 or logits.shape[:2] != dets.shape[:2]:
            raise ValueError(f"model outputs {dets.shape}, {logits.shape}; (N, Q, 4) and (N, Q, C + 1) expected")
        threshold = self.score_threshold
        # sigmoid(x) > t  <=>  x > log(t / (1 - t)): the sigmoid only for the few that pass.
        cut = np.inf if threshold >= 1 else (-np.inf if threshold <= 0 else np.log(threshold / (1 - threshold)))
        frame_idx, query_idx, column = np.nonzero(logits[:n, :, 1:] > cut)
        scores = 1.0 / (1.0 + np.exp(-logits[frame_idx, query_idx, column + 1]))
        boxes = cxcywh_to_xyxy(dets[frame_idx, query_idx]) * self.size
        return frame_idx, boxes, scores.astype(np.float32), column.astype(np.int64)
