"""Cameras spread over replicas: each camera belongs to exactly one of `count` replicas.

Rendezvous (highest random weight) hashing: a camera goes to the replica whose hash of
(camera id, replica) is highest. Every replica computes the same answer from the camera list
alone (no coordination, no broker), the shares are even, and changing the count moves only the
cameras that the new (or removed) replica takes (or gave up): about 1/N of them.

A replica's ordinal is configured (`replicas.ordinal`) or read from its host name, as a
Kubernetes StatefulSet names its pods (`edgevision-2` is ordinal 2).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from pydantic import Field, model_validator

from edgevision.config.section import Section

_ORDINAL = re.compile(r"-(\d{1,4})$")


class ReplicasConfig(Section):
    count: int = Field(
        default=1, ge=1, le=1000, description="How many replicas share the camera list (a StatefulSet's replicas)."
    )
    ordinal: int | None = Field(
        default=None,
        ge=0,
        le=9999,
        description="This replica's number, 0..count-1; None: from the host name (`name-N`), or 0 for one replica.",
    )

    @model_validator(mode="after")
    def _in_range(self) -> ReplicasConfig:
        if self.ordinal is not None and self.ordinal >= self.count:
            raise ValueError(f"ordinal {self.ordinal} is not below count {self.count}")
        return self


def owner(camera_id: str, count: int) -> int:
    """The replica (0..count-1) that watches this camera."""
    if count <= 1:
        return 0
    weights = [hashlib.sha256(f"{camera_id}\x00{replica}".encode()).digest()[:8] for replica in range(count)]
    return max(range(count), key=lambda replica: weights[replica])


def held(camera_ids: Iterable[str], ordinal: int, count: int) -> list[str]:
    return [camera for camera in camera_ids if owner(camera, count) == ordinal]


def ordinal_from_host(hostname: str) -> int | None:
    """A StatefulSet pod's ordinal from its host name (`edgevision-2` -> 2), None if it has none."""
    match = _ORDINAL.search(hostname.strip())
    return int(match.group(1)) if match else None
