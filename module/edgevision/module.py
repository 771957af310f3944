"""The IoT Edge module: the pipeline, its endpoints, and inside IoT Edge its link to IoT Hub.

`Module` implements edgevision.control.Control, the one interface the HTTP endpoints, the
Prometheus exposition and the direct methods use.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from edgevision.accel.discover import AcceleratorInfo
from edgevision.config.load import merge, validate
from edgevision.config.model import AppConfig
from edgevision.control import Control, PreviewImage, Probe
from edgevision.endpoints.http import HttpServer
from edgevision.errors import ConfigError, NotReady
from edgevision.pipeline import reconfigure
from edgevision.pipeline.build import Seams
from edgevision.pipeline.pipeline import Pipeline
from edgevision.publish.sinks import Sink, SinkSwitch, open_sink
from edgevision.upstream.connection import edge_mode
from edgevision.upstream.link import EdgeLink
from edgevision.upstream.methods import Methods
from edgevision.upstream.reported import reported_properties
from edgevision.upstream.twin import DesiredTracker, desired_document

log = logging.getLogger(__name__)


class Module:
    """Stand-alone (local sink) or IoT Edge (outputs, twin, methods), chosen from the environment."""

    def __init__(
        self,
        base_document: Mapping[str, Any],
        *,
        environ: Mapping[str, str] | None = None,
        accelerator: AcceleratorInfo | None = None,
        on_tick: Callable[[Control], None] | None = None,
        twin_timeout_s: float = 15.0,
        seams: Seams | None = None,
    ) -> None:
        """`seams`: the pipeline's neighbours (engine loader, model loader, source factory)."""
        self.base_document = dict(base_document)
        self.document = dict(base_document)
        self.config = validate(self.document)
        self._environ = os.environ if environ is None else environ
        self.mode = edge_mode(self._environ)
        self.accelerator = accelerator
        self._on_tick = on_tick
        self._twin_timeout_s = twin_timeout_s
        self._seams = seams
        self._lock = threading.RLock()
        # Tells this process's messages apart from an earlier run's (sequence numbers restart).
        self.run_id = uuid.uuid4().hex[:12]
        self.link: EdgeLink | None = None
        self._local: SinkSwitch | None = None
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
            self._local = SinkSwitch(open_sink(self.config.sink))
            self._start_pipeline(self._local, keep_alive=False)
            return
        log.info("IoT Edge runtime found (%s): results, metrics and events go to module outputs", self.mode)
        self.link = EdgeLink(self.config, self._environ, self.run_id)
        self.link.connect()
        desired = self.link.read_desired(self._twin_timeout_s)
        if desired is not None:
            self._apply_initial(desired)
            self.link.retune(self.config)
        else:
            log.warning("no twin within %.0f s: starting with the local configuration", self._twin_timeout_s)
        self._local = SinkSwitch(open_sink(self.config.sink, stdout=False))
        self._start_pipeline(self.link.sink(self.config, self._local), keep_alive=True)
        self.link.start_reporting(self.config, self.reported_state())
        self.link.attach(on_method=self._on_method, on_desired_patch=self.tracker.patch, on_desired=self.tracker.full)

    def _start_pipeline(self, sink: Sink, keep_alive: bool) -> None:
        self.pipeline = Pipeline(
            self.config,
            sink,
            on_tick=self._tick,
            accelerator=self.accelerator,
            keep_alive=keep_alive,
            seams=self._seams,
        )
        self.pipeline.start()

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
            if self.link is not None:
                self.link.close(self.reported_state() if self.pipeline is not None else None)
                self.link = None
            if self._local is not None:
                self._local.close()
                self._local = None
            if self.http is not None:
                self.http.stop()
                self.http = None
        return done

    # -- configuration -------------------------------------------------------------------------

    def _apply_initial(self, desired: Mapping[str, Any]) -> None:
        """Before the pipeline exists: the twin decides the first configuration."""
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

    def apply_patch(self, patch: Any, source: str = "method") -> dict[str, list[str]]:
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
            except Exception as exc:  # e.g. the new model cannot be loaded
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
        """The pipeline takes what is its; the sink and the upstream link are the module's."""
        pipeline = self._pipeline()
        actions = reconfigure.plan(self.config, config)
        changes = pipeline.apply(config)
        for action in actions:
            if isinstance(action, reconfigure.ReopenSink) and self._local is not None:
                self._local.replace(open_sink(action.sink, stdout=self.link is None))
            elif isinstance(action, reconfigure.RetuneUpstream) and self.link is not None:
                self.link.retune(config)
        return changes

    # -- status ----------------------------------------------------------------------------------

    def _tick(self, _pipeline: Pipeline) -> None:
        self._report_now()
        if self._on_tick is not None:
            self._on_tick(self)

    def _report_now(self) -> None:
        if self.link is not None and self.pipeline is not None:
            self.link.report(self.reported_state())

    def reported_state(self) -> dict[str, Any]:
        return reported_properties(
            status=self._pipeline().status(),
            accelerator=self.accelerator,
            mode=self.mode,
            config_status=self.config_status,
            results_mode=self.config.upstream.results_mode,
            outbox=self.link.outbox_counts() if self.link is not None else {},
        )

    def _pipeline(self) -> Pipeline:
        if self.pipeline is None:
            raise NotReady("starting")
        return self.pipeline

    # -- Control -------------------------------------------------------------------------------

    def health(self) -> Probe:
        if self.pipeline is None:
            return Probe(False, {"status": "starting"})
        return self.pipeline.health()

    def readiness(self) -> Probe:
        if self.pipeline is None:
            return Probe(False, {"ready": False, "reasons": ["starting"]})
        return self.pipeline.readiness()

    def status(self) -> dict[str, Any]:
        pipeline = self._pipeline()
        document = pipeline.status()
        document["config"] = dict(self.config_status)
        document["configuration"] = self.config.model_dump(mode="json")
        document["upstream"] = {
            "mode": self.mode,
            "results_mode": self.config.upstream.results_mode,
            **(self.link.stats() if self.link is not None else {}),
        }
        document["totals"] = pipeline.metrics_snapshot()["totals"]
        return json.loads(json.dumps(document, default=str))

    def metrics_snapshot(self) -> dict[str, Any]:
        pipeline = self._pipeline()
        return {**pipeline.metrics_snapshot(), "latency_histograms": pipeline.metrics.latency_histograms()}

    def camera_ids(self) -> list[str]:
        return self._pipeline().camera_ids()

    def snapshot(self, camera: str, max_bytes: int) -> PreviewImage | None:
        return self._pipeline().snapshot(camera, max_bytes)

    def restart_camera(self, camera: str) -> None:
        self._pipeline().restart_camera(camera)

    def score(self, image: np.ndarray) -> dict[str, Any]:
        return self._pipeline().score(image)

    def _on_method(self, request: Any) -> None:
        status, payload = self.methods(request.name, request.payload)
        log.info("method %s -> %d", request.name, status)
        if self.link is not None:
            self.link.answer(request, status, payload)
