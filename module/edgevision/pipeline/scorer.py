"""Scoring single images (POST /score) through the running pipeline's engine."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from edgevision.config.model import ModelConfig
from edgevision.detector.detector import Detector, DetectorConfig, StageTimes
from edgevision.pipeline.stages import InferenceStages


class Scorer:
    """One detector on the current stages' engine: session.run is thread-safe, its buffers are not,
    so requests take turns. A new engine (a model change, a failover) or new thresholds get a
    new detector."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._detector: Detector | None = None

    def score(self, stages: InferenceStages, model: ModelConfig, image: np.ndarray) -> dict[str, Any]:
        with self._lock:
            detector = self._detector
            config = DetectorConfig(score_threshold=model.score_threshold, nms_iou=model.nms_iou)
            if detector is None or detector.loaded is not stages.detector or detector.config != config:
                detector = self._detector = Detector(stages.detector, config)
            times = StageTimes()
            detections = detector.detect([image], times)[0]
        return {
            "model": stages.model.name,
            "provider": stages.engine.provider,
            "width": detections.width,
            "height": detections.height,
            "detections": detections.to_json(detector.labels),
            "timings_ms": times.per_frame(),
        }
