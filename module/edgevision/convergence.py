"""The running configuration and the rules by which it follows its sources.

- The local base (file, environment, flags) is the floor.
- The module twin's desired document is the source of truth, kept whole
  (edgevision.upstream.desired): the configuration is the base with the whole document merged
  over it, validated and applied as a whole. An invalid result is rejected whole and reported
  key by key; the running configuration stays, now and at later starts.
- The last desired document that was applied is kept on disk (last known good); a start merges it
  over the current base, so cameras stream before edgeHub is up.
- A direct method's patch changes the running configuration until the next twin read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from edgevision.config.load import merge, validate
from edgevision.config.model import AppConfig
from edgevision.errors import ConfigError
from edgevision.upstream.desired import DesiredDocument, LastKnownGood

log = logging.getLogger(__name__)

Changes = dict[str, list[str]]


def errors_by_key(error: ConfigError) -> dict[str, str]:
    """Each problem under its field path (slashes: twin property names cannot hold dots)."""
    errors: dict[str, str] = {}
    for problem in error.problems:
        where, _, why = problem.partition(": ")
        errors[where.replace(".", "/").replace("$", "_").replace(" ", "_") or "document"] = why or problem
    return errors


class Convergence:
    """Thread-safe. `attach` gives it the way to switch a running pipeline; before that, a new
    configuration only replaces the one the pipeline will start with."""

    def __init__(
        self,
        base_document: Mapping[str, Any],
        last_good: LastKnownGood | None = None,
        confine: Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """`confine(remote, under)`: what a remote document (twin, method) may name, given the
        document it is merged over; see config/remote.py."""
        self.base_document = dict(base_document)
        self._confine = confine or (lambda document, _under: dict(document))
        self.document = dict(base_document)
        self.config: AppConfig = validate(self.document)
        self.desired = DesiredDocument()
        self._last_good = last_good
        self._saved: tuple[Any, ...] | None = None
        self._lock = threading.RLock()
        self._switch: Callable[[AppConfig], Changes] | None = None
        # Told about every rejection (an event upstream) and every change (reported properties).
        self.on_rejected: Callable[[ConfigError, int | None, str], None] = lambda *_: None
        self.on_change: Callable[[], None] = lambda: None
        self.source = "local"
        self.status: dict[str, Any] = {
            "applied_version": None,
            "rejected_version": None,
            "last_error": None,
            "errors": None,
        }

    def restore(self) -> bool:
        """At start: the last known good desired document over the current base, if there is one."""
        remembered = self._last_good.load() if self._last_good is not None else None
        if remembered is None:
            return False
        try:
            candidate = merge(self.base_document, self._confine(remembered.document, self.base_document))
            config = validate(candidate)
        except ConfigError as exc:
            log.error("the last known good configuration does not fit the local base any more: %s", exc)
            return False
        self.desired = DesiredDocument(remembered.document, remembered.version)
        self.document, self.config, self.source = candidate, config, "last known good"
        self.status["applied_version"] = remembered.version
        self._saved = (remembered.document, remembered.version)
        log.warning("starting from the last known good configuration (desired $version %s)", remembered.version)
        return True

    @property
    def damaged(self) -> str | None:
        return self._last_good.damaged if self._last_good is not None else None

    def attach(self, start: Callable[[AppConfig], Callable[[AppConfig], Changes]]) -> None:
        """Start what runs the configuration, and switch it on every later change. Under the lock:
        a twin document that arrives meanwhile waits, then switches it like any later change."""
        with self._lock:
            self._switch = start(self.config)

    # -- sources -------------------------------------------------------------------------------

    def twin_document(self, desired: Mapping[str, Any]) -> None:
        """A whole desired document (a twin read): taken unless older, then converged to."""
        if self.desired.full(desired):
            self._converge()

    def twin_patch(self, patch: Mapping[str, Any]) -> None:
        """A desired patch: merged into the whole document, then converged to."""
        if not isinstance(patch, Mapping):
            log.error("desired patch of type %s ignored", type(patch).__name__)
            return
        if self.desired.patch(patch):
            self._converge()

    def apply_patch(self, patch: Any, source: str) -> Changes:
        """A full or partial configuration over the running one; ConfigError, nothing changed, if invalid."""
        with self._lock:
            if not isinstance(patch, Mapping):
                error = ConfigError([f"patch: a JSON object expected, not {type(patch).__name__}"])
                self._rejected(error, None, source)
                raise error
            return self._apply(merge(self.document, self._remote(patch, None, source, self.document)), None, source)

    def new_base(self, base_document: Mapping[str, Any], source: str = "file") -> Changes:
        """A new local base (the configuration file changed): the twin's document goes over it
        again and the whole is validated and applied, or rejected whole (reported; the running
        configuration and the old base stay)."""
        with self._lock:
            document, version = self.desired.snapshot()
            remote = self._remote(document, version, source, base_document) if document else {}
            changes = self._apply(merge(dict(base_document), remote), version, source)
            self.base_document = dict(base_document)
            return changes

    # -- applying --------------------------------------------------------------------------------

    def _converge(self) -> None:
        with self._lock:
            document, version = self.desired.snapshot()
            try:
                remote = self._remote(document, version, "twin", self.base_document)
                self._apply(merge(self.base_document, remote), version, "twin")
            except ConfigError:
                return  # reported; the running configuration stays
            if self._last_good is not None and self._saved != (document, version):
                self._last_good.save(document, version)
                self._saved = (document, version)

    def _remote(
        self, document: Mapping[str, Any], version: int | None, source: str, under: Mapping[str, Any]
    ) -> dict[str, Any]:
        try:
            return self._confine(document, under)
        except ConfigError as exc:
            self._rejected(exc, version, source)
            raise

    def _apply(self, candidate: dict[str, Any], version: int | None, source: str) -> Changes:
        try:
            config = validate(candidate)
            if self._switch is None or config == self.config:
                changes: Changes = {"live": [], "restarted": []}
            else:
                changes = self._switch(config)
        except ConfigError as exc:
            self._rejected(exc, version, source)
            raise
        except Exception as exc:  # what it asks for cannot be built (e.g. the model)
            error = ConfigError([f"model: {exc}"])
            self._rejected(error, version, source)
            raise error from exc
        self.document, self.config = candidate, config
        applied = version if version is not None else self.status.get("applied_version")
        self.status = {"applied_version": applied, "rejected_version": None, "last_error": None, "errors": None}
        if source == "twin":
            self.source = "twin"
        log.info("configuration from %s applied (version %s): %s", source, version, changes)
        self.on_change()
        return changes

    def rejected(self, error: ConfigError, version: int | None, source: str) -> None:
        """A configuration from `source` that could not even be read: reported like any rejection."""
        self._rejected(error, version, source)

    def _rejected(self, error: ConfigError, version: int | None, source: str) -> None:
        log.error("configuration from %s rejected (version %s): %s", source, version, error)
        self.status = {
            **self.status,
            "rejected_version": version,
            "last_error": str(error),
            "errors": errors_by_key(error),
        }
        self.on_rejected(error, version, source)
        self.on_change()
