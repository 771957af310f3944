"""Small result messages for tests of what happens to messages after the pipeline."""

from __future__ import annotations

from typing import Any


def result(seq: int, *labels: str, camera: str = "gate") -> dict[str, Any]:
    """A result message of one camera with one detection per label."""
    return {
        "type": "result",
        "camera": camera,
        "seq": seq,
        "model": "yolox-nano",
        "provider": "CPU",
        "detections": [{"label": label, "score": 0.9} for label in labels],
    }
