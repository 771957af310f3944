"""The module's link to IoT Hub through edgeHub: the client, the on-disk outbox and its sender,
reported properties, and the twin sync that runs after every (re)connection. The module decides
what to do with what arrives; this class only moves it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from edgevision.config.model import AppConfig, UpstreamConfig
from edgevision.errors import UpstreamError
from edgevision.publish.messages import iso_time
from edgevision.publish.results_modes import ResultsReducer
from edgevision.publish.sinks import Sink
from edgevision.state import state_dir
from edgevision.upstream.connection import Connection, client_factory, stale_after
from edgevision.upstream.iothub import IoTHubSink
from edgevision.upstream.outbox import Outbox, OutboxLimits
from edgevision.upstream.reported import Reporter
from edgevision.upstream.sdk import call_with_timeout, classify
from edgevision.upstream.sender import MessageSender

log = logging.getLogger(__name__)

# While the twin cannot be read: retry after 0.5 s, doubling, never waiting more than this.
SYNC_RETRY_MAX_S = 10.0
_TWIN_READ_TIMEOUT_S = 15.0


def reducer_for(config: AppConfig) -> ResultsReducer:
    upstream = config.upstream
    return ResultsReducer(upstream.results_mode, upstream.heartbeat_s, upstream.summary_interval_s)


def outbox_limits(config: AppConfig) -> OutboxLimits:
    upstream = config.upstream
    return OutboxLimits(
        max_messages=upstream.queue_size,
        max_bytes=int(upstream.outbox_max_mb * 2**20),
        max_age_s=upstream.outbox_max_age_s,
    )


def outbox_path(upstream: UpstreamConfig, environ: Mapping[str, str]) -> str:
    return upstream.outbox_path or str(state_dir(environ) / "outbox.sqlite")


class EdgeLink:
    """Owns the upstream parts; `sink()` is what the pipeline publishes to.

    Twin sync: after every connection (the first, a reconnect, a new client) the link subscribes
    afresh, reads the whole twin, hands the desired document to `on_desired`, and has the
    reported properties rewritten from the module's real state (stale keys removed). Until that
    succeeds it retries with capped backoff; `twin_state` says "unreachable" or "synced".
    """

    def __init__(
        self, config: AppConfig, environ: Mapping[str, str], run_id: str, connection: Connection | None = None
    ) -> None:
        upstream = config.upstream
        if connection is None:
            create = client_factory(environ, upstream.connection_retry_interval_s)
            connection = Connection(create, upstream.connection_retry_interval_s, upstream.stale_after_s)
        self.connection = connection
        self._environ = environ
        self.run_id = run_id
        self.outbox: Outbox | None = None
        self.sender: MessageSender | None = None
        self.iot_sink: IoTHubSink | None = None
        # Set once subscriptions are in place after a connection: reported patches wait for it
        # (a request sent before the response topic is subscribed waits for an answer forever).
        self.ready = threading.Event()
        # Made now, started later: a twin read that lands before reporting starts must still
        # tell the reporter what an earlier run left in the reported properties.
        self.reporter = Reporter(
            lambda: connection.client,
            upstream.report_min_interval_s,
            ready=self.ready,
            on_timeout=self.connection.suspect,
        )
        self.twin_state = "unreachable"
        self.twin_error: str | None = "not connected yet"
        self.last_sync: float | None = None
        self.syncs = 0
        # Set after the first whole desired document was handed over.
        self.first_sync = threading.Event()
        self._sync_wanted = threading.Event()
        self._stop = threading.Event()
        self._handlers: dict[str, Callable[..., None]] = {}
        self._on_desired: Callable[[dict[str, Any]], None] = lambda _desired: None

    def start(
        self,
        on_method: Callable[[Any], None],
        on_desired_patch: Callable[[Any], None],
        on_desired: Callable[[dict[str, Any]], None],
    ) -> None:
        """Connect in the background (edgeHub may come up long after the module) and keep the
        twin in sync; methods and patches arrive from the moment the link is up."""
        self._handlers = {
            "on_method_request_received": on_method,
            "on_twin_desired_properties_patch_received": on_desired_patch,
        }
        self._on_desired = on_desired
        self.connection.on_connected = self._sync_wanted.set
        self.connection.on_disconnected = self._lost
        self._sync_wanted.set()
        threading.Thread(target=self._sync_loop, name="twin-sync", daemon=True).start()
        self.connection.start()

    def _lost(self) -> None:
        self.ready.clear()
        if not self._stop.is_set():
            self._set_twin("unreachable", "edgeHub disconnected")

    def _set_twin(self, state: str, error: str | None = None) -> None:
        if state != self.twin_state:
            (log.info if state == "synced" else log.warning)("module twin %s%s", state, f": {error}" if error else "")
        self.twin_state, self.twin_error = state, error

    def _sync_loop(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            if not self._sync_wanted.wait(1.0):
                continue
            if not self.connection.connected.wait(1.0):
                continue  # the connect loop and the SDK bring the link up; sync then
            self._sync_wanted.clear()
            try:
                self._sync_once()
            except Exception as exc:  # noqa: BLE001 - retried with backoff; the twin is never given up
                error = exc if isinstance(exc, UpstreamError) else classify(exc, "syncing the module twin")
                self._set_twin("unreachable", str(error))
                self._sync_wanted.set()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, SYNC_RETRY_MAX_S)
                continue
            backoff = 0.5

    def _sync_once(self) -> None:
        self.connection.subscribe(self._handlers)
        client = self.connection.client
        try:
            twin = call_with_timeout(client.get_twin, _TWIN_READ_TIMEOUT_S)
        except TimeoutError as exc:
            self.connection.suspect(f"reading the twin: {exc}")
            raise
        if not isinstance(twin, dict) or not isinstance(twin.get("desired", {}), dict):
            raise UpstreamError(f"the twin read gave {type(twin).__name__}, not a twin document", transient=True)
        self.reporter.assume(twin.get("reported") or {})
        # Reporting waits for this: subscribed again, and diffing against what the twin holds
        # now (a patch made against an empty document would never null an earlier run's keys).
        self.ready.set()
        self._on_desired(twin.get("desired") or {})
        self.syncs += 1
        self.last_sync = time.time()
        self._set_twin("synced")
        self.first_sync.set()

    def sink(self, config: AppConfig, local: Sink | None) -> IoTHubSink:
        """Open the outbox and start its sender; the sink that feeds them (and `local`, if any)."""
        connection = self.connection
        self.outbox = Outbox(outbox_path(config.upstream, self._environ), outbox_limits(config))
        self.sender = MessageSender(lambda: connection.client, self.outbox, self.run_id, on_timeout=connection.suspect)
        self.sender.start()
        self.iot_sink = IoTHubSink(self.sender, reducer_for(config), local)
        return self.iot_sink

    def start_reporting(self, state: Callable[[], Mapping[str, Any]]) -> None:
        self.reporter.update(state())
        self.reporter.start()

    def report(self, state: Mapping[str, Any]) -> None:
        self.reporter.update(state)

    def answer(self, request: Any, status: int, payload: Any) -> None:
        from azure.iot.device import MethodResponse

        try:
            self.connection.client.send_method_response(
                MethodResponse.create_from_method_request(request, status, payload)
            )
        except Exception as exc:  # noqa: BLE001 - the caller times out; the module carries on
            log.error("cannot answer method %s: %s", request.name, exc)

    def retune(self, config: AppConfig) -> None:
        """A new upstream section: results mode, outbox limits, report interval, stale time."""
        upstream = config.upstream
        self.connection.stale_after_s = stale_after(upstream.connection_retry_interval_s, upstream.stale_after_s)
        if self.iot_sink is not None:
            self.iot_sink.set_reducer(reducer_for(config))
        if self.outbox is not None:
            self.outbox.set_limits(outbox_limits(config))
        self.reporter.min_interval_s = config.upstream.report_min_interval_s

    def twin_status(self) -> dict[str, Any]:
        return {
            "state": self.twin_state,
            "last_error": self.twin_error if self.twin_state != "synced" else None,
            "last_sync": iso_time(self.last_sync) if self.last_sync else None,
            "syncs": self.syncs,
        }

    def stats(self) -> dict[str, Any]:
        return {"link": "iothub", **self.connection.stats(), **(self.sender.stats() if self.sender else {})}

    def outbox_counts(self) -> dict[str, Any]:
        """The outbox in reported properties and metrics: what waits, what was lost and why."""
        return self.outbox.counts() if self.outbox is not None else {}

    def close(self, final_state: Mapping[str, Any] | None, deadline: float | None = None) -> None:
        """Stop, within `deadline` (monotonic) in all: each step gets at most what is left of it,
        so a frozen edgeHub cannot hold the stop past the runtime's grace. What is not sent by
        then stays in the outbox for the next start."""
        deadline = deadline if deadline is not None else time.monotonic() + 8.0

        def left(at_most: float) -> float:
            return max(0.0, min(at_most, deadline - time.monotonic()))

        self._stop.set()
        if self.iot_sink is not None:
            # Unfinished summaries go out, the local copy is closed, the queue gets a while to drain.
            self.iot_sink.close(flush_s=left(5.0) * 0.5)
        if final_state is not None:
            self.reporter.update(final_state)
        self.reporter.stop()
        if self.sender is not None:
            self.sender.stop(join_s=left(self.sender.call_timeout_s + 1))
        if self.outbox is not None:
            self.outbox.close()
        self.connection.shutdown(timeout_s=left(5.0))
