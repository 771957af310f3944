"""Zones, lines and masks in their compact form (module twins hold no arrays), and the tests on
them: which point of a box is tested, inside a polygon, which side of a line.

A polygon is a string of normalised `x,y` points separated by spaces, e.g.
`"0.1,0.5 0.6,0.5 0.6,1 0.1,1"`; a line is two such points. Coordinates are fractions of the
frame's width and height, so one definition holds for any resolution.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Anchor = Literal["bottom_center", "center", "top_center", "bottom_left", "bottom_right"]
ANCHORS: tuple[str, ...] = ("bottom_center", "center", "top_center", "bottom_left", "bottom_right")
MAX_POINTS = 64


def parse_points(text: str, least: int, most: int = MAX_POINTS) -> np.ndarray:
    """`"x,y x,y ..."` -> (n, 2) float64 in [0, 1]; ValueError saying what is wrong."""
    if not isinstance(text, str) or len(text) > 4096:
        raise ValueError("points: a string of normalised x,y pairs separated by spaces")
    pairs = text.replace(";", " ").split()
    if not least <= len(pairs) <= most:
        raise ValueError(f"{len(pairs)} point(s); {least} to {most} expected, e.g. '0.1,0.5 0.9,0.5'")
    points = []
    for pair in pairs:
        parts = pair.split(",")
        try:
            x, y = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"point {pair!r}: two numbers x,y expected") from None
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"point {pair!r}: coordinates are fractions of the frame, 0 to 1")
        points.append((x, y))
    array = np.asarray(points, dtype=np.float64)
    if least >= 3 and abs(_area(array)) < 1e-6:
        raise ValueError("the polygon has no area")
    if least == 2 and np.allclose(array[0], array[1]):
        raise ValueError("the line's two points are the same")
    return array


def _area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def anchor_points(boxes: np.ndarray, anchor: str, width: int, height: int) -> np.ndarray:
    """(n, 2) normalised points of (n, 4) x1, y1, x2, y2 boxes in frame pixels."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    cx = (x1 + x2) / 2
    if anchor == "center":
        points = np.stack([cx, (y1 + y2) / 2], axis=1)
    elif anchor == "top_center":
        points = np.stack([cx, y1], axis=1)
    elif anchor == "bottom_left":
        points = np.stack([x1, y2], axis=1)
    elif anchor == "bottom_right":
        points = np.stack([x2, y2], axis=1)
    else:
        points = np.stack([cx, y2], axis=1)
    return points / np.asarray([width, height], dtype=np.float64)


def edges(polygon: np.ndarray) -> tuple[np.ndarray, ...]:
    """A polygon's edges (x1, y1, x2, y2 arrays): what `inside` needs, made once per polygon."""
    x1, y1 = polygon[:, 0], polygon[:, 1]
    return x1, y1, np.roll(x1, -1), np.roll(y1, -1)


def inside(points: np.ndarray, polygon: np.ndarray | tuple[np.ndarray, ...]) -> np.ndarray:
    """Which points lie inside the polygon (even-odd rule), vectorised over points and edges;
    `polygon` may be its `edges`."""
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    x1, y1, x2, y2 = polygon if isinstance(polygon, tuple) else edges(polygon)
    px, py = points[:, 0:1], points[:, 1:2]
    straddles = (y1 > py) != (y2 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
    return np.count_nonzero(straddles & (px < crossing_x), axis=1) % 2 == 1


def distance_px(points: np.ndarray, line: np.ndarray, width: int, height: int) -> np.ndarray:
    """Signed distance in pixels of normalised points from the (infinite) line: positive on the
    side the line's direction turns to clockwise on screen (below a line drawn left to right)."""
    scale = np.asarray([width, height], dtype=np.float64)
    (ax, ay), (bx, by) = line * scale
    length = max(float(np.hypot(bx - ax, by - ay)), 1e-9)
    px, py = points[:, 0] * scale[0], points[:, 1] * scale[1]
    return ((bx - ax) * (py - ay) - (by - ay) * (px - ax)) / length


def segment_distance(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(n,) distance of each point to the nearest of the segments (starts[k], ends[k]), all in
    the same (pixel) units."""
    if len(points) == 0 or len(starts) == 0:
        return np.full(len(points), np.inf)
    direction = ends - starts  # (m, 2)
    length2 = np.maximum((direction**2).sum(axis=1), 1e-12)
    relative = points[:, None, :] - starts[None, :, :]  # (n, m, 2)
    t = np.clip((relative * direction[None]).sum(axis=2) / length2[None], 0.0, 1.0)
    nearest = starts[None] + t[..., None] * direction[None]
    return np.sqrt(((points[:, None, :] - nearest) ** 2).sum(axis=2)).min(axis=1)


def crosses_segment(start: tuple[float, float], end: tuple[float, float], line: np.ndarray) -> bool:
    """Whether the path from `start` to `end` (normalised points on either side of the line)
    passes through the line's segment itself, not beside one of its ends."""
    (ax, ay), (bx, by) = line.tolist()
    rx, ry = end[0] - start[0], end[1] - start[1]
    sx, sy = bx - ax, by - ay
    denominator = rx * sy - ry * sx
    if abs(denominator) < 1e-12:
        return False
    qx, qy = ax - start[0], ay - start[1]
    u = (qx * ry - qy * rx) / denominator  # where on the line's segment, 0..1
    return -1e-9 <= u <= 1 + 1e-9


def to_pixels(points: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.round(points * np.asarray([width, height])).astype(np.int32)
