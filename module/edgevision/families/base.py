"""What a detector family is: how to recognise its exports, check them, and decode their output.

Each family lives in its own module (its layout, preprocessing and decoder); edgevision.families
picks one by name or by looking at a model file: its metadata first, its shapes second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edgevision.detections import Detections
from edgevision.errors import BuildError
from edgevision.families.nms import batched_nms
from edgevision.models.manifest import InputSpec, ModelManifest
from edgevision.models.onnx_facts import ModelFacts
from edgevision.preprocess import LetterboxMeta


class ContractError(BuildError):
    """A model file does not fit its family's contract (the manifest's input size, output layout,
    class count): said at load, never found per frame."""


class Decoder(Protocol):
    """Raw outputs of a batch -> detections per frame, in frame pixels. Thresholds may change
    between batches (a live configuration change); each assignment is atomic."""

    score_threshold: float
    nms_iou: float

    def __call__(self, outputs: Sequence[np.ndarray], metas: Sequence[LetterboxMeta]) -> list[Detections]: ...


class Thresholds:
    """What every decoder keeps: its class count, the thresholds (changed live by the pipeline:
    each assignment is atomic) and how many detections a frame may have."""

    def __init__(
        self, num_classes: int, score_threshold: float = 0.3, nms_iou: float = 0.45, max_detections: int = 300
    ) -> None:
        self.num_classes = num_classes
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.max_detections = max_detections

    def suppress(
        self,
        top_left: np.ndarray,
        size: np.ndarray,
        scores: np.ndarray,
        class_ids: np.ndarray,
        frame_idx: np.ndarray,
        metas: Sequence[LetterboxMeta],
    ) -> list[Detections]:
        """Class-aware NMS over a batch's candidates (boxes in frame pixels), with these thresholds."""
        return batched_nms(
            top_left,
            size,
            scores,
            class_ids,
            frame_idx,
            metas,
            self.num_classes,
            self.score_threshold,
            self.nms_iou,
            self.max_detections,
        )


@dataclass(frozen=True)
class Recognition:
    """A family's reading of a model file: enough to run it without a hand-written manifest."""

    family: str
    # Why: which shapes and metadata keys decided it.
    reason: str
    input: InputSpec
    class_count: int
    # Class names from the file's own metadata, if it has them.
    labels: tuple[str, ...] | None = None
    layout: str | None = None
    strides: tuple[int, ...] = (8, 16, 32)


class Family(Protocol):
    name: str
    # Whether a fixed batch-1 export can be rewritten to take any batch (else it runs at batch 1).
    rewrites_batch: bool

    def recognise(self, facts: ModelFacts) -> Recognition | None:
        """This family's reading of the file, or None if its layout does not fit."""
        ...

    def check(self, facts: ModelFacts, manifest: ModelManifest, file_name: str) -> None:
        """Raise ContractError at load, not per frame, when the file the engine runs (`facts`:
        its inputs and outputs, open output sizes as the engine measured them) does not fit the
        manifest."""
        ...

    def extra_inputs(self, manifest: ModelManifest, names: Sequence[str]) -> dict[str, np.ndarray]:
        """Values for inputs other than the image, one row per frame (the same for every frame)."""
        ...

    def decoder(self, manifest: ModelManifest, score_threshold: float, nms_iou: float) -> Decoder: ...
