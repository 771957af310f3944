"""Results modes: which result messages go upstream, to cut IoT Hub message count."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from edgevision.publish.messages import counts_message, summary_message

ResultsMode = Literal["every_frame", "on_change", "summary", "analytics_only"]


@dataclass
class _CameraState:
    labels: tuple[str, ...] | None = None
    sent_at: float = 0.0
    # summary mode
    window_start: float | None = None
    window_started_at: float = 0.0
    frames: int = 0
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    frames_with: collections.Counter[str] = field(default_factory=collections.Counter)
    peak: dict[str, int] = field(default_factory=dict)
    last: dict[str, Any] | None = None


class ResultsReducer:
    """Decides which result messages go upstream.

    every_frame: all of them. on_change: a camera's result when the set of labels in view
    differs from the last one sent, or `heartbeat_s` after it. summary: per camera, counts per
    label over `summary_interval_s`, one message each interval (with the camera's zone and line
    counts, if it has any). analytics_only: no result at all; per camera with zones or lines,
    its counts each `summary_interval_s`. Analytics events go on the `events` output in every mode.
    """

    def __init__(
        self,
        mode: ResultsMode,
        heartbeat_s: float,
        summary_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self.heartbeat_s = heartbeat_s
        self.summary_interval_s = summary_interval_s
        self._clock = clock
        self._cameras: dict[str, _CameraState] = {}

    def offer(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Messages to send now because of this result (possibly none)."""
        if self.mode == "every_frame":
            return [message]
        now = self._clock()
        if self.mode == "analytics_only":
            state = self._cameras.setdefault(message["camera"], _CameraState())
            if "counts" in message:
                self._accumulate(state, message, now)
            return self.due(now)
        state = self._cameras.setdefault(message["camera"], _CameraState())
        if self.mode == "on_change":
            labels = tuple(sorted({d["label"] for d in message["detections"]}))
            if state.labels is None or labels != state.labels:
                trigger = "first" if state.labels is None else "change"
            elif now - state.sent_at >= self.heartbeat_s:
                trigger = "heartbeat"
            else:
                return []
            state.labels, state.sent_at = labels, now
            return [{**message, "trigger": trigger}]
        self._accumulate(state, message, now)
        return self.due(now)

    def _accumulate(self, state: _CameraState, message: dict[str, Any], now: float) -> None:
        if state.window_start is None:
            state.window_start, state.window_started_at = now, time.time()
        state.frames += 1
        per_frame = collections.Counter(d["label"] for d in message["detections"])
        state.counts.update(per_frame)
        state.frames_with.update(per_frame.keys())
        for label, count in per_frame.items():
            state.peak[label] = max(state.peak.get(label, 0), count)
        state.last = message

    def due(self, now: float | None = None) -> list[dict[str, Any]]:
        """Summaries (or counts) whose interval has ended (summary and analytics_only modes)."""
        if self.mode not in ("summary", "analytics_only"):
            return []
        now = self._clock() if now is None else now
        return [
            self._summary(camera, state)
            for camera, state in self._cameras.items()
            if state.window_start is not None and now - state.window_start >= self.summary_interval_s
        ]

    def flush(self) -> list[dict[str, Any]]:
        """Summaries (or counts) of unfinished intervals (at shutdown)."""
        if self.mode not in ("summary", "analytics_only"):
            return []
        return [self._summary(camera, state) for camera, state in self._cameras.items() if state.frames]

    def _summary(self, camera: str, state: _CameraState) -> dict[str, Any]:
        if self.mode == "analytics_only":
            counts = (state.last or {}).get("counts") or {}
            message = counts_message(
                camera=camera, started_at=state.window_started_at, frames=state.frames, counts=counts
            )
            self._cameras[camera] = _CameraState()
            return message
        labels = {
            label: {"detections": n, "frames": state.frames_with[label], "max_per_frame": state.peak[label]}
            for label, n in sorted(state.counts.items())
        }
        message = summary_message(
            camera=camera, started_at=state.window_started_at, frames=state.frames, labels=labels, last=state.last
        )
        self._cameras[camera] = _CameraState(labels=state.labels, sent_at=state.sent_at)
        return message
