"""Every message the module sends: results, metrics snapshots, events and summaries.

Each has a `type` and a versioned `schema`; local sinks and the IoT Hub outputs carry the same
documents.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from edgevision.detections import Detections
from edgevision.redaction import redact_document

RESULT_SCHEMA = "edgevision.result/1"
METRICS_SCHEMA = "edgevision.metrics/1"
EVENT_SCHEMA = "edgevision.event/1"
SUMMARY_SCHEMA = "edgevision.summary/1"
COUNTS_SCHEMA = "edgevision.counts/1"


def iso_time(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(message: Mapping[str, Any]) -> str:
    """Compact JSON, as sinks write it and IoT Hub receives it."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def result_message(
    *,
    camera: str,
    seq: int,
    captured_at: float,
    latency_ms: float,
    detections: Detections,
    labels: Sequence[str],
    model: str,
    provider: str,
    batch_id: int,
    batch_size: int,
    track_ids: Sequence[int | None] | None = None,
    counts: Mapping[str, Any] | None = None,
    media_time_s: float | None = None,
    detected: bool = True,
) -> dict[str, Any]:
    """One frame's result; `detections` has the shape `edgevision detect` prints (with `track_id`
    when the camera tracks), and `counts` the camera's zone and line counts when it has any."""
    message = {
        "type": "result",
        "schema": RESULT_SCHEMA,
        "camera": camera,
        "seq": seq,
        "captured_at": iso_time(captured_at),
        "published_at": iso_time(time.time()),
        "latency_ms": round(latency_ms, 2),
        "model": model,
        "provider": provider,
        "width": detections.width,
        "height": detections.height,
        "batch": {"id": batch_id, "size": batch_size},
        # False: the detector skipped this frame and the boxes are the tracker's predictions.
        "detected": detected,
        "detections": detections.to_json(labels, track_ids),
    }
    if media_time_s is not None:
        # The frame's time in its source (a file's position, a live camera's capture clock).
        message["media_time_s"] = round(media_time_s, 3)
    if counts is not None:
        message["counts"] = counts
    return message


def metrics_message(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """A metrics snapshot (edgevision.metrics) as the `metrics` message."""
    return {"type": "metrics", "schema": METRICS_SCHEMA, "at": iso_time(time.time()), **redact_document(dict(snapshot))}


def event_message(name: str, details: Mapping[str, Any]) -> dict[str, Any]:
    """A lifecycle event: started, stopped, camera state, provider, configuration applied/rejected."""
    details = redact_document(dict(details))  # errors quote camera URIs
    return {"type": "event", "schema": EVENT_SCHEMA, "event": name, "at": iso_time(time.time()), **details}


def summary_message(
    *,
    camera: str,
    started_at: float,
    frames: int,
    labels: Mapping[str, Mapping[str, int]],
    last: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Counts per label over one summary interval of one camera (results mode `summary`)."""
    last = last or {}
    return {
        "type": "summary",
        "schema": SUMMARY_SCHEMA,
        "camera": camera,
        "from": iso_time(started_at),
        "to": iso_time(time.time()),
        "frames": frames,
        "labels": {label: dict(counts) for label, counts in labels.items()},
        "last_seq": last.get("seq"),
        "model": last.get("model"),
        "provider": last.get("provider"),
        **({"counts": last["counts"]} if "counts" in last else {}),
    }


def counts_message(*, camera: str, started_at: float, frames: int, counts: Mapping[str, Any]) -> dict[str, Any]:
    """A camera's zone and line counts (totals since start, and occupancy now) over one interval
    (results mode `analytics_only`): the cheapest useful traffic."""
    return {
        "type": "counts",
        "schema": COUNTS_SCHEMA,
        "camera": camera,
        "from": iso_time(started_at),
        "to": iso_time(time.time()),
        "frames": frames,
        **dict(counts),
    }
