"""Per-camera analytics settings: tracking, zones, lines and privacy masks (pydantic).

Twins hold no arrays, so geometry is a string of normalised points (edgevision/geometry.py) and
classes a comma-separated string of labels.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from edgevision.config.section import Section, comma_list
from edgevision.geometry import Anchor, parse_points

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
MAX_SHAPES = 32


def _labels(value: str | None) -> tuple[str, ...] | None:
    return comma_list(value) or None


class TrackingConfig(Section):
    """A tracker of the ByteTrack kind: detections at or above `high_score` are matched first,
    those between `low_score` and it keep existing tracks alive (occluded, blurred objects)."""

    enabled: bool | None = Field(
        default=None, description="None: on when the camera has zones or lines (they count tracks, not boxes)."
    )
    high_score: float = Field(
        default=0.5, gt=0, le=1, description="Detections at least this sure are matched to tracks first."
    )
    low_score: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Detections between this and high_score only keep existing tracks alive (occluded or blurred objects), in a second round.",
    )
    new_track_score: float = Field(
        default=0.6, gt=0, le=1, description="A new track starts only from a detection this sure."
    )
    match_iou: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Least box overlap (IoU with the track's predicted box) to match, first and second round.",
    )
    low_match_iou: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="Least overlap with a track's predicted box for a low-score detection to continue it (second round).",
    )
    patience_frames: int = Field(
        default=30,
        ge=1,
        le=3000,
        description="Frames a track is kept while unseen (occlusion); found again within them, it keeps its id.",
    )
    min_hits: int = Field(
        default=2,
        ge=1,
        le=100,
        description="Frames a new track must be matched in before it gets an id (a one-frame false positive never does).",
    )
    recover_distance: float = Field(
        default=0.6,
        ge=0,
        le=5,
        description="A sure detection that overlaps no prediction may still continue a lost track (one hidden behind another object, whose box shrank before it vanished) when it is within this many of the track's sizes of where its motion puts it, as the same class, of a like size. 0: off.",
    )

    @model_validator(mode="after")
    def _order(self) -> TrackingConfig:
        if not self.low_score <= self.high_score <= self.new_track_score:
            raise ValueError("low_score <= high_score <= new_track_score expected")
        return self


class DetectionConfig(Section):
    """Which frames the detector sees; between them the tracker carries the boxes.

    `every_frame`: each frame the camera sends (at its target fps). `interval`: every
    `interval`-th frame, every `edge_interval`-th while a track is near a line or a zone's edge.
    `motion`: as `interval` while something moves, nothing while the scene is still (a cheap
    change measure on a small grey copy of each frame decides), and a frame every `refresh_s`
    whatever happens."""

    mode: Literal["every_frame", "motion", "interval"] = Field(
        default="motion",
        description="every_frame: each frame the camera sends; interval: every interval-th frame; motion: as interval while something moves, only a frame every refresh_s while the scene is still.",
    )
    interval: int = Field(
        default=4,
        ge=1,
        le=100,
        description="interval and motion: the detector sees every interval-th frame; the tracker carries the boxes between.",
    )
    edge_interval: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Near a line or a zone's edge a track is never left to prediction for more than edge_interval - 1 frames in a row, so no crossing is missed while the detector sleeps.",
    )
    refresh_s: float = Field(
        default=5.0, gt=0, le=3600, description="A still scene is still looked at this often (seconds)."
    )
    motion_threshold: int = Field(
        default=12,
        ge=1,
        le=255,
        description="Grey levels a pixel of the small copy must change by, at least (the threshold also rises with the camera's own noise: grain, rain, compression).",
    )
    motion_area: float = Field(
        default=0.002, gt=0, lt=1, description="Share of the frame that must change for motion (outside privacy masks)."
    )

    @model_validator(mode="after")
    def _intervals(self) -> DetectionConfig:
        if self.edge_interval > self.interval:
            raise ValueError("edge_interval <= interval expected")
        return self


class ZoneConfig(Section):
    polygon: str = Field(
        description='"x,y x,y x,y ...": 3 to 64 points, normalised (0,0 the top left, 1,1 the bottom right).'
    )
    classes: str | None = Field(
        default=None, max_length=4096, description="Comma-separated labels the zone counts; None: every class."
    )
    anchor: Anchor = Field(default="bottom_center", description="Which point of a box decides whether it is inside.")
    min_frames: int = Field(
        default=2,
        ge=1,
        le=1000,
        description="Frames inside (outside) before an entry (exit) counts: a box that flickers over the edge counts nothing.",
    )
    dwell_s: float | None = Field(
        default=None,
        gt=0,
        le=7 * 86400,
        description="A `dwell` event once per visit when a track has been inside this long.",
    )

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, value: str) -> str:
        parse_points(value, least=3)
        return value

    @property
    def labels(self) -> tuple[str, ...] | None:
        return _labels(self.classes)


class LineConfig(Section):
    points: str = Field(
        description='"x1,y1 x2,y2": the line\'s two ends, normalised. Crossing towards the side its direction turns to clockwise on screen (downwards through a line drawn left to right) is `in`.'
    )
    classes: str | None = Field(
        default=None, max_length=4096, description="Comma-separated labels the line counts; None: every class."
    )
    anchor: Anchor = Field(default="bottom_center", description="Which point of a box crosses the line.")
    min_frames: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Frames on the new side before a crossing counts: a box flickering across and back counts nothing.",
    )
    band: float = Field(
        default=0.1,
        ge=0,
        le=2,
        description="How far beyond the line the anchor must be before its side changes, as a fraction of the box's size (the square root of its area): someone swaying on the line stays on their side, whatever the frame rate. 0: the line itself decides.",
    )
    inherit_s: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="A track first seen within a box's size of where a track given up (lost for longer than the tracker's patience) was last on a side of this line, at most this long after, takes that side: someone hidden behind another person for longer than the patience still counts once. 0: off.",
    )

    @field_validator("points")
    @classmethod
    def _points(cls, value: str) -> str:
        parse_points(value, least=2, most=2)
        return value

    @property
    def labels(self) -> tuple[str, ...] | None:
        return _labels(self.classes)


class MaskConfig(Section):
    polygon: str = Field(
        description='"x,y x,y x,y ...", normalised: blacked out in every image that leaves the module (preview, snapshots).'
    )
    drop_detections: bool = Field(
        default=False,
        description="Also drop detections whose anchor falls inside (nothing about it leaves the module).",
    )
    anchor: Anchor = Field(
        default="bottom_center", description="With drop_detections: which point of a box decides whether it is inside."
    )

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, value: str) -> str:
        parse_points(value, least=3)
        return value


def check_names(shapes: dict[str, Any], what: str) -> dict[str, Any]:
    if len(shapes) > MAX_SHAPES:
        raise ValueError(f"{len(shapes)} {what}; at most {MAX_SHAPES} per camera")
    for name in shapes:
        if not re.match(_NAME, name):
            raise ValueError(f"{what[:-1]} name {name!r}: letters, digits, _ and -, up to 64")
    return shapes
