"""Zones and lines watching tracks: entries, exits, dwell, directional crossings, and counts.

Each keeps a state per track id. Hysteresis: a change (inside/outside a zone, the side of a
line) counts only once the track has stayed in its new state for `min_frames` frames, so a box
that flickers over an edge counts nothing; a line's side moreover changes only once the anchor is
`band` (of the box's size) beyond it, so swaying on the line counts nothing however slow the
swing; a track lost and found again keeps its id and its state, so it does not count twice.
Times (dwell) are the frames' media times: a file played faster than real time dwells as long.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgevision.config.analytics import LineConfig, ZoneConfig
from edgevision.geometry import anchor_points, crosses_segment, distance_px, edges, inside, parse_points

# (event name, its details) -> published.
Emit = Callable[[str, dict[str, Any]], None]


@dataclass
class Observation:
    """The confirmed tracks of one frame: ids, labels, boxes (frame pixels), and the frame."""

    ids: list[int]
    labels: list[str]
    boxes: np.ndarray
    width: int
    height: int
    at: float  # the frame's media time, seconds (edgevision.sources.frames.Frame.media_time_s)


def _anchors(seen: Observation, labels: set[str] | None, anchor: str) -> tuple[list[int], np.ndarray]:
    """The tracks a zone or line counts (by label), and their anchor points."""
    wanted = [i for i, label in enumerate(seen.labels) if labels is None or label in labels]
    if not wanted:
        return wanted, np.zeros((0, 2))
    return wanted, anchor_points(seen.boxes[wanted], anchor, seen.width, seen.height)


def _box(boxes: np.ndarray, index: int, width: int, height: int) -> dict[str, Any]:
    x1, y1, x2, y2 = (float(v) for v in boxes[index])
    return {
        "box": {"x1": round(x1, 1), "y1": round(y1, 1), "x2": round(x2, 1), "y2": round(y2, 1)},
        "box_norm": [round(x1 / width, 5), round(y1 / height, 5), round(x2 / width, 5), round(y2 / height, 5)],
    }


@dataclass
class _Visit:
    inside: bool = False
    # Frames in a row the track has been seen in the other state; when it changed first.
    pending: int = 0
    pending_since: float = 0.0
    entered_at: float = 0.0
    dwelled: bool = False
    label: str = ""


class ZoneWatch:
    def __init__(self, name: str, config: ZoneConfig) -> None:
        self.name = name
        self.config = config
        self.polygon = parse_points(config.polygon, least=3)
        self._edges = edges(self.polygon)
        self._labels = set(config.labels) if config.labels else None
        self._visits: dict[int, _Visit] = {}
        self.entered: Counter[str] = Counter()
        self.exited: Counter[str] = Counter()

    def occupancy(self) -> Counter[str]:
        return Counter(v.label for v in self._visits.values() if v.inside)

    def observe(self, seen: Observation, emit: Emit) -> None:
        config = self.config
        wanted, points = _anchors(seen, self._labels, config.anchor)
        if not wanted:
            return
        now_inside = inside(points, self._edges).tolist()
        visits, dwell = self._visits, config.dwell_s
        for k, index in enumerate(wanted):
            track, label = seen.ids[index], seen.labels[index]
            visit = visits.get(track)
            if visit is None:
                visit = visits[track] = _Visit(label=label)
            visit.label = label
            if now_inside[k] == visit.inside:
                visit.pending = 0
            else:
                if visit.pending == 0:
                    visit.pending_since = seen.at
                visit.pending += 1
                if visit.pending >= config.min_frames:
                    visit.pending = 0
                    self._change(visit, track, seen, index, emit)
            if visit.inside and not visit.dwelled and dwell is not None and seen.at - visit.entered_at >= dwell:
                visit.dwelled = True
                emit("dwell", self._details(track, label, seen, index, dwell_s=round(seen.at - visit.entered_at, 2)))

    def _change(self, visit: _Visit, track: int, seen: Observation, index: int, emit: Emit) -> None:
        label = visit.label
        if not visit.inside:
            visit.inside, visit.entered_at, visit.dwelled = True, visit.pending_since, False
            self.entered[label] += 1
            emit("zone_enter", self._details(track, label, seen, index))
        else:
            visit.inside = False
            self.exited[label] += 1
            dwell = round(visit.pending_since - visit.entered_at, 2)
            emit("zone_exit", self._details(track, label, seen, index, dwell_s=dwell))

    def ended(self, track: int, at: float, emit: Emit) -> None:
        """A track given up: if it was inside, it has left (its occupancy ends)."""
        visit = self._visits.pop(track, None)
        if visit is not None and visit.inside:
            self.exited[visit.label] += 1
            emit(
                "zone_exit",
                {
                    "zone": self.name,
                    "track_id": track,
                    "label": visit.label,
                    "dwell_s": round(at - visit.entered_at, 2),
                    "lost": True,
                },
            )

    def _details(self, track: int, label: str, seen: Observation, index: int, **extra: Any) -> dict[str, Any]:
        return {
            "zone": self.name,
            "track_id": track,
            "label": label,
            **_box(seen.boxes, index, seen.width, seen.height),
            **extra,
        }

    def counts(self) -> dict[str, Any]:
        return {"occupancy": dict(self.occupancy()), "entered": dict(self.entered), "exited": dict(self.exited)}


# Given-up tracks' sides a line keeps for new tracks to take, at most.
_MAX_ORPHANS = 64


@dataclass
class _Orphan:
    side: int
    last_point: tuple[float, float]
    at: float  # media time it was given up


@dataclass
class _Side:
    side: int = 0  # 0: not settled yet (first seen within the band)
    pending: int = 0
    # The last point on the settled side, and the first on the other one: the crossing path.
    last_point: tuple[float, float] = (0.0, 0.0)
    first_other: tuple[float, float] = (0.0, 0.0)


class LineWatch:
    def __init__(self, name: str, config: LineConfig) -> None:
        self.name = name
        self.config = config
        self.line = parse_points(config.points, least=2, most=2)
        self._labels = set(config.labels) if config.labels else None
        self._sides: dict[int, _Side] = {}
        self._orphans: list[_Orphan] = []
        self.crossed: dict[str, Counter[str]] = {"in": Counter(), "out": Counter()}

    def _banded_sides(self, seen: Observation, wanted: list[int], points: np.ndarray) -> list[int]:
        """+1 or -1 per anchor beyond the band on that side, 0 within it."""
        distance = distance_px(points, self.line, seen.width, seen.height)
        boxes = seen.boxes[wanted]
        size = np.sqrt(np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 0.0))
        margin = self.config.band * size
        return np.where(distance > margin, 1, np.where(distance < -margin, -1, 0)).tolist()

    def observe(self, seen: Observation, emit: Emit) -> None:
        config = self.config
        wanted, points = _anchors(seen, self._labels, config.anchor)
        if not wanted:
            return
        sides = self._banded_sides(seen, wanted, points)
        coordinates = points.tolist()
        states = self._sides
        for k, index in enumerate(wanted):
            track, now = seen.ids[index], sides[k]
            point = (coordinates[k][0], coordinates[k][1])
            state = states.get(track)
            if state is None:
                state = states[track] = self._adopt(seen, index, point) or _Side(side=now, last_point=point)
                if state.side == now or now == 0:
                    continue
            if now == 0:
                # Within the band: no side yet, so nothing settles and nothing is undone.
                continue
            if state.side == 0:
                state.side, state.last_point = now, point
                continue
            if now == state.side:
                state.pending, state.last_point = 0, point
                continue
            if state.pending == 0:
                state.first_other = point
            state.pending += 1
            if state.pending < config.min_frames:
                continue
            # Settled on the other side: a crossing, if the path went through the segment itself.
            through = crosses_segment(state.last_point, state.first_other, self.line)
            state.side, state.pending, state.last_point = now, 0, point
            if through:
                direction = "in" if now > 0 else "out"
                label = seen.labels[index]
                self.crossed[direction][label] += 1
                box = _box(seen.boxes, index, seen.width, seen.height)
                emit(
                    "line_cross", {"line": self.name, "direction": direction, "track_id": track, "label": label, **box}
                )

    def _adopt(self, seen: Observation, index: int, point: tuple[float, float]) -> _Side | None:
        """The side of the nearest track given up lately near this new one's first point, if any."""
        if not self._orphans or self.config.inherit_s <= 0:
            return None
        self._orphans = [o for o in self._orphans if seen.at - o.at <= self.config.inherit_s]
        x1, y1, x2, y2 = (float(v) for v in seen.boxes[index])
        reach = max((x2 - x1) * (y2 - y1), 0.0) ** 0.5
        best, nearest = None, reach
        for orphan in self._orphans:
            dx = (orphan.last_point[0] - point[0]) * seen.width
            dy = (orphan.last_point[1] - point[1]) * seen.height
            distance = (dx * dx + dy * dy) ** 0.5
            if distance <= nearest:
                best, nearest = orphan, distance
        if best is None:
            return None
        self._orphans.remove(best)
        return _Side(side=best.side, last_point=best.last_point)

    def ended(self, track: int, at: float, emit: Emit) -> None:
        state = self._sides.pop(track, None)
        if state is not None and state.side != 0 and self.config.inherit_s > 0:
            self._orphans.append(_Orphan(state.side, state.last_point, at))
            del self._orphans[:-_MAX_ORPHANS]

    def counts(self) -> dict[str, Any]:
        return {direction: dict(counter) for direction, counter in self.crossed.items()}
