"""What each family's decoder costs per frame on one core, at a 640 input: 8,400 anchors for the
grid layouts, 300 rows for the NMS-free ones, 100 detections kept, the rest under the threshold."""

from __future__ import annotations

import statistics
import time
from typing import Any

import cv2
import numpy as np

from edgevision.families.base import Decoder
from edgevision.families.detr import IMAGENET, DetrDecoder
from edgevision.families.end2end import End2EndDecoder
from edgevision.families.ultralytics import UltralyticsDecoder, rgb_input
from edgevision.families.yolox import YoloxDecoder, anchor_count, yolox_input
from edgevision.models.manifest import find_manifest
from edgevision.preprocess import place

SIDE = 640
KEPT = 100
ROWS = 300
CLASSES = 80
# The budget for decoding, per frame on one core.
BUDGET_MS = 0.5


def _kept_cells() -> tuple[np.ndarray, np.ndarray]:
    """The kept detections: 100 cells of YOLOX's stride-8 grid, 8 cells apart (none overlaps
    another, so NMS keeps them all), as anchor indices and cx, cy, w, h boxes of 40 px."""
    side = SIDE // 8
    cells = [(4 + 8 * i, 4 + 8 * j) for j in range(10) for i in range(10)]
    anchors = np.asarray([gy * side + gx for gx, gy in cells])
    boxes = np.asarray([((gx + 0.5) * 8, (gy + 0.5) * 8, 40.0, 40.0) for gx, gy in cells], np.float32)
    return anchors, boxes


def _cases(rng: np.random.Generator) -> dict[str, tuple[Decoder, list[np.ndarray], Any]]:
    base = find_manifest("yolox-nano")
    labels = base.labels
    anchors = anchor_count(SIDE, SIDE, (8, 16, 32))
    keep, boxes = _kept_cells()
    classes = rng.integers(0, CLASSES, KEPT)
    letterbox = place(720, 1280, rgb_input((SIDE, SIDE)))[0]
    stretch = place(720, 1280, rgb_input((SIDE, SIDE), "stretch"))[0]

    # YOLOX: raw offsets that decode to the boxes (centre of the cell, exp(wh) * 8 = 40); the rest
    # under the threshold.
    yolox = rng.uniform(0, 0.2, (1, anchors, 5 + CLASSES)).astype(np.float32)
    yolox[0, keep, 0:4] = (0.5, 0.5, np.log(5.0), np.log(5.0))
    yolox[0, keep, 4] = 0.9
    yolox[0, keep, 5 + classes] = 0.9
    decoder = YoloxDecoder(base.model_copy(update={"input": yolox_input(SIDE, SIDE)}), 0.3, 0.45)

    ultra = np.zeros((1, 4 + CLASSES, anchors), np.float32)
    ultra[0, 4:] = rng.uniform(0, 0.2, (CLASSES, anchors))
    ultra[0, :4, keep] = boxes
    ultra[0, 4 + classes, keep] = 0.9

    rows = np.zeros((1, ROWS, 6), np.float32)
    rows[0, :, 4] = rng.uniform(0, 0.2, ROWS)
    half = boxes[:, 2:4] / 2
    rows[0, :KEPT, :4] = np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)
    rows[0, :KEPT, 4] = 0.9
    rows[0, :KEPT, 5] = classes

    normalised = boxes / SIDE
    topk = rows.copy()
    topk[0, :KEPT, :4] = normalised
    scores84 = np.zeros((1, ROWS, 4 + CLASSES), np.float32)
    scores84[0, :, 4:] = rng.uniform(0, 0.2, (ROWS, CLASSES))
    scores84[0, :KEPT, :4] = normalised
    scores84[0, np.arange(KEPT), 4 + classes] = 0.9
    post = (
        np.zeros((1, ROWS), np.int64),
        np.zeros((1, ROWS, 4), np.float32),
        rng.uniform(0, 0.2, (1, ROWS)).astype(np.float32),
    )
    post[0][0, :KEPT] = classes
    post[1][0, :KEPT] = rows[0, :KEPT, :4]
    post[2][0, :KEPT] = 0.9
    logits = rng.uniform(-10, -3, (1, ROWS, CLASSES + 1)).astype(np.float32)
    logits[0, np.arange(KEPT), 1 + classes] = 3.0
    dets = np.zeros((1, ROWS, 4), np.float32)
    dets[0, :KEPT] = normalised

    def detr(layout: str, classes_count: int = CLASSES, normalization: Any = None) -> DetrDecoder:
        spec = (
            rgb_input((SIDE, SIDE), "stretch", normalization) if normalization else rgb_input((SIDE, SIDE), "stretch")
        )
        manifest = base.model_copy(
            update={"family": "detr", "layout": layout, "input": spec, "labels": labels[:classes_count]}
        )
        return DetrDecoder(manifest, 0.3, 0.45)

    return {
        "yolox (8400 anchors)": (decoder, [yolox], letterbox),
        "ultralytics (8400 anchors)": (UltralyticsDecoder(CLASSES, 0.3, 0.45), [ultra], letterbox),
        "end2end (300 rows)": (End2EndDecoder(CLASSES, 0.3), [rows], letterbox),
        "detr ultralytics-topk (300 rows)": (detr("ultralytics-topk"), [topk], stretch),
        "detr ultralytics (300 queries)": (detr("ultralytics"), [scores84], stretch),
        "detr postprocessed (300 rows)": (detr("postprocessed"), list(post), stretch),
        "detr rf-detr (300 queries)": (detr("rf-detr", CLASSES, IMAGENET), [dets, logits], stretch),
    }


def decoder_costs(repeats: int = 7, calls: int = 200, seed: int = 5) -> dict[str, dict[str, Any]]:
    """ms per frame (median of `repeats` runs of `calls` calls) and detections kept, per layout."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # one core: OpenCV's NMS must not spread over others
    try:
        results = {}
        for name, (decoder, outputs, meta) in _cases(np.random.default_rng(seed)).items():
            kept = len(decoder(outputs, [meta])[0])
            runs = []
            for _ in range(repeats):
                started = time.perf_counter()
                for _ in range(calls):
                    decoder(outputs, [meta])
                runs.append((time.perf_counter() - started) * 1e3 / calls)
            ms = statistics.median(runs)
            results[name] = {"ms_per_frame": round(ms, 4), "kept": kept, "within_budget": ms < BUDGET_MS}
        return results
    finally:
        cv2.setNumThreads(threads)
