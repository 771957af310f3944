"""Results modes that cut IoT Hub message count, and the size guard for the 256 KB limit."""

from __future__ import annotations

import collections
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from edgevision.metrics import iso_time
from edgevision.publish.sink import encode

SUMMARY_SCHEMA = "edgevision.summary/1"
# IoT Hub refuses device messages over 256 KB; the SDK counts the body plus the Python sizes of
# the message's attributes and properties, so bodies stay well below.
MAX_BODY_BYTES = 240 * 1024

ResultsMode = Literal["every_frame", "on_change", "summary"]


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
    label over `summary_interval_s`, one message each interval.
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
        """Summaries whose interval has ended (summary mode only)."""
        if self.mode != "summary":
            return []
        now = self._clock() if now is None else now
        return [
            self._summary(camera, state)
            for camera, state in self._cameras.items()
            if state.window_start is not None and now - state.window_start >= self.summary_interval_s
        ]

    def flush(self) -> list[dict[str, Any]]:
        """Summaries of unfinished intervals (at shutdown)."""
        if self.mode != "summary":
            return []
        return [self._summary(camera, state) for camera, state in self._cameras.items() if state.frames]

    def _summary(self, camera: str, state: _CameraState) -> dict[str, Any]:
        last = state.last or {}
        message = {
            "type": "summary",
            "schema": SUMMARY_SCHEMA,
            "camera": camera,
            "from": iso_time(state.window_started_at),
            "to": iso_time(time.time()),
            "frames": state.frames,
            "labels": {
                label: {"detections": n, "frames": state.frames_with[label], "max_per_frame": state.peak[label]}
                for label, n in sorted(state.counts.items())
            },
            "last_seq": last.get("seq"),
            "model": last.get("model"),
            "provider": last.get("provider"),
        }
        self._cameras[camera] = _CameraState(labels=state.labels, sent_at=state.sent_at)
        return message


def fit(message: dict[str, Any], max_bytes: int = MAX_BODY_BYTES) -> list[dict[str, Any]]:
    """Split a message that would exceed the limit: results by detections, others by summary."""
    return [part for part, _ in fit_encoded(message, max_bytes)]


def fit_encoded(message: dict[str, Any], max_bytes: int = MAX_BODY_BYTES) -> list[tuple[dict[str, Any], bytes]]:
    """`fit`, each part with its UTF-8 JSON; a message that fits is encoded once, not twice."""
    data = encode(message).encode("utf-8")
    if len(data) <= max_bytes:
        return [(message, data)]
    return [(part, encode(part).encode("utf-8")) for part in _split(message, len(data), max_bytes)]


def _split(message: dict[str, Any], size: int, max_bytes: int) -> list[dict[str, Any]]:
    if message.get("type") == "result" and len(message.get("detections", ())) > 1:
        detections = message["detections"]
        half = len(detections) // 2
        parts = fit({**message, "detections": detections[:half]}, max_bytes) + fit(
            {**message, "detections": detections[half:]}, max_bytes
        )
        count = len(parts)
        return [{**part, "part": {"index": i, "count": count}} for i, part in enumerate(parts)]
    # Anything else that large (a metrics document of very many cameras): keep the totals.
    reduced = copy.deepcopy({k: v for k, v in message.items() if k not in ("cameras", "detections", "labels")})
    reduced["truncated"] = {"reason": "over the IoT Hub message size limit", "bytes": size}
    return [reduced]
