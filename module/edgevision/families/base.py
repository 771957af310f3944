"""What a detector family is: how to recognise its exports, check them, and decode their output.

Each family lives in its own module with its own settings (a pydantic model whose `type` names
the family) and its decode step; edgevision.families picks one by name or by looking at a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from pydantic import BaseModel

from edgevision.detections import Detections
from edgevision.inference.engine import Engine
from edgevision.models.manifest import ModelManifest
from edgevision.preprocess import LetterboxMeta

Shape = Sequence[int | str | None]


class Decoder(Protocol):
    """Raw outputs of a batch -> detections per frame, in frame pixels. Thresholds may change
    between batches (a live configuration change); each assignment is atomic."""

    score_threshold: float
    nms_iou: float

    def __call__(self, outputs: Sequence[np.ndarray], metas: Sequence[LetterboxMeta]) -> list[Detections]: ...


class Family(Protocol):
    name: str

    def settings(self, manifest: ModelManifest) -> BaseModel:
        """This family's settings for a model, from its manifest."""
        ...

    def recognise(self, input_shape: Shape, output_shapes: Sequence[Shape], manifest: ModelManifest) -> str | None:
        """Why a model with these shapes is of this family, or None if it is not."""
        ...

    def check(self, engine: Engine, manifest: ModelManifest, file_name: str) -> None:
        """Raise EngineError at load, not per frame, when the graph does not fit the manifest."""
        ...

    def decoder(self, manifest: ModelManifest, score_threshold: float, nms_iou: float) -> Decoder: ...
