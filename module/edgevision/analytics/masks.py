"""Privacy masks: polygons blacked out in every image that leaves the module, and the
detections inside them dropped where a mask asks for it."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from edgevision.config.analytics import MaskConfig
from edgevision.geometry import anchor_points, inside, parse_points, to_pixels


class Masks:
    """One camera's masks; the raster for a frame size is made once and kept."""

    def __init__(self, masks: Mapping[str, MaskConfig]) -> None:
        self.configs = dict(masks)
        self._polygons = {name: parse_points(m.polygon, least=3) for name, m in masks.items()}
        self._rasters: dict[tuple[int, int], np.ndarray] = {}

    def __bool__(self) -> bool:
        return bool(self._polygons)

    def raster(self, height: int, width: int) -> np.ndarray:
        """uint8 (height, width): 255 inside any mask."""
        key = (height, width)
        raster = self._rasters.get(key)
        if raster is None:
            raster = np.zeros((height, width), np.uint8)
            for polygon in self._polygons.values():
                cv2.fillPoly(raster, [to_pixels(polygon, width, height)], 255)
            if len(self._rasters) > 8:  # a camera whose size keeps changing: keep a few
                self._rasters.clear()
            self._rasters[key] = raster
        return raster

    def apply(self, image: np.ndarray) -> None:
        """Black out the masks in place (the last step before an image is encoded)."""
        if self._polygons:
            image[self.raster(*image.shape[:2]) > 0] = 0

    def keep(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray | None:
        """Which detections survive the masks that drop them (None: all do)."""
        dropping = [(self._polygons[name], m) for name, m in self.configs.items() if m.drop_detections]
        if not dropping or len(boxes) == 0:
            return None
        keep = np.ones(len(boxes), dtype=bool)
        for polygon, config in dropping:
            keep &= ~inside(anchor_points(boxes, config.anchor, width, height), polygon)
        return keep
