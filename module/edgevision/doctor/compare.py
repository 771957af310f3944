"""Running a model on frames for the doctor's comparisons: raw outputs and detections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edgevision.detections import Detections
from edgevision.detector.load import LoadedDetector


@dataclass(frozen=True)
class Outputs:
    raw: list[np.ndarray]  # per frame, the first output's row
    detections: list[Detections]


def generated_frame(width: int = 640, height: int = 480, seed: int = 7) -> np.ndarray:
    """A fixed frame: textured background and solid shapes, the same on every machine."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(40, 200, (height, width, 3), dtype=np.uint8)
    for _ in range(6):
        x, y = int(rng.integers(0, width - 80)), int(rng.integers(0, height - 80))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(frame, (x, y), (x + int(rng.integers(20, 120)), y + int(rng.integers(20, 160))), color, -1)
    return frame


def run(detector: LoadedDetector, frames: Sequence[np.ndarray], batch: int = 1) -> Outputs:
    """Every frame through the detector in batches of `batch` (the last one padded), like the pipeline."""
    prepare = detector.preprocessor()
    decode = detector.decoder()
    runner = detector.engine.runner(batch)
    raw: list[np.ndarray] = []
    detections: list[Detections] = []
    for start in range(0, len(frames), batch):
        chunk = list(frames[start : start + batch])
        metas, _bad = prepare.prepare(chunk, runner)
        outputs = runner.run()
        raw.extend(outputs[0][i].copy() for i in range(len(chunk)))
        detections.extend(decode(outputs, metas))
    return Outputs(raw, detections)


def max_difference(a: Outputs, b: Outputs) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a.raw, b.raw, strict=True))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def unmatched(reference: Outputs, other: Outputs, min_iou: float, score_tolerance: float) -> list[str]:
    """Reference detections with no counterpart (same class, IoU >= min_iou, score within tolerance)."""
    missing = []
    for index, (want, got) in enumerate(zip(reference.detections, other.detections, strict=True)):
        for box, score, cid in zip(want.boxes, want.scores, want.class_ids, strict=True):
            if not any(
                c == cid and abs(s - score) <= score_tolerance and iou(box, b) >= min_iou
                for b, s, c in zip(got.boxes, got.scores, got.class_ids, strict=True)
            ):
                missing.append(f"frame {index}: class {int(cid)} score {score:.2f}")
    return missing


def agree(
    family: str, name: str, reference: Outputs, other: Outputs, raw_atol: float, score_tol: float, min_iou: float
) -> tuple[bool, str, float]:
    """Whether two runs agree: every reference detection matched (same class, IoU and score within
    tolerance) and, for YOLOX, the raw outputs within `raw_atol`. Returns (agrees, what was seen,
    the largest raw difference).

    The raw tolerance is in YOLOX's output units (grid offsets, sigmoid scores); other families
    carry boxes in input pixels, where a pixel of preprocessing moves a weak anchor's box by
    several: for them the detections decide and the raw difference is reported."""
    diff = max_difference(reference, other)
    missing = unmatched(reference, other, min_iou, score_tol)
    raw_applies = family == "yolox"
    if (raw_applies and diff > raw_atol) or missing:
        return False, f"{name}: max |diff| {diff:.3g} (tolerance {raw_atol}); unmatched detections: {missing[:5]}", diff
    raw = "" if raw_applies else f" (the {family} family: detections decide)"
    return True, f"{name}: max |diff| {diff:.3g}{raw}, every detection matched", diff
