"""A constant-velocity Kalman filter over boxes, for many tracks at once.

State per track: centre x, centre y, width, height and their velocities (per frame). Noise
scales with the box size, as in SORT and ByteTrack, so near and far objects are treated alike.

Each of the four components moves on its own (the transition, the noise and the measurement
never mix them), so a track's 8 x 8 covariance is four independent 2 x 2 ones: kept as arrays of
(position variance, covariance, velocity variance), every step is elementwise over all tracks,
exactly the full filter's arithmetic with none of its zeros.
"""

from __future__ import annotations

import numpy as np

# Position and velocity noise per frame, as fractions of the box size.
_POSITION_STD = 1.0 / 20
_VELOCITY_STD = 1.0 / 160


def _scale(boxes: np.ndarray) -> np.ndarray:
    """(n, 4) per-component scale (w, h, w, h) of cx, cy, w, h boxes."""
    return boxes[:, [2, 3, 2, 3]]


def initiate(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(means (n, 8): position then velocity, covariances (n, 3, 4): pp, pv, vv per component)."""
    n = len(boxes)
    mean = np.zeros((n, 8))
    mean[:, :4] = boxes
    scale = _scale(boxes)
    covariance = np.zeros((n, 3, 4))
    covariance[:, 0] = (2 * _POSITION_STD * scale) ** 2
    covariance[:, 2] = (10 * _VELOCITY_STD * scale) ** 2
    return mean, covariance


def predict(mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One frame ahead, for every track."""
    if len(mean) == 0:
        return mean, covariance
    scale = _scale(mean[:, :4])
    pp, pv, vv = covariance[:, 0], covariance[:, 1], covariance[:, 2]
    mean = mean.copy()
    mean[:, :4] += mean[:, 4:]
    predicted = np.empty_like(covariance)
    predicted[:, 0] = pp + 2 * pv + vv + (_POSITION_STD * scale) ** 2
    predicted[:, 1] = pv + vv
    predicted[:, 2] = vv + (_VELOCITY_STD * scale) ** 2
    return mean, predicted


def update(mean: np.ndarray, covariance: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correct tracks with their matched cx, cy, w, h boxes (row for row)."""
    if len(mean) == 0:
        return mean, covariance
    noise = (_POSITION_STD * _scale(mean[:, :4])) ** 2
    pp, pv, vv = covariance[:, 0], covariance[:, 1], covariance[:, 2]
    gain_p = pp / (pp + noise)
    gain_v = pv / (pp + noise)
    innovation = boxes - mean[:, :4]
    mean = mean.copy()
    mean[:, :4] += gain_p * innovation
    mean[:, 4:] += gain_v * innovation
    corrected = np.empty_like(covariance)
    corrected[:, 0] = pp - gain_p * pp
    corrected[:, 1] = pv - gain_p * pv
    corrected[:, 2] = vv - gain_v * pv
    return mean, corrected


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    return np.concatenate([boxes[:, 0:2] + wh / 2, wh], axis=1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    half = boxes[:, 2:4] / 2
    return np.concatenate([boxes[:, 0:2] - half, boxes[:, 0:2] + half], axis=1)
