"""A stand-in for the control interface (edgevision.control.Control): endpoints are tested
against it, with no pipeline behind them."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgevision.control import PreviewImage, Probe
from edgevision.errors import ConfigError, NotReady


@dataclass
class StandInControl:
    cameras: list[str] = field(default_factory=lambda: ["front"])
    ready: bool = True
    started: bool = True
    frames: dict[str, list[PreviewImage]] = field(default_factory=dict)
    scored: list[np.ndarray] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    patches: list[tuple[Any, str]] = field(default_factory=list)
    snapshot_calls: int = 0
    # When set, /healthz (hold) or scoring (score_hold) answers only once it is released.
    hold: threading.Event | None = None
    score_hold: threading.Event | None = None

    def _started(self) -> None:
        if not self.started:
            raise NotReady("starting")

    def health(self) -> Probe:
        if self.hold is not None:
            self.hold.wait(10)
        return Probe(self.started, {"status": "ok" if self.started else "starting"})

    def readiness(self) -> Probe:
        return Probe(self.ready, {"ready": self.ready})

    def status(self) -> dict[str, Any]:
        self._started()
        return {"cameras": {c: {"state": "streaming"} for c in self.cameras}}

    def metrics_snapshot(self) -> dict[str, Any]:
        self._started()
        return {
            "provider": "CPUExecutionProvider",
            "cameras": {
                c: {
                    "captured": 10,
                    "inferred": 9,
                    "dropped": 1,
                    "corrupt": 0,
                    "oversize": 0,
                    "dropped_by_reason": {"queue_full": 1},
                    "fps": 4.5,
                    "state": "streaming",
                    "outages": 0,
                }
                for c in self.cameras
            },
            "stages_ms_per_frame_total": {"inference": 12.5, "publish": None},
            "queues": {"publish": 0},
            "provider_switches": 0,
            "twin": "unreachable",
            "latency_histograms": {c: ([("10", 3), ("25", 9), ("+Inf", 9)], 120.0) for c in self.cameras},
        }

    def camera_ids(self) -> list[str]:
        self._started()
        return list(self.cameras)

    def snapshot(self, camera: str, max_bytes: int) -> PreviewImage | None:
        self.snapshot_calls += 1
        if camera not in self.cameras:
            raise KeyError(camera)
        queue = self.frames.get(camera)
        if not queue:
            return None
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def latest_evidence(self, camera: str) -> dict[str, Any] | None:
        return None

    def restart_camera(self, camera: str) -> None:
        if camera not in self.cameras:
            raise KeyError(camera)
        self.restarted.append(camera)

    def apply_patch(self, patch: Any, source: str) -> dict[str, list[str]]:
        self.patches.append((patch, source))
        if "bad" in patch:
            raise ConfigError(["bad: not a field"])
        return {"live": sorted(patch), "restarted": []}

    def score(self, image: np.ndarray) -> dict[str, Any]:
        self._started()
        if self.score_hold is not None:
            self.score_hold.wait(10)
        self.scored.append(image)
        return {"width": image.shape[1], "height": image.shape[0], "detections": []}
