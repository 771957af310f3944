"""Whether the detector sees a frame, per camera: every frame, every Nth, or when something moves.

Between detections the tracker carries the boxes (analytics/camera.py `carry`). What the gate
knows of the tracks comes from the analytics of the frames published so far (`Hints`): a track
near a line or a zone's edge is looked at every `edge_interval` frames at least, so no crossing
is left to prediction for long; a moving track every `interval` frames; a still scene not at
all, but every `refresh_s`. Called from the scheduling thread, one camera's frames in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgevision.analytics.masks import Masks
from edgevision.analytics.motion import MotionMeter
from edgevision.config.analytics import DetectionConfig


@dataclass(frozen=True)
class Hints:
    """What the tracks of the latest published frame say about the next ones."""

    active: int = 0  # confirmed tracks seen lately
    moving: bool = False
    near_edge: bool = False


class DetectionGate:
    def __init__(self, config: DetectionConfig, masks: Masks) -> None:
        self.config = config
        self.meter = (
            MotionMeter(config.motion_threshold, config.motion_area, masks) if config.mode == "motion" else None
        )
        # Frames carried since the last detection (None: nothing detected yet), and when it was.
        self._carried: int | None = None
        self._detected_at = 0.0

    def decide(self, image: np.ndarray | None, now: float, hints: Hints) -> bool:
        """Whether this frame goes through the detector (`now`: a monotonic clock)."""
        config = self.config
        if config.mode == "every_frame":
            return True
        # The meter sees every frame, detected or not, so its background stays current.
        moved = self.meter.moved(image) if self.meter is not None and image is not None else True
        if self._carried is None or now - self._detected_at >= config.refresh_s:
            detect = True
        else:
            wait = config.edge_interval if hints.near_edge else config.interval
            due = self._carried + 1 >= wait
            if config.mode == "interval":
                detect = due
            elif not moved and not hints.moving and not hints.near_edge:
                detect = False  # a still scene: nothing to look at
            elif moved and hints.active == 0:
                detect = True  # something moves and no track explains it: look now
            else:
                detect = due
        if detect:
            self._carried, self._detected_at = 0, now
        else:
            self._carried = (self._carried or 0) + 1
        return detect
