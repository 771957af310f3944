"""Tracking in the benchmark: what tracks plus zones and lines cost per frame at 50 detections,
and how the tracker fares on real clips, which have no ground truth: ids issued per minute
against the objects in view (fragmentation), and how long tracks last."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgevision.analytics.camera import CameraAnalytics
from edgevision.config.camera import CameraConfig
from edgevision.detections import Detections
from edgevision.detector.detector import Detector
from edgevision.detector.loader import DetectorLoader
from edgevision.inference.options import EngineConfig
from edgevision.models.store import ResolvedModel

# The budget: tracking plus zones, per frame at 50 detections, on one core.
BUDGET_MS = 1.0
_ZONE = "0.1,0.1 0.5,0.1 0.5,0.6 0.1,0.6"
_LINE = "0,0.5 1,0.5"


def _walkers(count: int, frames: int, seed: int) -> list[Detections]:
    """`count` objects walking down a 1280 x 720 frame with jitter; a few missed per frame."""
    rng = np.random.default_rng(seed)
    start = np.stack([rng.uniform(0.05, 0.95, count) * 1280, rng.uniform(0.05, 0.3, count) * 720], axis=1)
    step = np.stack([rng.uniform(-1, 1, count), rng.uniform(1, 3, count)], axis=1)
    size = np.stack([rng.uniform(20, 40, count), rng.uniform(50, 90, count)], axis=1)
    out = []
    for frame in range(frames):
        centre = start + step * frame + rng.normal(0, 1.5, (count, 2))
        keep = rng.random(count) > 0.03
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)[keep].astype(np.float32)
        scores = rng.uniform(0.4, 0.95, count)[keep].astype(np.float32)
        out.append(Detections(boxes, scores, np.zeros(len(boxes), np.int64), 1280, 720))
    return out


def cost(detections: int = 50, frames: int = 300, repeats: int = 5) -> dict[str, Any]:
    """ms per frame of tracking with one zone and one line, and with two of each (median of runs)."""
    labels = ("person",)
    frames_of = _walkers(detections, frames, seed=3)
    figures: dict[str, Any] = {"detections": detections, "budget_ms": BUDGET_MS}
    for name, zones, lines in (
        ("tracking only", {}, {}),
        ("1 zone + 1 line", {"a": {"polygon": _ZONE}}, {"l": {"points": _LINE}}),
        (
            "2 zones + 2 lines",
            {"a": {"polygon": _ZONE}, "b": {"polygon": "0.5,0.4 0.9,0.4 0.9,0.9 0.5,0.9", "dwell_s": 5}},
            {"l": {"points": _LINE}, "m": {"points": "0.5,0 0.5,1"}},
        ),
    ):
        camera = CameraConfig(
            id="bench", uri="synthetic:1280x720@0", tracking={"enabled": True}, zones=zones, lines=lines
        )
        runs = []
        for _ in range(repeats):
            analytics = CameraAnalytics(camera, lambda _name, _details: None)
            for index in range(20):  # tracks established before timing
                analytics.process(frames_of[index], labels, index / 25)
            started = time.perf_counter()
            for index in range(20, frames):
                analytics.process(frames_of[index], labels, index / 25)
            runs.append((time.perf_counter() - started) * 1e3 / (frames - 20))
        ms = statistics.median(runs)
        figures[name] = {"ms_per_frame": round(ms, 3), "within_budget": ms < BUDGET_MS}
    return figures


def on_clip(loader: DetectorLoader, model: ResolvedModel, clip: Path, max_frames: int | None = None) -> dict[str, Any]:
    """The real model and the tracker on a clip: objects in view, ids issued, track lengths."""
    detector = Detector(loader.load(model, EngineConfig(provider="cpu", intra_op_threads=0)))
    camera = CameraConfig(id="clip", uri="synthetic:64x48@0", tracking={"enabled": True})
    analytics = CameraAnalytics(camera, lambda _name, _details: None)
    capture = cv2.VideoCapture(str(clip))
    # Time from the frames' own timestamps: a container's frame rate can be wrong (the
    # pedestrians clip says 50 fps; its frames are 40 ms apart).
    in_view, lengths, frames, at = [], {}, 0, 0.0
    while max_frames is None or frames < max_frames:
        ok, image = capture.read()
        if not ok:
            break
        # The latest timestamp seen (some containers report 0 near their end).
        at = max(at, capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
        found = detector.detect([image])[0]
        result = analytics.process(found, model.manifest.labels, at)
        confident = int((found.scores >= camera.tracking.high_score).sum())
        in_view.append(confident)
        for track in result.track_ids or []:
            if track is not None:
                lengths[track] = lengths.get(track, 0) + 1
        frames += 1
    capture.release()
    # The last frame's timestamp plus one frame's duration.
    seconds = at * frames / max(frames - 1, 1) if frames > 1 else 0.0
    minutes = seconds / 60
    issued = analytics.snapshot()["tracks"]["ids_issued"]
    mean_view = statistics.fmean(in_view) if in_view else 0.0
    return {
        "clip": clip.name,
        "frames": frames,
        "seconds": round(seconds, 1),
        "mean_objects_in_view": round(mean_view, 1),
        "ids_issued": issued,
        "ids_per_minute": round(issued / minutes, 1) if minutes else None,
        # Ids per object-in-view per minute: 1 would be one id for every object that came and
        # went a minute; higher means tracks broke up (or many objects passed through).
        "ids_per_object_minute": round(issued / minutes / mean_view, 2) if minutes and mean_view else None,
        "median_track_frames": statistics.median(lengths.values()) if lengths else 0,
    }
