"""Boxes from model-input pixels to frame pixels, and per-frame selection for NMS-free layouts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgevision.detections import Detections
from edgevision.preprocess import LetterboxMeta


def inverse_scales(metas: Sequence[LetterboxMeta]) -> np.ndarray:
    """(n, 4) factors taking x1, y1, x2, y2 in model-input pixels to each frame's pixels."""
    out = np.empty((len(metas), 4), dtype=np.float32)
    for i, meta in enumerate(metas):
        sx, sy = meta.scales
        out[i] = (1.0 / sx, 1.0 / sy, 1.0 / sx, 1.0 / sy)
    return out


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    half = boxes[..., 2:4] / 2
    return np.concatenate((boxes[..., 0:2] - half, boxes[..., 0:2] + half), axis=-1)


def select_per_frame(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    frame_idx: np.ndarray,
    metas: Sequence[LetterboxMeta],
    max_detections: int,
) -> list[Detections]:
    """Detections per frame from candidates already free of duplicates (no NMS): sorted by score,
    at most `max_detections`, boxes (in frame pixels) clipped to the frame."""
    results = []
    order = np.lexsort((-scores, frame_idx))
    counts = np.bincount(frame_idx, minlength=len(metas))
    start = 0
    for i, meta in enumerate(metas):
        sel = order[start : start + counts[i]][:max_detections]
        start += counts[i]
        if sel.size == 0:
            results.append(Detections.empty(meta.width, meta.height))
            continue
        kept = boxes[sel].astype(np.float32)
        np.clip(kept, 0, [meta.width, meta.height, meta.width, meta.height], out=kept)
        results.append(
            Detections(kept, scores[sel].astype(np.float32), class_ids[sel].astype(np.int64), meta.width, meta.height)
        )
    return results
