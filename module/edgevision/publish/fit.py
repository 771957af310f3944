"""The IoT Hub size guard: a message over the 256 KB device-message limit is split, never sent to fail."""

from __future__ import annotations

import copy
from typing import Any

from edgevision.publish.messages import encode

# IoT Hub refuses device messages over 256 KB; the SDK counts the body plus the Python sizes of
# the message's attributes and properties, so bodies stay well below.
MAX_BODY_BYTES = 240 * 1024


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
