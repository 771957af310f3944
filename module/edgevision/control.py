"""The narrow interface a running module offers its endpoints (HTTP, Prometheus, direct methods).

Endpoints depend on this protocol alone, never on the pipeline behind it, so each is tested
with a stand-in and the module can change inside without touching them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class PreviewImage:
    """A camera's newest frame, with the newest detections drawn, as a JPEG."""

    camera: str
    seq: int
    captured_at: float
    width: int
    height: int
    # The frame the drawn detections belong to (the newest published one), if any.
    detections_seq: int | None
    jpeg: bytes


@dataclass(frozen=True)
class Probe:
    """A health or readiness answer: ok, and why."""

    ok: bool
    body: dict[str, Any]


class Control(Protocol):
    """What endpoints may ask of a running module. Calls that need the pipeline raise
    edgevision.errors.NotReady while it is starting."""

    def health(self) -> Probe:
        """Liveness: the supervisor loop is turning."""
        ...

    def readiness(self) -> Probe:
        """Ready: a model is loaded and a camera produces frames."""
        ...

    def status(self) -> dict[str, Any]: ...

    def metrics_snapshot(self) -> dict[str, Any]:
        """The figures of the metrics message, plus `latency_histograms` per camera; reading it
        does not shorten the interval of the periodic metrics message."""
        ...

    def camera_ids(self) -> list[str]:
        """The cameras running now."""
        ...

    def snapshot(self, camera: str, max_bytes: int) -> PreviewImage | None:
        """The newest frame of a running camera (None: none yet); KeyError for an unknown camera."""
        ...

    def latest_evidence(self, camera: str) -> dict[str, Any] | None:
        """The camera's newest snapshot and clip (by kind): where they are, delivered or not."""
        ...

    def restart_camera(self, camera: str) -> None:
        """Reopen a camera now; KeyError for an unknown camera."""
        ...

    def apply_patch(self, patch: Any, source: str) -> dict[str, list[str]]:
        """Apply a full or partial configuration; ConfigError (nothing changed) if it is invalid."""
        ...

    def score(self, image: np.ndarray) -> dict[str, Any]:
        """Detections for one BGR image, through the running engine (the `detect` document)."""
        ...
