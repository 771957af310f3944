"""Reported properties: what they say (objects only: twins hold no arrays), and the reporter that
patches them on change at a bounded rate."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from edgevision import __version__
from edgevision.accel.discover import AcceleratorInfo
from edgevision.config.load import merge
from edgevision.redaction import redact_document
from edgevision.upstream.sdk import call_with_timeout

log = logging.getLogger(__name__)


class ReportedClient(Protocol):
    def patch_twin_reported_properties(self, reported_properties_patch: dict[str, Any]) -> None: ...


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
        # Counts twin reads: a patch in flight when the twin is read again was made against a
        # document that is no longer the twin's.
        self._assumed = 0
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

    def assume(self, reported: Mapping[str, Any]) -> None:
        """What the twin says is reported now (read with the twin): the next patch turns it into
        the wanted state, removing what an earlier run left there."""
        with self._lock:
            self._reported = {k: v for k, v in reported.items() if not k.startswith("$")}
            self._assumed += 1
            self._lock.notify_all()

    def update(self, state: Mapping[str, Any]) -> None:
        with self._lock:
            # A twin cannot hold a null (in a patch it deletes): a value that is None is left out,
            # or the reporter and the twin would never agree and the patch would go out forever.
            self._wanted = without_nulls(state)
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
            if self._ready is not None and not self._ready.is_set():
                self._ready.wait(1.0)
                continue
            with self._lock:
                target = dict(self._wanted)
                patch = merge_patch(self._reported, target)
                assumed = self._assumed
            if not patch:
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
                if self._assumed == assumed:
                    self._reported = target
                else:
                    # The twin was read meanwhile: what it said, with this patch on top, is what
                    # it holds; the next round diffs against that.
                    self._reported = merge(self._reported, patch)


def without_nulls(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: without_nulls(v) if isinstance(v, Mapping) else v for k, v in document.items() if v is not None}


def reported_properties(
    *,
    status: Mapping[str, Any],
    accelerator: AcceleratorInfo | None,
    mode: str | None,
    config_status: Mapping[str, Any],
    results_mode: str,
    outbox: Mapping[str, Any],
    twin: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    provider = status.get("provider") or {}
    accel = accelerator
    gpu = accel.gpus[0] if accel and accel.gpus else None
    return redact_document(
        {
            "module": {"version": __version__, "started_at": status.get("started_at"), "mode": mode},
            "accelerator": {
                "mode": accel.mode if accel else None,
                "gpu": gpu.name if gpu else None,
                "memory_total_mib": gpu.memory_total_mib if gpu else None,
                "driver_version": accel.driver_version if accel else None,
                "cuda_driver_version": accel.cuda_driver_version if accel else None,
                "reasons": "; ".join(accel.reasons) if accel and accel.reasons else None,
            },
            "inference": {
                "model": status.get("model"),
                "model_verified": status.get("model_verified"),
                "model_verification": status.get("model_verification"),
                "provider": provider.get("provider"),
                "requested": ",".join(provider.get("requested", [])),
                "dropped": dict(provider.get("dropped", {})) or None,
            },
            "cameras": {
                cid: {"state": c["state"], "last_error": c["last_error"]} for cid, c in status["cameras"].items()
            },
            # Each model in use; twins hold no arrays, so its cameras are one comma-separated string.
            "models": {
                key: {
                    "model": m.get("model"),
                    "provider": (m.get("provider") or {}).get("provider"),
                    "cameras": ",".join(m.get("cameras", [])),
                }
                for key, m in (status.get("models") or {}).items()
            },
            "config": dict(config_status),
            "upstream": {"results_mode": results_mode, **outbox},
            "twin": {"state": twin.get("state"), "last_sync": twin.get("last_sync")} if twin else None,
        }
    )
