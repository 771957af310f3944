"""Frames in, detections out: preprocess -> infer -> the family's decoder, batched."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgevision.detections import Detections
from edgevision.detector.load import LoadedDetector
from edgevision.inference.options import padded_batch_sizes
from edgevision.inference.runner import BoundRunner
from edgevision.preprocess import FrameError


@dataclass(frozen=True)
class DetectorConfig:
    """What may change between calls on the same loaded detector (batch size, preprocessing and
    family are the loaded detector's own)."""

    score_threshold: float = 0.3
    nms_iou: float = 0.45


@dataclass
class StageTimes:
    """Milliseconds spent per stage over one `detect` call."""

    preprocess: float = 0.0
    inference: float = 0.0
    postprocess: float = 0.0
    frames: int = 0

    def per_frame(self) -> dict[str, float]:
        n = max(self.frames, 1)
        return {k: round(getattr(self, k) / n, 3) for k in ("preprocess", "inference", "postprocess")}


class Detector:
    """Not thread-safe: give each thread its own Detector (they may share a LoadedDetector)."""

    def __init__(self, loaded: LoadedDetector, config: DetectorConfig | None = None) -> None:
        self.loaded = loaded
        self.config = config or DetectorConfig()
        self.model = loaded.model
        self.engine = loaded.engine
        self.labels = loaded.labels
        self.family = loaded.family.name
        self._prepare = loaded.preprocessor().prepare
        self._decode = loaded.decoder(self.config.score_threshold, self.config.nms_iou)
        self._runners: dict[int, BoundRunner] = {}
        self._sizes = padded_batch_sizes(loaded.batch) if loaded.engine.dynamic_batch else [loaded.batch]

    def _runner(self, size: int) -> BoundRunner:
        runner = self._runners.get(size)
        if runner is None:
            runner = self._runners[size] = self.engine.runner(size)
        return runner

    def detect(self, frames: Sequence[np.ndarray], times: StageTimes | None = None) -> list[Detections]:
        """Detect objects in each frame; frames may differ in size."""
        times = times if times is not None else StageTimes()
        results: list[Detections] = []
        # A fixed-batch export runs at its own batch (the loader said why).
        step = self.loaded.batch
        for start in range(0, len(frames), step):
            chunk = frames[start : start + step]
            t0 = time.perf_counter()
            # A partial batch is padded up to the next size the engine is planned for, as the
            # pipeline does: on a GPU every other size would be a session of its own.
            runner = self._runner(next(s for s in self._sizes if s >= len(chunk)))
            metas, bad = self._prepare(chunk, runner)
            if bad:
                raise FrameError("; ".join(f"frame {start + i}: {why}" for i, why in bad.items()))
            t1 = time.perf_counter()
            outputs = runner.run()
            t2 = time.perf_counter()
            results.extend(self._decode(outputs, metas))
            t3 = time.perf_counter()
            times.preprocess += (t1 - t0) * 1e3
            times.inference += (t2 - t1) * 1e3
            times.postprocess += (t3 - t2) * 1e3
            times.frames += len(chunk)
        return results
