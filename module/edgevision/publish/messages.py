"""The JSON messages the module sends: one per processed frame, and metrics snapshots."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from edgevision.metrics import iso_time
from edgevision.results import Detections

RESULT_SCHEMA = "edgevision.result/1"


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
) -> dict[str, Any]:
    """One frame's result; `detections` has the shape `edgevision detect` prints."""
    return {
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
        "detections": detections.to_json(labels),
    }
