"""The module twin's desired document, kept whole, and the last one that was applied, kept on disk.

IoT Hub keeps whatever was written to the desired properties, a rejected key included; so does
`DesiredDocument`: patches are merged into the full document (a null removes a key), and a full
twin read replaces it when its $version is newer or equal. The configuration the module runs is
always the local base with this whole document merged over it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgevision.config.load import merge
from edgevision.state import move_aside, write_private

log = logging.getLogger(__name__)

LAST_KNOWN_GOOD = "desired.last-good.json"


def desired_document(desired: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration part of a desired document or patch: without `$version`, `$metadata`."""
    return {
        k: (desired_document(v) if isinstance(v, Mapping) else v) for k, v in desired.items() if not k.startswith("$")
    }


def _version(document: Mapping[str, Any]) -> int | None:
    version = document.get("$version")
    return version if isinstance(version, int) and not isinstance(version, bool) else None


class DesiredDocument:
    """Thread-safe; `full` and `patch` return whether the document changed hands (the caller then
    applies the result as a whole)."""

    def __init__(self, document: Mapping[str, Any] | None = None, version: int | None = None) -> None:
        """`document` and `version`: a remembered one (last known good), until the twin speaks."""
        self._lock = threading.Lock()
        self.document: dict[str, Any] = dict(document or {})
        self.version = version
        # The first whole document read from the twin in this process is taken whatever its
        # version: a module re-created by a deployment starts its twin's versions again at 1.
        self._heard_twin = False

    def full(self, desired: Mapping[str, Any]) -> bool:
        """A whole desired document (a twin read): replaces ours unless it is older."""
        version = _version(desired)
        with self._lock:
            older = version is not None and self.version is not None and version < self.version
            if older and self._heard_twin:
                log.info("twin read gave desired $version %s, older than %s: kept ours", version, self.version)
                return False
            self.document = desired_document(desired)
            self.version = version if version is not None else self.version
            self._heard_twin = True
            return True

    def patch(self, patch: Mapping[str, Any]) -> bool:
        """A desired-properties patch: merged into the document unless we already have its version."""
        version = _version(patch)
        with self._lock:
            if version is not None and self.version is not None and version <= self.version:
                log.info("desired patch $version %s already in the document ($version %s)", version, self.version)
                return False
            self.document = merge(self.document, desired_document(patch))
            self.version = version if version is not None else self.version
            return True

    def snapshot(self) -> tuple[dict[str, Any], int | None]:
        with self._lock:
            return dict(self.document), self.version


@dataclass(frozen=True)
class Remembered:
    document: dict[str, Any]
    version: int | None


class LastKnownGood:
    """The last desired document that was applied, in the state folder (0600: it holds camera URIs)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LAST_KNOWN_GOOD
        # Why the stored copy could not be used at start (moved aside), for status and events.
        self.damaged: str | None = None

    def load(self) -> Remembered | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.damaged = f"cannot read {self.path}: {exc.strerror}"
            log.error("%s; starting from the local configuration", self.damaged)
            return None
        try:
            stored = json.loads(raw)
            document, version = stored["document"], stored.get("version")
            if not isinstance(document, dict) or not (version is None or isinstance(version, int)):
                raise ValueError("unexpected content")
        except (ValueError, KeyError, TypeError) as exc:
            where = move_aside(self.path, str(exc))
            self.damaged = f"{self.path} was damaged ({exc}); moved aside to {where}"
            return None
        return Remembered(document, version)

    def save(self, document: Mapping[str, Any], version: int | None) -> None:
        try:
            write_private(self.path, json.dumps({"version": version, "document": document}).encode())
        except OSError as exc:
            log.error("cannot keep the last known good configuration in %s: %s", self.path, exc.strerror)
