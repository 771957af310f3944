"""Multi-object tracking of the ByteTrack kind, per camera: stable ids for detections.

Each frame: every track's box is predicted (Kalman, constant velocity); sure detections
(score >= high_score) are matched to tracked and lost tracks by overlap with the predictions;
then the unsure ones (low_score..high_score) to the tracked tracks still unmatched, which keeps
occluded or blurred objects' tracks alive without starting tracks from noise; then sure
detections still unmatched to lost tracks by distance from where their motion puts them (an
object that walked out from behind another: its box shrank as it was covered, so its predicted
box overlaps nothing). While a track is lost its size is held, not extrapolated. A track matched in
`min_hits` frames gets an id; one unseen for `patience_frames` is dropped, and found again
before that it keeps its id. Matching is greedy by overlap, best pairs first: with boxes of one
frame the optimal assignment rarely differs, and it stays well within a millisecond.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from edgevision.analytics import kalman
from edgevision.config.analytics import TrackingConfig

# Tracks followed at once per camera, at most (matching costs detections x tracks per frame).
MAX_TRACKS = 1000


@dataclass(eq=False)
class Track:
    """One object over time. `id` is None until the track is confirmed."""

    id: int | None
    # The class it was seen as most often (a detector's class can flicker), and how often each.
    class_id: int
    hits: int = 1
    missed: int = 0
    classes: Counter[int] = field(default_factory=Counter)
    # The last matched detection's box (x1, y1, x2, y2, frame pixels) and score.
    box: np.ndarray = field(default_factory=lambda: np.zeros(4))
    score: float = 0.0
    # Its size (the square root of its box's area), from sure detections only and smoothed: a box
    # that shrinks as the object is covered does not shrink it.
    size: float = 0.0

    def seen_as(self, class_id: int) -> None:
        self.classes[class_id] += 1
        if class_id != self.class_id and self.classes[class_id] > self.classes[self.class_id]:
            self.class_id = class_id


@dataclass(frozen=True)
class Ended:
    """A track given up (unseen for longer than the patience)."""

    track: Track


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of x1, y1, x2, y2 boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ax1, ay1, ax2, ay2 = (a[:, i : i + 1] for i in range(4))
    bx1, by1, bx2, by2 = (b[:, i] for i in range(4))
    w = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    h = np.minimum(ay2, by2) - np.maximum(ay1, by1)
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / np.maximum(union, 1e-9)


def greedy_match(overlap: np.ndarray, least: float) -> list[tuple[int, int]]:
    """(row, column) pairs, best overlap first, each row and column at most once.

    A pair that is the best of both its row and its column is taken by the greedy order whatever
    comes before it, so those (nearly every pair, with objects apart) are taken at once, and
    only the rest goes through the loop.
    """
    if overlap.size == 0:
        return []
    rows = np.arange(len(overlap))
    best_col = overlap.argmax(axis=1)
    best_row = overlap.argmax(axis=0)
    mutual = (best_row[best_col] == rows) & (overlap[rows, best_col] >= least)
    pairs = list(zip(rows[mutual].tolist(), best_col[mutual].tolist(), strict=True))
    rest = overlap.copy()
    rest[rows[mutual], :] = -1.0
    rest[:, best_col[mutual]] = -1.0
    candidates_r, candidates_c = np.nonzero(rest >= least)
    if len(candidates_r) == 0:
        return pairs
    order = np.argsort(-rest[candidates_r, candidates_c], kind="stable")
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    for r, c in zip(candidates_r[order].tolist(), candidates_c[order].tolist(), strict=True):
        if r in used_rows or c in used_cols:
            continue
        used_rows.add(r)
        used_cols.add(c)
        pairs.append((r, c))
    return pairs


def _size(box: np.ndarray) -> float:
    return float(np.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 0.0)))


class Tracker:
    """Not thread-safe: one per camera, fed its frames in order."""

    def __init__(self, config: TrackingConfig) -> None:
        self.config = config
        self.tracks: list[Track] = []
        self._mean = np.zeros((0, 8))
        self._covariance = np.zeros((0, 3, 4))
        self._ids = itertools.count(1)
        self.ids_issued = 0

    def update(
        self, boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray
    ) -> tuple[list[int | None], list[Track], list[Track]]:
        """Match this frame's detections; returns each detection's track id (None: no confirmed
        track), the confirmed tracks seen this frame, and the tracks given up."""
        config = self.config
        ids: list[int | None] = [None] * len(scores)
        self._mean, self._covariance = kalman.predict(self._mean, self._covariance)
        predicted = kalman.cxcywh_to_xyxy(self._mean[:, :4]) if len(self.tracks) else np.zeros((0, 4))
        high = np.flatnonzero(scores >= config.high_score)
        low = np.flatnonzero((scores >= config.low_score) & (scores < config.high_score))
        unmatched_tracks = list(range(len(self.tracks)))
        matches: list[tuple[int, int]] = []
        # First round: sure detections against every track.
        for t, d in greedy_match(iou_matrix(predicted, boxes[high]), config.match_iou):
            matches.append((t, int(high[d])))
        matched = {t for t, _ in matches}
        used_high = {d for _, d in matches}
        # Second round: unsure detections keep tracks that were seen last frame alive.
        candidates = [t for t in unmatched_tracks if t not in matched and self.tracks[t].missed == 0]
        if candidates and len(low):
            overlap = iou_matrix(predicted[candidates], boxes[low])
            for t, d in greedy_match(overlap, config.low_match_iou):
                matches.append((candidates[t], int(low[d])))
        matched = {t for t, _ in matches}
        # Third round: sure detections still unmatched, against lost tracks, by predicted motion.
        if config.recover_distance > 0:
            taken_now = {d for _, d in matches}
            free = [int(d) for d in high if int(d) not in taken_now]
            lost = [t for t in unmatched_tracks if t not in matched and self.tracks[t].missed > 0]
            if free and lost:
                for t, d in greedy_match(self._nearness(lost, boxes[free], class_ids[free]), 1e-6):
                    matches.append((lost[t], free[d]))
                matched = {t for t, _ in matches}
        seen: list[Track] = []
        if matches:
            rows = np.asarray([t for t, _ in matches])
            dets = np.asarray([d for _, d in matches])
            self._mean[rows], self._covariance[rows] = kalman.update(
                self._mean[rows], self._covariance[rows], kalman.xyxy_to_cxcywh(boxes[dets].astype(np.float64))
            )
            classes, confidence, tracks = class_ids.tolist(), scores.tolist(), self.tracks
            for t, d in matches:
                track = tracks[t]
                track.hits += 1
                track.missed = 0
                if classes[d] == track.class_id:
                    track.classes[classes[d]] += 1
                else:
                    track.seen_as(classes[d])
                track.box = boxes[d]
                track.score = confidence[d]
                if confidence[d] >= config.high_score:
                    track.size = 0.9 * track.size + 0.1 * _size(boxes[d])
                if track.id is None and track.hits >= config.min_hits:
                    track.id = self._issue()
                if track.id is not None:
                    ids[d] = track.id
                    seen.append(track)
        # Tracks not seen: missed once more; tentative ones (never confirmed) are dropped at once.
        # A lost track's size is held: extrapolating a box that shrank as it was covered would
        # shrink it to nothing.
        keep = []
        ended: list[Track] = []
        for index, track in enumerate(self.tracks):
            # Unseen: missed once more (the check short-circuits, so matched tracks are not).
            if index not in matched and (self._miss(index, track) or track.id is None):
                if track.id is not None:
                    ended.append(track)
                continue
            keep.append(index)
        if len(keep) > MAX_TRACKS:
            # A scene (or a hostile stream) with more objects than any camera shows: the tracks
            # unseen longest go first, so matching stays bounded.
            kept = sorted(sorted(keep, key=lambda i: self.tracks[i].missed)[:MAX_TRACKS])
            ended += [self.tracks[i] for i in set(keep) - set(kept) if self.tracks[i].id is not None]
            keep = kept
        self.tracks = [self.tracks[i] for i in keep]
        self._mean, self._covariance = self._mean[keep], self._covariance[keep]
        # Births: sure enough detections that matched nothing.
        taken = used_high | {d for _, d in matches}
        births = [int(d) for d in high if d not in taken and scores[d] >= config.new_track_score]
        births = births[: max(0, MAX_TRACKS - len(self.tracks))]
        if births:
            mean, covariance = kalman.initiate(kalman.xyxy_to_cxcywh(boxes[births].astype(np.float64)))
            self._mean = np.concatenate([self._mean, mean])
            self._covariance = np.concatenate([self._covariance, covariance])
            for d in births:
                class_id = int(class_ids[d])
                track = Track(id=None, class_id=class_id, classes=Counter({class_id: 1}), box=boxes[d])
                track.score = float(scores[d])
                track.size = _size(boxes[d])
                if config.min_hits <= 1:
                    track.id = self._issue()
                    ids[d] = track.id
                    seen.append(track)
                self.tracks.append(track)
        return ids, seen, ended

    def predict(self) -> tuple[list[Track], list[Track]]:
        """A frame the detector did not see: every track moves on by its motion. Tracks seen at
        the last detection are taken to be there still; lost ones are missed once more, so the
        patience stays a number of frames. Returns the confirmed tracks carried (their boxes
        where they are predicted) and those given up."""
        self._mean, self._covariance = kalman.predict(self._mean, self._covariance)
        if not self.tracks:
            return [], []
        boxes = kalman.cxcywh_to_xyxy(self._mean[:, :4]).astype(np.float32)
        carried: list[Track] = []
        ended: list[Track] = []
        keep = []
        for index, track in enumerate(self.tracks):
            if track.missed == 0:
                if track.id is not None:
                    track.box = boxes[index]
                    carried.append(track)
            else:
                if self._miss(index, track):
                    if track.id is not None:
                        ended.append(track)
                    continue
            keep.append(index)
        if len(keep) < len(self.tracks):
            self.tracks = [self.tracks[i] for i in keep]
            self._mean, self._covariance = self._mean[keep], self._covariance[keep]
        return carried, ended

    def _miss(self, index: int, track: Track) -> bool:
        """One more frame unseen: its size held; True once it is past the patience."""
        self._mean[index, 6:8] = 0.0
        track.missed += 1
        return track.missed > self.config.patience_frames

    def motion(self) -> tuple[list[Track], np.ndarray]:
        """The confirmed tracks seen lately and their velocities (pixels per frame, x and y)."""
        rows = [i for i, t in enumerate(self.tracks) if t.id is not None and t.missed == 0]
        return [self.tracks[i] for i in rows], self._mean[rows, 4:6]

    def _nearness(self, lost: list[int], boxes: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
        """(len(lost), len(boxes)): 1 at a lost track's predicted centre, falling to 0 at
        `recover_distance` of its size (a little further the longer it is lost); 0 for another
        class or a size off by more than half."""
        tracks = [self.tracks[t] for t in lost]
        centres = self._mean[lost, :2]
        size = np.asarray([t.size for t in tracks])
        missed = np.asarray([t.missed for t in tracks], dtype=np.float64)
        reach = self.config.recover_distance * size * np.minimum(1.0 + 0.05 * missed, 2.0)
        found = (boxes[:, :2] + boxes[:, 2:4]) / 2
        distance = np.hypot(centres[:, None, 0] - found[None, :, 0], centres[:, None, 1] - found[None, :, 1])
        nearness = 1.0 - distance / np.maximum(reach[:, None], 1e-9)
        ratio = np.asarray([_size(b) for b in boxes])[None, :] / np.maximum(size[:, None], 1e-9)
        same = np.asarray([t.class_id for t in tracks])[:, None] == class_ids[None, :]
        return np.where(same & (ratio > 0.5) & (ratio < 2.0), nearness, 0.0)

    def _issue(self) -> int:
        self.ids_issued += 1
        return next(self._ids)

    def active(self) -> int:
        """Confirmed tracks being followed (seen or within their patience)."""
        return sum(1 for t in self.tracks if t.id is not None)
