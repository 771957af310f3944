"""The module's link to IoT Hub through edgeHub: the client, the on-disk outbox and its sender,
reported properties, twin reads and subscriptions. The module decides what to do with what
arrives; this class only moves it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import platformdirs

from edgevision.config.model import AppConfig, UpstreamConfig
from edgevision.publish.iothub import IoTHubSink
from edgevision.publish.results_modes import ResultsReducer
from edgevision.publish.sinks import Sink
from edgevision.upstream.connection import Connection, stale_after
from edgevision.upstream.outbox import Outbox, OutboxLimits
from edgevision.upstream.sdk import call_with_timeout, classify
from edgevision.upstream.sender import MessageSender
from edgevision.upstream.twin import Reporter

log = logging.getLogger(__name__)


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
    if upstream.outbox_path:
        return upstream.outbox_path
    state = environ.get("EDGEVISION_STATE_DIR") or platformdirs.user_state_dir("edgevision")
    return str(Path(state) / "outbox.sqlite")


class EdgeLink:
    """Owns the upstream parts; `sink()` is what the pipeline publishes to."""

    def __init__(self, config: AppConfig, environ: Mapping[str, str], run_id: str) -> None:
        upstream = config.upstream
        try:
            self.connection = Connection(upstream.connection_retry_interval_s, upstream.stale_after_s)
        except Exception as exc:  # classified and raised as one line
            raise classify(exc, "creating the IoT Hub module client") from exc
        self._environ = environ
        self.run_id = run_id
        self.outbox: Outbox | None = None
        self.sender: MessageSender | None = None
        self.iot_sink: IoTHubSink | None = None
        self.reporter: Reporter | None = None

    def connect(self) -> None:
        """Start connecting in the background (edgeHub may come up after the module)."""
        self.connection.start()

    def read_desired(self, timeout: float) -> dict[str, Any] | None:
        """The twin's desired properties, or None if it cannot be read in time."""
        connection = self.connection
        try:
            twin = call_with_timeout(connection.client.get_twin, timeout)
        except TimeoutError as exc:
            if connection.connected.is_set():
                connection.suspect(f"reading the twin: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - any SDK failure means "not now"
            log.warning("%s", classify(exc, "reading the module twin"))
            return None
        return twin.get("desired", {}) if isinstance(twin, dict) else None

    def sink(self, config: AppConfig, local: Sink | None) -> IoTHubSink:
        """Open the outbox and start its sender; the sink that feeds them (and `local`, if any)."""
        connection = self.connection
        self.outbox = Outbox(outbox_path(config.upstream, self._environ), outbox_limits(config))
        self.sender = MessageSender(lambda: connection.client, self.outbox, self.run_id, on_timeout=connection.suspect)
        self.sender.start()
        self.iot_sink = IoTHubSink(self.sender, reducer_for(config), local)
        return self.iot_sink

    def start_reporting(self, config: AppConfig, state: Mapping[str, Any]) -> None:
        connection = self.connection
        self.reporter = Reporter(
            lambda: connection.client,
            config.upstream.report_min_interval_s,
            ready=connection.ready,
            on_timeout=connection.suspect,
        )
        self.reporter.update(state)
        self.reporter.start()

    def report(self, state: Mapping[str, Any]) -> None:
        if self.reporter is not None:
            self.reporter.update(state)

    def attach(
        self,
        on_method: Callable[[Any], None],
        on_desired_patch: Callable[[Any], None],
        on_desired: Callable[[dict[str, Any]], None],
    ) -> None:
        """Receive methods and patches; after every reconnect, subscribe again and re-read the twin
        (`on_desired` gets the whole desired document)."""
        self._on_desired = on_desired
        # Set before subscribing: the link may drop while the handlers are attached.
        self.connection.on_reconnect = lambda: self.resync(renew_subscriptions=True)
        self.connection.attach(on_method=on_method, on_desired_patch=on_desired_patch)
        # Patches that came while the handler was not yet set, or while disconnected, are
        # caught up from the full twin.
        self.resync()

    def resync(self, renew_subscriptions: bool = False) -> None:
        """In the background: optionally subscribe again, then hand over the full desired document."""

        def run() -> None:
            if renew_subscriptions:
                self.connection.renew_subscriptions()
            desired = self.read_desired(60.0)
            if desired is not None:
                self._on_desired(desired)

        threading.Thread(target=run, name="twin-resync", daemon=True).start()

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
            self.outbox.limits = outbox_limits(config)
        if self.reporter is not None:
            self.reporter.min_interval_s = config.upstream.report_min_interval_s

    def stats(self) -> dict[str, Any]:
        return {**self.connection.stats(), **(self.sender.stats() if self.sender else {})}

    def outbox_counts(self) -> dict[str, int]:
        if self.outbox is None:
            return {}
        return {"outbox_queued": len(self.outbox), "outbox_dropped": sum(self.outbox.dropped.values())}

    def close(self, final_state: Mapping[str, Any] | None) -> None:
        if self.iot_sink is not None:
            # Unfinished summaries go out, the local copy is closed, the queue gets 5 s to drain.
            self.iot_sink.close()
        if self.reporter is not None:
            if final_state is not None:
                self.reporter.update(final_state)
            self.reporter.stop()
        if self.sender is not None:
            self.sender.stop()
        if self.outbox is not None:
            self.outbox.close()
        self.connection.shutdown()
