"""A cheap change measure per camera: does anything move in this frame?

Each frame is reduced to a small grey copy (160 px wide: nearest-neighbour to twice that, then
averaged 2 x 2, which damps single-pixel noise, at under a tenth of a millisecond at 1080p),
compared with a slowly adapting background. Three things keep it from waking the detector for
nothing:
- lighting: the difference of the two copies' mean brightness is taken out first, so a light
  switched on or a cloud moves the whole frame and not a region;
- noise: the threshold is the larger of `motion_threshold` and six times the median difference
  of recent frames, so sensor grain, rain and compression raise it by themselves;
- privacy masks: their pixels are never compared (motion there wakes nothing).
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

from edgevision.analytics.masks import Masks

WIDTH = 160
# How fast the background follows the scene (per frame): a parked car is part of it after
# about 2 s at 15 fps; a walker crossing is not.
_LEARN = 0.03
_NOISE_FRAMES = 30


class MotionMeter:
    """Not thread-safe: fed one camera's frames in order."""

    def __init__(self, threshold: int, area: float, masks: Masks) -> None:
        self.threshold = threshold
        self.area = area
        self._masks = masks
        self._background: np.ndarray | None = None
        self._keep: np.ndarray | None = None  # 1 where pixels are compared
        self._noise: deque[float] = deque(maxlen=_NOISE_FRAMES)
        # Working buffers, made once per frame size (nothing is allocated per frame).
        self._shape: tuple[int, ...] | None = None
        self._coarse = self._small_bgr = self._grey8 = self._grey = self._diff = self._shifted = np.empty(0)

    def _small(self, image: np.ndarray) -> np.ndarray:
        if image.shape != self._shape:
            height, width = image.shape[:2]
            small_h = max(1, round(WIDTH * height / max(width, 1)))
            channels = image.shape[2:]
            self._coarse = np.empty((small_h * 2, WIDTH * 2, *channels), np.uint8)
            self._small_bgr = np.empty((small_h, WIDTH, *channels), np.uint8)
            self._grey8 = np.empty((small_h, WIDTH), np.uint8)
            self._grey = np.empty((small_h, WIDTH), np.float32)
            self._diff = np.empty_like(self._grey)
            self._shifted = np.empty_like(self._grey)
            self._shape = image.shape
        height, width = self._small_bgr.shape[:2]
        cv2.resize(image, (width * 2, height * 2), dst=self._coarse, interpolation=cv2.INTER_NEAREST)
        cv2.resize(self._coarse, (width, height), dst=self._small_bgr, interpolation=cv2.INTER_AREA)
        if self._small_bgr.ndim == 3:
            cv2.cvtColor(self._small_bgr, cv2.COLOR_BGR2GRAY, dst=self._grey8)
        else:
            self._grey8[...] = self._small_bgr
        self._grey[...] = self._grey8
        return self._grey

    def moved(self, image: np.ndarray) -> bool:
        """Whether this frame differs from the background enough to count as motion. The first
        frame (and the first after the frame size changes) counts as motion."""
        grey = self._small(image)
        if self._background is None or self._background.shape != grey.shape:
            self._background = grey.copy()
            raster = self._masks.raster(*grey.shape) if self._masks else None
            self._keep = None if raster is None else (raster == 0).astype(np.float32)
            self._noise.clear()
            return True
        diff = self._diff
        # Lighting: the change of mean brightness is the whole frame's, not an object's.
        shift = float(grey.mean() - self._background.mean())
        if abs(shift) > 1.0:
            np.subtract(grey, shift, out=self._shifted)
            cv2.absdiff(self._shifted, self._background, diff)
        else:
            cv2.absdiff(grey, self._background, diff)
        if self._keep is not None:
            diff *= self._keep
        noise = float(np.median(diff[::3, ::3]))  # a ninth of the pixels tell the noise as well
        self._noise.append(noise)
        threshold = max(self.threshold, 6.0 * float(np.median(self._noise)))
        changed = float(np.count_nonzero(diff > threshold)) / diff.size
        cv2.accumulateWeighted(grey, self._background, _LEARN)
        return changed >= self.area
