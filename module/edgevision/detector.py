"""YOLOX detector: frames in, detections out (preprocess -> infer -> postprocess)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from edgevision.engine import BoundRunner, Engine, EngineConfig, EngineError
from edgevision.models import ResolvedModel, Variant, variant_path
from edgevision.postprocess import YoloxDecoder
from edgevision.preprocess import FrameError, preprocessor
from edgevision.results import Detections


@dataclass(frozen=True)
class DetectorConfig:
    score_threshold: float = 0.3
    nms_iou: float = 0.45
    # Above 1, the dynamic-batch copy of the model is used and frames run N at a time.
    max_batch: int = 1
    # "graph": the letterbox runs inside the model, on its execution provider.
    preprocess: Literal["host", "graph"] = "host"


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
        in_graph = self.config.preprocess == "graph"
        self.engine = engine or load_engine(model, engine_config, self.config.max_batch, in_graph)
        self.labels = model.manifest.labels
        self._prepare = preprocessor(model.manifest.input, self.engine.takes_frames).prepare
        self._decode = YoloxDecoder(model.manifest, self.config.score_threshold, self.config.nms_iou)
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
        step = self.config.max_batch
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
            results.extend(self._decode(outputs[0], metas))
            t3 = time.perf_counter()
            times.preprocess += (t1 - t0) * 1e3
            times.inference += (t2 - t1) * 1e3
            times.postprocess += (t3 - t2) * 1e3
            times.frames += len(chunk)
        return results


def load_engine(model: ResolvedModel, config: EngineConfig | None, max_batch: int, in_graph: bool = False) -> Engine:
    """An engine for this model: the dynamic-batch copy for batches above 1, the letterbox-in-graph
    copy when `in_graph`, and its fp16 copy when the config asks and a GPU runs it."""
    variant = Variant(dynamic_batch=max_batch > 1, frames_in=in_graph)
    spec = model.manifest.input
    path = variant_path(model.path, model.sha256, variant, spec)
    half = Variant(dynamic_batch=variant.dynamic_batch, frames_in=in_graph, fp16=True)
    engine = Engine(path, config, fp16_model=lambda: variant_path(model.path, model.sha256, half, spec))
    _check_contract(engine, model)
    return engine


def _check_contract(engine: Engine, model: ResolvedModel) -> None:
    """Fail at load, not per frame, when the graph does not fit its manifest."""
    spec = model.manifest.input
    if engine.takes_frames:
        if engine.input_shape[1:] != ["height", "width", 3]:
            raise EngineError(
                f"{model.path.name}: frame input shape {engine.input_shape}; [N, height, width, 3] expected"
            )
    elif engine.input_shape[1:] != [3, spec.height, spec.width]:
        raise EngineError(
            f"{model.path.name}: input shape {engine.input_shape} does not match the manifest's "
            f"{['N', 3, spec.height, spec.width]}"
        )
    out_shape = engine.output_shapes[0]
    expected_out = [model.manifest.num_anchors, 5 + model.manifest.num_classes]
    if out_shape[1:] != expected_out:
        raise EngineError(
            f"{model.path.name}: output shape {out_shape} does not match the manifest's {['N'] + expected_out}"
        )
