"""Evidence settings: per camera, which events keep a snapshot and a clip; for the module, where
the files go (the state volume first, then Azure Blob Storage or a synced folder) and the limits
that keep them from crowding out results."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from edgevision.config.section import Section, comma_list

# A rule: line:NAME, zone:NAME, dwell or dwell:ZONE, class:LABEL (NAME may be *: any).
_RULE = re.compile(r"^(line|zone|dwell|class)(:[A-Za-z0-9*][A-Za-z0-9_ *-]{0,63})?$")


class CameraEvidence(Section):
    enabled: bool = Field(default=False, description="Keep a snapshot and a clip of this camera's events.")
    rules: str | None = Field(
        default=None,
        max_length=2048,
        description="Comma-separated: line:NAME (a crossing of that line), zone:NAME (an entry), dwell or dwell:ZONE, class:LABEL (any of these events of that class); NAME * is any. None: every crossing, zone entry and dwell event.",
    )
    snapshot: bool = Field(
        default=True, description="A JPEG of the event's frame, its boxes and the camera's zones and lines drawn."
    )
    clip: bool = Field(default=True, description="An H.264 MP4 clip from pre_s before the event to post_s after it.")
    pre_s: float = Field(
        default=3.0, ge=0, le=30, description="Seconds of video kept before an event (the ring buffer)."
    )
    post_s: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="Seconds recorded after an event; an event within a clip's window extends it (events close in time share one clip).",
    )
    max_clip_s: float = Field(
        default=60.0, gt=0, le=600, description="A clip that events keep extending ends at this length."
    )
    fps: float = Field(
        default=10.0, gt=0, le=30, description="Frames per second kept for clips (at most the camera's own rate)."
    )
    max_width: int = Field(
        default=1280,
        ge=64,
        le=3840,
        description="Frames wider than this are scaled down for the buffer, clips and snapshots.",
    )
    jpeg_quality: int = Field(
        default=80, ge=30, le=100, description="Quality of the frames held in the ring buffer and of snapshots."
    )
    buffer_mb: float = Field(
        default=24.0,
        gt=0,
        le=1024,
        description="The ring buffer's memory per camera at most (MiB), a clip being recorded included: beyond it the oldest frames go first.",
    )

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: str | None) -> str | None:
        for rule in comma_list(value):
            if not _RULE.match(rule):
                raise ValueError(f"rule {rule!r}: line:NAME, zone:NAME, dwell, dwell:ZONE or class:LABEL")
        return value


class EvidenceConfig(Section):
    """Where snapshots and clips go. They are written to the state volume first (bounded by
    max_mb and max_age_s), then delivered by a background sender with retries."""

    destination: Literal["none", "blob", "folder"] = Field(
        default="none",
        description="none: kept on the state volume only; blob: uploaded to Azure Blob Storage; folder: copied into `folder` (a volume Azure Container Storage enabled by Arc syncs to Blob).",
    )
    folder: Path | None = Field(default=None, description="destination folder: where delivered files go.")
    container: str = Field(
        default="edgevision",
        pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
        description="destination blob: the container (one per deployment), made when the credential may make it.",
    )
    blob_credential: SecretStr | None = Field(
        default=None,
        max_length=4096,
        description="destination blob: a storage connection string, or a container SAS URL (its container then wins over `container`). Better from a file or EDGEVISION_EVIDENCE__BLOB_CREDENTIAL; never echoed.",
    )
    blob_credential_file: Path | None = Field(
        default=None, description="A file holding blob_credential (a mounted Secret), read at each upload round."
    )
    max_mb: float = Field(
        default=1024.0,
        gt=0,
        le=1 << 20,
        description="Evidence on the state volume at most (MiB); beyond, the oldest files go first (counted).",
    )
    max_age_s: float = Field(
        default=7 * 86400.0,
        gt=0,
        le=365 * 86400.0,
        description="Files older than this are dropped (counted), delivered or not.",
    )
    min_free_mb: float = Field(
        default=256.0,
        ge=0,
        le=1 << 20,
        description="Nothing is written when the volume has less free space than this: a full disk drops evidence, never results (the outbox shares the volume).",
    )
    retry_initial_s: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="A failed delivery is tried again after this long, doubling to retry_max_s.",
    )
    retry_max_s: float = Field(default=300.0, gt=0, le=86400, description="The longest wait between delivery attempts.")
    timeout_s: float = Field(default=30.0, gt=0, le=600, description="One upload's connection and read timeout.")

    @model_validator(mode="after")
    def _complete(self) -> EvidenceConfig:
        if self.destination == "folder" and self.folder is None:
            raise ValueError("folder: needed when destination is folder")
        if self.blob_credential is not None and self.blob_credential_file is not None:
            raise ValueError("blob_credential and blob_credential_file: one or the other")
        if "--" in self.container:
            raise ValueError("container: no two hyphens in a row (Azure's container naming rules)")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError("retry_max_s must be >= retry_initial_s")
        return self
