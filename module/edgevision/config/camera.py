"""A camera in the configuration: its source, its model, and what its tracks answer."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from edgevision.config.analytics import (
    DetectionConfig,
    LineConfig,
    MaskConfig,
    TrackingConfig,
    ZoneConfig,
    check_names,
)
from edgevision.config.evidence import CameraEvidence
from edgevision.config.section import Section
from edgevision.config.source_uri import SourceSpec, parse_source_uri

# Camera ids and model keys: no dots (they become property names in the module twin, which
# forbids them).
CAMERA_KEY = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class CameraConfig(Section):
    id: str = Field(
        pattern=CAMERA_KEY,
        description="The camera's name in every message, metric and status: letters, digits, _ and -, up to 64 (no dots: twin property names cannot hold them).",
    )
    uri: str = Field(
        min_length=1,
        description="Where frames come from: rtsp://, rtsps://, rtmp://, http(s):// streams; a video file or image folder; usb:N or /dev/videoN; synthetic:WxH@FPS. A password in it is redacted everywhere; better in `credentials`.",
    )
    model: str | None = Field(
        default=None,
        pattern=CAMERA_KEY,
        description='A key of `models`: the model this camera\'s frames go through (None or "default": `model`). Cameras with the same model share one engine and batch together.',
    )
    target_fps: float | None = Field(
        default=None,
        gt=0,
        le=240,
        description="Frames per second sent to inference; None: as many as the pipeline takes.",
    )
    every_frame: bool = Field(
        default=False, description="Files: process every frame (no dropping, no real-time pacing)."
    )
    loop: bool = Field(
        default=False, description="Files and folders: start again at the end (media_time_s keeps growing)."
    )
    max_frames: int | None = Field(
        default=None, gt=0, description="Stop this camera after this many frames; None: no end."
    )
    credentials: str | None = Field(
        default=None,
        pattern=r"^(env:[A-Za-z_][A-Za-z0-9_]{0,127}|file:/[^\x00]{1,4095})$",
        description="Where `user:password` is (env:NAME or file:/path), so it stays out of the URI, the twin and every status; read each time the camera opens.",
    )
    tracking: TrackingConfig = Field(
        default=TrackingConfig(),
        description="What the camera's tracks answer (config/analytics.py): tracking, zones and lines by name, privacy masks by name.",
    )
    detection: DetectionConfig = Field(
        default=DetectionConfig(),
        description="Which frames the detector sees (every one, every Nth, or when something moves); the tracker carries the boxes between.",
    )
    evidence: CameraEvidence = Field(
        default=CameraEvidence(),
        description='A snapshot and a clip of this camera\'s events, masked (README, "Evidence").',
    )
    zones: dict[str, ZoneConfig] = Field(
        default_factory=dict, description="Polygons by name: entries, exits, occupancy and dwell of the tracks inside."
    )
    lines: dict[str, LineConfig] = Field(
        default_factory=dict, description="Counting lines by name: crossings of tracks by direction (in, out)."
    )
    masks: dict[str, MaskConfig] = Field(
        default_factory=dict,
        description="Privacy masks by name: their pixels are black in every image that leaves the module.",
    )

    @field_validator("zones", "lines", "masks")
    @classmethod
    def _shape_names(cls, shapes: dict[str, Any], info: Any) -> dict[str, Any]:
        return check_names(shapes, info.field_name)

    @property
    def tracks(self) -> bool:
        """Whether the camera runs a tracker: asked for, or needed by its zones and lines, or by a
        detector that does not see every frame (the tracker carries the boxes between)."""
        enabled = self.tracking.enabled
        if enabled is not None:
            return enabled
        return bool(self.zones or self.lines) or self.detection.mode != "every_frame"

    @property
    def analytics(self) -> tuple[Any, ...]:
        """Its tracking, detection, evidence, zones, lines and masks: a change to them is taken live."""
        return self.tracking, self.detection, self.evidence, self.zones, self.lines, self.masks

    def without_analytics(self) -> CameraConfig:
        """This camera with its analytics settings taken out: what restarting its source is about."""
        return self.model_copy(
            update={
                "tracking": TrackingConfig(),
                "detection": DetectionConfig(),
                "evidence": CameraEvidence(),
                "zones": {},
                "lines": {},
                "masks": {},
            }
        )

    @model_validator(mode="after")
    def _credentials_for_streams(self) -> CameraConfig:
        if self.credentials is not None:
            spec = self.spec
            if spec.kind != "stream":
                raise ValueError("credentials: only for rtsp:// and http(s):// cameras")
            if "@" in spec.target.split("://", 1)[1].split("/", 1)[0]:
                raise ValueError("credentials: the uri already holds a user; give them in one place")
        return self

    @field_validator("uri")
    @classmethod
    def _valid_uri(cls, uri: str) -> str:
        parse_source_uri(uri)  # raises ValueError with the reason
        return uri

    @property
    def spec(self) -> SourceSpec:
        return parse_source_uri(self.uri)

    @property
    def keeps_every_frame(self) -> bool:
        """Frames wait for room in the queue instead of being dropped (never for live cameras)."""
        spec = self.spec
        return not spec.live and (self.every_frame or spec.kind == "synthetic")
