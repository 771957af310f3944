"""Frames in, detections out: preprocess -> infer -> the family's decoder, batched."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from edgevision.detections import Detections
from edgevision.families.registry import family_for
from edgevision.inference.engine import BoundRunner, Engine
from edgevision.inference.loader import load_engine
from edgevision.inference.options import EngineConfig
from edgevision.models.store import ResolvedModel
from edgevision.preprocess import FrameError, preprocessor


@dataclass(frozen=True)
class DetectorConfig:
    score_threshold: float = 0.3
    nms_iou: float = 0.45
    # Above 1, the dynamic-batch copy of the model is used and frames run N at a time.
    max_batch: int = 1
    # "graph": the letterbox runs inside the model, on its execution provider.
    preprocess: Literal["host", "graph"] = "host"
    # None: the manifest's family.
    family: str | None = None


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
    """Not thread-safe: give each worker thread its own Detector (they may share an Engine)."""

    def __init__(
        self,
        model: ResolvedModel,
        engine_config: EngineConfig | None = None,
        config: DetectorConfig | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.model = model
        self.config = config or DetectorConfig()
        if self.config.max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        family = family_for(model.manifest, self.config.family)
        in_graph = self.config.preprocess == "graph"
        self.engine = engine or load_engine(model, engine_config, self.config.max_batch, in_graph, family)
        self.labels = model.manifest.labels
        self._prepare = preprocessor(model.manifest.input, self.engine.takes_frames).prepare
        self._decode = family.decoder(model.manifest, self.config.score_threshold, self.config.nms_iou)
        self.family = family.name
        self._runners: dict[int, BoundRunner] = {}

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
        step = self.config.max_batch if self.engine.dynamic_batch else int(self.engine.input_shape[0])
        for start in range(0, len(frames), step):
            chunk = frames[start : start + step]
            t0 = time.perf_counter()
            runner = self._runner(len(chunk))
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
