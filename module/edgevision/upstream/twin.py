"""Module twin: desired properties as configuration, reported properties as status."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from edgevision.upstream.sdk import call_with_timeout

log = logging.getLogger(__name__)


class ReportedClient(Protocol):
    def patch_twin_reported_properties(self, reported_properties_patch: dict[str, Any]) -> None: ...


def desired_document(desired: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration part of a desired document or patch: without `$version`, `$metadata`."""
    return {
        k: (desired_document(v) if isinstance(v, Mapping) else v) for k, v in desired.items() if not k.startswith("$")
    }


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch that turns `old` into `new` (removed keys become null)."""
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif key not in old or before != value:
            patch[key] = value
    return patch


class Reporter:
    """Patches reported properties when the state changes, at most once per `min_interval_s`.

    Users of the SDK report memory growth when reported properties are patched on a timer, so
    only differences are sent, and never more often than the interval.
    """

    def __init__(
        self,
        client: Callable[[], ReportedClient],
        min_interval_s: float,
        ready: threading.Event | None = None,
        timeout_s: float = 15.0,
        on_timeout: Callable[[str], None] | None = None,
    ) -> None:
        self._client = client
        self._on_timeout = on_timeout
        self.min_interval_s = min_interval_s
        # Set while the link is up and subscribed: a request sent before the response topic is
        # subscribed again after a reconnect would wait for an answer that never comes.
        self._ready = ready
        self.timeout_s = timeout_s
        self._lock = threading.Condition()
        self._wanted: dict[str, Any] = {}
        self._reported: dict[str, Any] = {}
        self._last_sent = 0.0
        self._stop = threading.Event()
        self.patches_sent = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="twin-report", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()

    def update(self, state: Mapping[str, Any]) -> None:
        with self._lock:
            self._wanted = dict(state)
            if merge_patch(self._reported, self._wanted):
                self._lock.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                while not merge_patch(self._reported, self._wanted) and not self._stop.is_set():
                    self._lock.wait(1.0)
                if self._stop.is_set():
                    return
            wait = self._last_sent + self.min_interval_s - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            with self._lock:
                target = dict(self._wanted)
                patch = merge_patch(self._reported, target)
            if not patch:
                continue
            if self._ready is not None and not self._ready.is_set():
                self._ready.wait(1.0)
                continue
            try:
                # Bound now: a call that times out still runs later, with this patch.
                call_with_timeout(lambda p=patch: self._client().patch_twin_reported_properties(p), self.timeout_s)
            except Exception as exc:  # noqa: BLE001 - retried with the next change or interval
                self.failures += 1
                if isinstance(exc, TimeoutError) and self._on_timeout is not None:
                    self._on_timeout(f"reporting properties: {exc}")
                log.warning("reporting properties failed: %s", exc)
                self._stop.wait(self.min_interval_s)
                continue
            self._last_sent = time.monotonic()
            self.patches_sent += 1
            with self._lock:
                self._reported = target


class DesiredTracker:
    """Follows desired `$version`s so a twin re-read after a reconnect applies only what is new."""

    def __init__(self, apply: Callable[[dict[str, Any], int | None, bool], None]) -> None:
        self._apply = apply
        self.version: int | None = None
        self._lock = threading.Lock()

    def full(self, desired: Mapping[str, Any]) -> None:
        """A whole desired document (at start, or re-read after a reconnect)."""
        self._offer(desired, full=True)

    def patch(self, patch: Mapping[str, Any]) -> None:
        """A desired-properties patch (the SDK's patch handler)."""
        self._offer(patch, full=False)

    def _offer(self, document: Mapping[str, Any], full: bool) -> None:
        version = document.get("$version")
        with self._lock:
            if version is not None and self.version is not None and version <= self.version:
                return
            self.version = version if version is not None else self.version
        self._apply(desired_document(document), version, full)
