"""One camera's analytics, run on its results in order: masks that drop detections, the tracker,
then its zones and lines, each raising events and keeping counts; and all cameras' together.

Called by the publish stage (one thread, each camera's frames in order); reconfigured live from
another thread, and read by the metrics, status and preview, so each camera's state is locked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgevision.analytics.gate import DetectionGate, Hints
from edgevision.analytics.masks import Masks
from edgevision.analytics.tracker import Track, Tracker
from edgevision.analytics.zones import LineWatch, Observation, ZoneWatch
from edgevision.config.camera import CameraConfig
from edgevision.detections import Detections
from edgevision.geometry import anchor_points, segment_distance
from edgevision.publish.messages import iso_time

log = logging.getLogger(__name__)

# (event name, details) -> the `events` output and the sink.
EmitEvent = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Overlay:
    """What a preview draws for a camera besides its boxes: zones, lines and their counts."""

    zones: dict[str, tuple[np.ndarray, dict[str, int]]]  # name -> (polygon, occupancy by label)
    lines: dict[str, tuple[np.ndarray, dict[str, int]]]  # name -> (points, {"in": n, "out": n})


@dataclass(frozen=True)
class Analysed:
    detections: Detections
    # Per detection, its track's id (None: no confirmed track); None: the camera tracks nothing.
    track_ids: list[int | None] | None
    # The camera's counts, when it has zones or lines (the same object until a count changes).
    counts: dict[str, Any] | None


class CameraAnalytics:
    def __init__(self, camera: CameraConfig, emit: EmitEvent) -> None:
        self.camera_id = camera.id
        self._emit = emit
        self._lock = threading.Lock()
        self._tracker: Tracker | None = None
        self._zones: dict[str, ZoneWatch] = {}
        self._lines: dict[str, LineWatch] = {}
        self.masks = Masks({})
        self._counts: dict[str, Any] | None = None
        self.dropped_by_mask = 0
        self.gate: DetectionGate | None = None
        self._gate_failed = False
        self.gate_masks: Masks | None = None
        # What the tracks said after the latest frame, for the gate (replaced whole, read unlocked).
        self.hints = Hints()
        # Every zone's and line's segments in pixels, per anchor, for the frame size they were made for.
        self._edges: tuple[tuple[int, int], dict[str, tuple[np.ndarray, np.ndarray]]] | None = None
        # The latest frame's size and, without a tracker, its detections (carried as they are).
        self._frame_size = (0, 0)
        self._last: Detections | None = None
        self.reconfigure(camera)

    def reconfigure(self, camera: CameraConfig) -> None:
        """Take new settings: a zone or line that did not change keeps its counts and states,
        the tracker its tracks unless its settings changed."""
        with self._lock:
            if not camera.tracks:
                self._tracker = None
            elif self._tracker is None or self._tracker.config != camera.tracking:
                self._tracker = Tracker(camera.tracking)
            self._zones = {
                name: self._zones[name]
                if name in self._zones and self._zones[name].config == zone
                else ZoneWatch(name, zone)
                for name, zone in camera.zones.items()
            }
            self._lines = {
                name: self._lines[name]
                if name in self._lines and self._lines[name].config == line
                else LineWatch(name, line)
                for name, line in camera.lines.items()
            }
            masks_changed = self.masks.configs != camera.masks
            if masks_changed:
                self.masks = Masks(camera.masks)
            if self.gate is None or self.gate.config != camera.detection or masks_changed:
                # Replaced whole: the scheduling thread reads it without the lock.
                self.gate = DetectionGate(camera.detection, self.masks)
            self._edges = None
            self._counts = None

    def process(
        self,
        detections: Detections,
        labels: Sequence[str],
        captured_at: float,
        media_time_s: float | None = None,
        seq: int | None = None,
    ) -> Analysed:
        """One frame's detections, in order. `captured_at` (wall clock) dates the events;
        `media_time_s` (the frame's time in its source; the wall clock when not known) times them."""
        with self._lock:
            keep = self.masks.keep(detections.boxes, detections.width, detections.height)
            if keep is not None and not keep.all():
                self.dropped_by_mask += int((~keep).sum())
                detections = Detections(
                    detections.boxes[keep],
                    detections.scores[keep],
                    detections.class_ids[keep],
                    detections.width,
                    detections.height,
                )
            self._frame_size = (detections.width, detections.height)
            tracker = self._tracker
            if tracker is None:
                self._last = detections
                return Analysed(detections, None, None)
            ids, seen, ended = tracker.update(detections.boxes, detections.scores, detections.class_ids)
            counts = self._observe(tracker, seen, ended, labels, captured_at, media_time_s, seq)
            return Analysed(detections, ids, counts)

    def carry(
        self, labels: Sequence[str], captured_at: float, media_time_s: float | None = None, seq: int | None = None
    ) -> Analysed:
        """A frame the detector did not see: its boxes are the tracks' predicted ones (without a
        tracker, the latest frame's detections stand), and zones and lines follow them."""
        width, height = self._frame_size
        with self._lock:
            tracker = self._tracker
            if tracker is None:
                return Analysed(self._last or Detections.empty(width, height), None, None)
            carried, ended = tracker.predict()
            detections = Detections(
                np.stack([t.box for t in carried]).astype(np.float32) if carried else np.zeros((0, 4), np.float32),
                np.asarray([t.score for t in carried], np.float32),
                np.asarray([t.class_id for t in carried], np.int64),
                width,
                height,
            )
            # Zones and lines judge detected frames only: a prediction carried over a line is
            # not a crossing (a car that stopped would be extrapolated past it).
            counts = self._observe(tracker, [], ended, labels, captured_at, media_time_s, seq)
            return Analysed(detections, [t.id for t in carried], counts)

    def _observe(
        self,
        tracker: Tracker,
        seen: list[Track],
        ended: list[Track],
        labels: Sequence[str],
        captured_at: float,
        media_time_s: float | None,
        seq: int | None,
    ) -> dict[str, Any] | None:
        """Zones and lines follow the tracks of one frame; the gate's hints are renewed; returns
        the counts (None: the camera has no zone or line)."""
        at = captured_at if media_time_s is None else media_time_s
        width, height = self._frame_size
        changed = False

        def emit(name: str, details: dict[str, Any]) -> None:
            # The frame time is formatted only when an event is raised, not every frame.
            nonlocal changed
            changed = True
            when: dict[str, Any] = {"at": iso_time(captured_at), "seq": seq}
            if media_time_s is not None:
                when["media_time_s"] = round(media_time_s, 3)
            self._emit(name, {"camera": self.camera_id, **when, **details})

        if seen and (self._zones or self._lines):
            observation = Observation(
                ids=[t.id for t in seen],  # type: ignore[misc]  # seen tracks are confirmed
                labels=[labels[t.class_id] for t in seen],
                boxes=np.stack([t.box for t in seen]),
                width=width,
                height=height,
                at=at,
            )
            for watch in (*self._zones.values(), *self._lines.values()):
                watch.observe(observation, emit)
        for track in ended:
            for watch in (*self._zones.values(), *self._lines.values()):
                watch.ended(track.id, at, emit)  # type: ignore[arg-type]
        if self.gate is not None and self.gate.config.mode != "every_frame":
            self.hints = self._hints(tracker, width, height)
        if not (self._zones or self._lines):
            return None
        # Every result carries the counts as of its own frame: the zones' and lines' are
        # rebuilt when an event changed them, the tracks' whenever they moved.
        tracks = self._track_counts(tracker)
        if changed or self._counts is None:
            self._counts = self._make_counts(tracker)
        elif self._counts["tracks"] != tracks:
            self._counts = {**self._counts, "tracks": tracks}
        return self._counts

    def _hints(self, tracker: Tracker, width: int, height: int) -> Hints:
        """Whether any track moves, and whether any is near a line or a zone's edge: within its
        box's size, or two intervals of its motion."""
        tracks, velocity = tracker.motion()
        if not tracks:
            return Hints()
        boxes = np.stack([t.box for t in tracks]).astype(np.float64)
        size = np.sqrt(np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1.0))
        speed = np.hypot(velocity[:, 0], velocity[:, 1])
        moving = bool((speed > 0.01 * size).any())
        near = False
        edges = self._segments(width, height)
        if edges:
            assert self.gate is not None
            margin = np.maximum(size, 2.0 * speed * self.gate.config.interval)
            for anchor, (starts, ends) in edges.items():
                points = anchor_points(boxes, anchor, width, height) * np.asarray([width, height])
                if (segment_distance(points, starts, ends) <= margin).any():
                    near = True
                    break
        return Hints(active=len(tracks), moving=moving, near_edge=near)

    def _segments(self, width: int, height: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every line and zone edge as pixel segments, grouped by the anchor that shape tests."""
        if self._edges is not None and self._edges[0] == (width, height):
            return self._edges[1]
        grouped: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        scale = np.asarray([width, height], dtype=np.float64)
        for watch in (*self._zones.values(), *self._lines.values()):
            points = (watch.polygon if isinstance(watch, ZoneWatch) else watch.line) * scale
            ends = np.roll(points, -1, axis=0) if isinstance(watch, ZoneWatch) else points[1:]
            starts_of, ends_of = grouped.setdefault(watch.config.anchor, ([], []))
            starts_of.append(points[: len(ends)])
            ends_of.append(ends)
        segments = {anchor: (np.concatenate(a), np.concatenate(b)) for anchor, (a, b) in grouped.items()}
        self._edges = ((width, height), segments)
        return segments

    def wants_detection(self, image: np.ndarray | None, now: float) -> bool:
        """Whether the detector sees this frame (the gate, with the latest tracks' hints). A gate
        that fails (a frame it cannot read) lets the frame through: it never stops the camera."""
        gate = self.gate
        if gate is None:
            return True
        try:
            return gate.decide(image, now, self.hints)
        except Exception as exc:  # noqa: BLE001 - said once per camera; the frame is detected
            if not self._gate_failed:
                self._gate_failed = True
                log.error(
                    "camera %s: the detection gate failed (%s); its frames go to the detector", self.camera_id, exc
                )
            return True

    @staticmethod
    def _track_counts(tracker: Tracker) -> dict[str, int]:
        return {"active": tracker.active(), "ids_issued": tracker.ids_issued}

    def _make_counts(self, tracker: Tracker) -> dict[str, Any]:
        return {
            "zones": {name: zone.counts() for name, zone in self._zones.items()},
            "lines": {name: line.counts() for name, line in self._lines.items()},
            "tracks": self._track_counts(tracker),
        }

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            tracker = self._tracker
            counts = self._make_counts(tracker) if tracker is not None else {"zones": {}, "lines": {}, "tracks": None}
        return {**counts, "dropped_by_mask": self.dropped_by_mask}

    def overlay(self) -> Overlay:
        with self._lock:
            return Overlay(
                zones={name: (z.polygon, dict(z.occupancy())) for name, z in self._zones.items()},
                lines={
                    name: (ln.line, {d: sum(c.values()) for d, c in ln.crossed.items()})
                    for name, ln in self._lines.items()
                },
            )


class Analytics:
    """Every camera's analytics, made and changed from the configuration's cameras."""

    def __init__(self, emit: EmitEvent) -> None:
        self._emit = emit
        self._lock = threading.Lock()
        self._cameras: dict[str, CameraAnalytics] = {}

    def configure(self, cameras: Sequence[CameraConfig]) -> None:
        with self._lock:
            wanted = {c.id: c for c in cameras if c.tracks or c.masks or c.detection.mode != "every_frame"}
            current = dict(self._cameras)
            for camera_id in set(current) - set(wanted):
                del current[camera_id]
            for camera_id, camera in wanted.items():
                if camera_id in current:
                    current[camera_id].reconfigure(camera)
                else:
                    current[camera_id] = CameraAnalytics(camera, self._emit)
            # Replaced whole: the publish stage reads it without the lock.
            self._cameras = current

    def of(self, camera_id: str) -> CameraAnalytics | None:
        return self._cameras.get(camera_id)

    def process(
        self,
        camera_id: str,
        detections: Detections,
        labels: Sequence[str],
        captured_at: float,
        media_time_s: float | None = None,
        seq: int | None = None,
    ) -> Analysed:
        analytics = self._cameras.get(camera_id)
        if analytics is None:
            return Analysed(detections, None, None)
        return analytics.process(detections, labels, captured_at, media_time_s, seq)

    def carry(
        self,
        camera_id: str,
        labels: Sequence[str],
        captured_at: float,
        media_time_s: float | None = None,
        seq: int | None = None,
    ) -> Analysed | None:
        """A frame the detector skipped (None: the camera has no analytics, so none is skipped)."""
        analytics = self._cameras.get(camera_id)
        return None if analytics is None else analytics.carry(labels, captured_at, media_time_s, seq)

    def wants_detection(self, camera_id: str, image: np.ndarray | None, now: float) -> bool:
        analytics = self._cameras.get(camera_id)
        return True if analytics is None else analytics.wants_detection(image, now)

    def snapshot(self) -> dict[str, Any]:
        return {camera_id: a.snapshot() for camera_id, a in sorted(self._cameras.items())}
