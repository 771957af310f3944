"""What the doctor's checks share: the model, the frames, the detectors they load (one per set of
options), and how a check says it failed or does not apply."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgevision.accel.discover import AcceleratorInfo
from edgevision.detector.load import LoadedDetector
from edgevision.detector.loader import DetectorLoader
from edgevision.doctor.compare import Outputs
from edgevision.inference.options import EngineConfig
from edgevision.models.store import ResolvedModel


class Failed(Exception):
    pass


class Skipped(Exception):
    pass


@dataclass
class Context:
    model: ResolvedModel
    frames: list[np.ndarray]
    max_batch: int
    accelerator: AcceleratorInfo
    # Why CUDA / TensorRT cannot be used here (None: they can).
    cuda_unusable: str | None
    tensorrt_unusable: str | None
    skip_tensorrt: bool = False
    reference: Outputs | None = None
    loader: DetectorLoader = field(default_factory=DetectorLoader)
    detectors: dict[tuple[Any, ...], LoadedDetector] = field(default_factory=dict)

    def detector(self, provider: str, max_batch: int = 1, in_graph: bool = False, **options: Any) -> LoadedDetector:
        key = (provider, max_batch, in_graph, tuple(sorted(options.items())))
        if key not in self.detectors:
            config = EngineConfig(provider=provider, strict=provider != "cpu", allow_spinning=False, **options)
            self.detectors[key] = self.loader.load(self.model, config, max_batch, in_graph)
        return self.detectors[key]

    def batched(self, provider: str) -> LoadedDetector:
        """The detector at `max_batch`, for the checks of batching (a GPU check needs the GPU);
        Skipped for a model that runs one batch size only."""
        if provider != "cpu":
            self.need_gpu()
        detector = self.detector(provider, max_batch=self.max_batch)
        if not detector.engine.dynamic_batch:
            raise Skipped(detector.engine.status.declined.get("max_batch") or "the model has a fixed batch")
        return detector

    def need_gpu(self) -> None:
        if self.cuda_unusable:
            raise Skipped(self.cuda_unusable)


@dataclass(frozen=True)
class Tolerance:
    """A comparison's tolerance as the model's family reads it: YOLOX's raw outputs are in units
    the raw tolerance was measured in (grid offsets, sigmoid scores); other families' boxes are in
    input pixels, where the detections decide and the raw difference is only reported."""

    raw: float
    iou: float

    def describe(self, family: str) -> str:
        if family == "yolox":
            return f"raw |diff| <= {self.raw}; detections IoU >= {self.iou}"
        return f"detections IoU >= {self.iou} (raw outputs reported)"


@dataclass(frozen=True)
class Check:
    name: str
    provider: str | None
    tolerance: str | Tolerance | None
    run: Callable[[Context], tuple[str, dict[str, Any]]]
    gpu: bool = False
