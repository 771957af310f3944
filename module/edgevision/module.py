"""The IoT Edge module: the pipeline, and inside IoT Edge its link to IoT Hub."""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import platformdirs

from edgevision import __version__
from edgevision.accel import AcceleratorInfo
from edgevision.config import AppConfig, ConfigError, UpstreamConfig, merge, validate
from edgevision.http import HttpServer
from edgevision.pipeline import Pipeline
from edgevision.publish.sink import Sink, open_sink
from edgevision.snapshots import Snapshot
from edgevision.upstream.connection import Connection, edge_mode
from edgevision.upstream.methods import Methods
from edgevision.upstream.outbox import Outbox, OutboxLimits
from edgevision.upstream.reduce import ResultsReducer
from edgevision.upstream.sender import MessageSender
from edgevision.upstream.sink import IoTHubSink
from edgevision.upstream.twin import DesiredTracker, Reporter, call_with_timeout

log = logging.getLogger(__name__)


def _reducer(config: AppConfig) -> ResultsReducer:
    upstream = config.upstream
    return ResultsReducer(upstream.results_mode, upstream.heartbeat_s, upstream.summary_interval_s)


class Module:
    """Stand-alone (local sink) or IoT Edge (outputs, twin, methods), chosen from the environment."""

    def __init__(
        self,
        base_document: Mapping[str, Any],
        *,
        environ: Mapping[str, str] | None = None,
        accelerator: AcceleratorInfo | None = None,
        on_tick: Callable[[Pipeline], None] | None = None,
        twin_timeout_s: float = 15.0,
    ) -> None:
        self.base_document = dict(base_document)
        self.document = dict(base_document)
        self.config = validate(self.document)
        self._environ = os.environ if environ is None else environ
        self.mode = edge_mode(self._environ)
        self.accelerator = accelerator
        self._on_tick = on_tick
        self._twin_timeout_s = twin_timeout_s
        self._lock = threading.RLock()
        self.connection: Connection | None = None
        self.sender: MessageSender | None = None
        self.outbox: Outbox | None = None
        # Tells this process's messages apart from an earlier run's (sequence numbers restart).
        self.run_id = uuid.uuid4().hex[:12]
        self.reporter: Reporter | None = None
        self.iot_sink: IoTHubSink | None = None
        self.pipeline: Pipeline | None = None
        self.http: HttpServer | None = None
        self.methods = Methods(self)
        self.tracker = DesiredTracker(self._apply_desired)
        self.config_status: dict[str, Any] = {"applied_version": None, "rejected_version": None, "last_error": None}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._start_http()
        if self.mode is None:
            log.warning(
                "no IoT Edge runtime (no IOTEDGE_* or EdgeHubConnectionString variables): "
                "running stand-alone with the local sink"
            )
            self.pipeline = Pipeline(self.config, on_tick=self._tick, accelerator=self.accelerator)
            self.pipeline.start()
            return
        log.info("IoT Edge runtime found (%s): results, metrics and events go to module outputs", self.mode)
        self.connection = Connection(self.config.upstream.connection_retry_interval_s)
        self.connection.start()
        desired = self._read_twin(self._twin_timeout_s)
        if desired is not None:
            self._apply_initial(desired)
        else:
            log.warning("no twin within %.0f s: starting with the local configuration", self._twin_timeout_s)
        connection = self.connection
        self.outbox = Outbox(outbox_path(self.config.upstream, self._environ), _outbox_limits(self.config))
        self.sender = MessageSender(lambda: connection.client, self.outbox, self.run_id, on_timeout=connection.suspect)
        self.sender.start()
        local: Sink | None = None
        if self.config.sink.kind == "jsonl":
            local = open_sink("jsonl", self.config.sink.path, self.config.sink.rotate_mb, self.config.sink.backups)
        self.iot_sink = IoTHubSink(self.sender, _reducer(self.config), local)
        self.pipeline = Pipeline(
            self.config, self.iot_sink, on_tick=self._tick, accelerator=self.accelerator, keep_alive=True
        )
        self.pipeline.start()
        self.reporter = Reporter(
            lambda: connection.client,
            self.config.upstream.report_min_interval_s,
            ready=connection.ready,
            on_timeout=connection.suspect,
        )
        self.reporter.update(self.reported_state())
        self.reporter.start()
        # Set before subscribing: the link may drop while the handlers are attached.
        self.connection.on_reconnect = self._after_reconnect
        self.connection.attach(on_method=self._on_method, on_desired_patch=self.tracker.patch)
        # Patches that came while the handler was not yet set, or while disconnected, are
        # caught up from the full twin.
        self._resync_twin()

    def _start_http(self) -> None:
        settings = self.config.http
        if not settings.enabled:
            return
        try:
            self.http = HttpServer(self, settings.bind, settings.port, settings.preview_fps, settings.preview_viewers)
        except OSError as exc:
            log.error("HTTP endpoints unavailable (%s:%d): %s", settings.bind, settings.port, exc.strerror)
            return
        self.http.start()

    def request_stop(self) -> None:
        if self.pipeline is not None:
            self.pipeline.request_stop()

    def wait(self, timeout: float | None = None) -> bool:
        done = self.pipeline.wait(timeout) if self.pipeline is not None else True
        if done:
            self._close_upstream()
            if self.http is not None:
                self.http.stop()
                self.http = None
        return done

    def _close_upstream(self) -> None:
        if self.iot_sink is not None:
            # Unfinished summaries go out, the local copy is closed, the queue gets 5 s to drain.
            self.iot_sink.close()
            self.iot_sink = None
        if self.reporter is not None:
            self.reporter.update(self.reported_state())
            self.reporter.stop()
            self.reporter = None
        if self.sender is not None:
            self.sender.stop()
        if self.outbox is not None:
            self.outbox.close()
        if self.connection is not None:
            self.connection.shutdown()
            self.connection = None

    # -- twin ----------------------------------------------------------------------------------

    def _read_twin(self, timeout: float) -> dict[str, Any] | None:
        connection = self.connection
        assert connection is not None
        try:
            twin = call_with_timeout(lambda: connection.client.get_twin(), timeout)
        except TimeoutError as exc:
            if connection.connected.is_set():
                connection.suspect(f"reading the twin: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001
            log.warning("reading the module twin failed: %s", exc)
            return None
        return twin.get("desired", {}) if isinstance(twin, dict) else None

    def _after_reconnect(self) -> None:
        self._resync_twin(renew_subscriptions=True)

    def _resync_twin(self, renew_subscriptions: bool = False) -> None:
        """In the background: optionally subscribe again, then apply the full twin if it is newer."""

        def resync() -> None:
            assert self.connection is not None
            if renew_subscriptions:
                self.connection.renew_subscriptions()
            desired = self._read_twin(60.0)
            if desired is not None:
                self.tracker.full(desired)

        threading.Thread(target=resync, name="twin-resync", daemon=True).start()

    def _apply_initial(self, desired: Mapping[str, Any]) -> None:
        """Before the pipeline exists: the twin decides the first configuration."""
        from edgevision.upstream.twin import desired_document

        version = desired.get("$version")
        self.tracker.version = version
        candidate = merge(self.base_document, desired_document(desired))
        try:
            self.config = validate(candidate)
        except ConfigError as exc:
            log.error("desired properties rejected, starting with the local configuration: %s", exc)
            self.config_status = {"applied_version": None, "rejected_version": version, "last_error": str(exc)}
            return
        self.document = candidate
        self.config_status = {"applied_version": version, "rejected_version": None, "last_error": None}

    def _apply_desired(self, document: dict[str, Any], version: int | None, full: bool) -> None:
        try:
            self._apply(document, full=full, version=version, source="twin")
        except ConfigError:
            pass  # already reported

    def apply_patch(self, patch: Mapping[str, Any], source: str = "method") -> dict[str, list[str]]:
        """Apply a full or partial configuration; raises ConfigError and changes nothing if invalid."""
        if not isinstance(patch, Mapping):
            error = ConfigError([f"patch: a JSON object expected, not {type(patch).__name__}"])
            self._rejected(error, None, source)
            raise error
        return self._apply(dict(patch), full=False, version=None, source=source)

    def _apply(self, document: dict[str, Any], *, full: bool, version: int | None, source: str) -> dict[str, list[str]]:
        with self._lock:
            candidate = merge(self.base_document if full else self.document, document)
            try:
                config = validate(candidate)
                changes = self._switch(config)
            except ConfigError as exc:
                self._rejected(exc, version, source)
                raise
            except Exception as exc:
                error = ConfigError([f"model: {exc}"])
                self._rejected(error, version, source)
                raise error from exc
            self.document, self.config = candidate, config
            applied = version if version is not None else self.config_status.get("applied_version")
            self.config_status = {"applied_version": applied, "rejected_version": None, "last_error": None}
        log.info("configuration from %s applied (version %s): %s", source, version, changes)
        self._report_now()
        return changes

    def _rejected(self, error: ConfigError, version: int | None, source: str) -> None:
        log.error("configuration from %s rejected (version %s): %s", source, version, error)
        self.config_status = {**self.config_status, "rejected_version": version, "last_error": str(error)}
        if self.pipeline is not None:
            self.pipeline.event("config_rejected", source=source, version=version, errors=error.problems)
        self._report_now()

    def _switch(self, config: AppConfig) -> dict[str, list[str]]:
        assert self.pipeline is not None
        changes = self.pipeline.apply(config)
        if config.upstream != self.config.upstream:
            if self.iot_sink is not None:
                self.iot_sink.set_reducer(_reducer(config))
            if self.outbox is not None:
                self.outbox.limits = _outbox_limits(config)
            if self.reporter is not None:
                self.reporter.min_interval_s = config.upstream.report_min_interval_s
            changes["live"].append("upstream")
        return changes

    # -- status ----------------------------------------------------------------------------------

    def _tick(self, pipeline: Pipeline) -> None:
        self._report_now()
        if self._on_tick is not None:
            self._on_tick(pipeline)

    def _report_now(self) -> None:
        if self.reporter is not None and self.pipeline is not None:
            self.reporter.update(self.reported_state())

    def reported_state(self) -> dict[str, Any]:
        """What the twin's reported properties say (objects only: twins hold no arrays)."""
        assert self.pipeline is not None
        status = self.pipeline.status()
        provider = status.get("provider") or {}
        accel = self.accelerator
        gpu = accel.gpus[0] if accel and accel.gpus else None
        return {
            "module": {"version": __version__, "started_at": status.get("started_at"), "mode": self.mode},
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
                "provider": provider.get("provider"),
                "requested": ",".join(provider.get("requested", [])),
                "dropped": dict(provider.get("dropped", {})) or None,
            },
            "cameras": {
                cid: {"state": c["state"], "last_error": c["last_error"]} for cid, c in status["cameras"].items()
            },
            "config": dict(self.config_status),
            "upstream": {
                "results_mode": self.config.upstream.results_mode,
                **(
                    {"outbox_queued": len(self.outbox), "outbox_dropped": sum(self.outbox.dropped.values())}
                    if self.outbox is not None
                    else {}
                ),
            },
        }

    def status(self) -> dict[str, Any]:
        assert self.pipeline is not None
        document = self.pipeline.status()
        document["config"] = dict(self.config_status)
        document["configuration"] = self.config.model_dump(mode="json")
        document["upstream"] = {
            "mode": self.mode,
            "results_mode": self.config.upstream.results_mode,
            **(self.connection.stats() if self.connection else {}),
            **(self.sender.stats() if self.sender else {}),
        }
        snapshot = self.pipeline.metrics_snapshot()
        document["totals"] = snapshot["totals"]
        return json.loads(json.dumps(document, default=str))

    def camera_ids(self) -> list[str]:
        return [c.id for c in self.config.cameras]

    def restart_camera(self, camera: str) -> None:
        assert self.pipeline is not None
        self.pipeline.restart_camera(camera)

    def snapshot(self, camera: str, max_bytes: int) -> Snapshot | None:
        assert self.pipeline is not None
        return self.pipeline.latest.snapshot(camera, max_bytes)

    def _on_method(self, request: Any) -> None:
        from azure.iot.device import MethodResponse

        status, payload = self.methods(request.name, request.payload)
        log.info("method %s -> %d", request.name, status)
        try:
            self.connection.client.send_method_response(  # type: ignore[union-attr]
                MethodResponse.create_from_method_request(request, status, payload)
            )
        except Exception as exc:  # noqa: BLE001
            log.error("cannot answer method %s: %s", request.name, exc)


def _outbox_limits(config: AppConfig) -> OutboxLimits:
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
