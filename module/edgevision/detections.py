"""Detections of one frame, and their JSON shape (shared by `detect` and the result messages)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Detections of one frame as arrays, sorted by score, boxes in frame pixels (x1, y1, x2, y2)."""

    boxes: np.ndarray  # (n, 4) float32
    scores: np.ndarray  # (n,) float32
    class_ids: np.ndarray  # (n,) int64
    width: int
    height: int

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls, width: int, height: int) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), width, height)

    def labels(self, names: Sequence[str]) -> list[str]:
        return [names[i] for i in self.class_ids]

    def to_json(self, names: Sequence[str], track_ids: Sequence[int | None] | None = None) -> list[dict[str, Any]]:
        """The `detections` list: label, class_id, score, box in pixels, box_norm in [0, 1], and
        with tracking on, `track_id` (None until the detection's track is confirmed)."""
        norm = self.boxes / np.array([self.width, self.height, self.width, self.height], dtype=np.float32)
        out = []
        for index, (box, box_norm, score, cid) in enumerate(
            zip(self.boxes.tolist(), norm.tolist(), self.scores.tolist(), self.class_ids.tolist(), strict=True)
        ):
            item = {
                "label": names[cid],
                "class_id": cid,
                "score": round(score, 4),
                "box": {k: round(v, 1) for k, v in zip(("x1", "y1", "x2", "y2"), box, strict=True)},
                "box_norm": [round(v, 5) for v in box_norm],
            }
            if track_ids is not None:
                item["track_id"] = track_ids[index]
            out.append(item)
        return out
