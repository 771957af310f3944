"""The IoT Edge module: the pipeline, its endpoints, and inside IoT Edge its link to IoT Hub.

`Module` implements edgevision.control.Control, the one interface the HTTP endpoints, the
Prometheus exposition and the direct methods use. How the configuration follows the local base,
the twin and direct methods is edgevision.convergence.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from edgevision.accel.discover import AcceleratorInfo
from edgevision.config.load import validate
from edgevision.config.model import AppConfig
from edgevision.config.remote import Folders, Policy, confine, secrets_dir
from edgevision.config.replicas import ordinal_from_host
from edgevision.control import Control, PreviewImage, Probe
from edgevision.convergence import Changes, Convergence
from edgevision.endpoints.http import HttpServer
from edgevision.errors import ConfigError, NotReady, first_line
from edgevision.evidence.delivery import EvidenceSender, destination_for
from edgevision.evidence.recorder import EvidenceRecorder
from edgevision.evidence.store import EvidenceStore, Item, private_root
from edgevision.http_service import HttpService
from edgevision.models.store import default_model_dir
from edgevision.pipeline import reconfigure
from edgevision.pipeline.build import Seams
from edgevision.pipeline.pipeline import Pipeline
from edgevision.publish.sinks import Sink, SinkSwitch, open_sink
from edgevision.redaction import redact_document
from edgevision.state import state_dir
from edgevision.upstream.connection import describe_mode, edge_mode
from edgevision.upstream.desired import LastKnownGood
from edgevision.upstream.link import EdgeLink
from edgevision.upstream.methods import Methods
from edgevision.upstream.mqtt import MqttLink
from edgevision.upstream.outbox import Outbox
from edgevision.upstream.reported import reported_properties

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
        twin_timeout_s: float = 10.0,
        seams: Seams | None = None,
    ) -> None:
        """`twin_timeout_s`: with no last known good configuration, how long the first start
        waits for the twin before it runs the local configuration. `seams`: the pipeline's
        neighbours (engine loader, model loader, source factory)."""
        self._environ = os.environ if environ is None else environ
        self.mode = edge_mode(self._environ)
        last_good = LastKnownGood(state_dir(self._environ)) if self.mode else None
        folders = Folders(state_dir(self._environ), default_model_dir(), secrets_dir(self._environ))
        # What the twin and methods may point cameras at: the local configuration's `remote` section.
        self._policy = Policy.of(validate(base_document))
        self.configuration = Convergence(
            base_document, last_good, confine=lambda document, under: confine(document, folders, self._policy, under)
        )
        self.configuration.on_rejected = self._rejected
        self.configuration.on_change = self._report_now
        self.accelerator = accelerator
        self._on_tick = on_tick
        self._twin_timeout_s = twin_timeout_s
        self._seams = seams
        # Tells this process's messages apart from an earlier run's (sequence numbers restart).
        self.run_id = uuid.uuid4().hex[:12]
        self.link: EdgeLink | None = None
        self.mqtt: MqttLink | None = None
        self.evidence: EvidenceRecorder | None = None
        self._evidence_sender: EvidenceSender | None = None
        self._local: SinkSwitch | None = None
        self.pipeline: Pipeline | None = None
        self.endpoints = HttpService(self, state_dir(self._environ))
        # When a stop was asked for (monotonic): the upstream's grace counts from it.
        self._stop_requested: float | None = None
        self.methods = Methods(self)

    @property
    def config(self) -> AppConfig:
        return self.configuration.config

    @property
    def document(self) -> dict[str, Any]:
        return self.configuration.document

    @property
    def config_status(self) -> dict[str, Any]:
        return self.configuration.status

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.endpoints.start(self.config.http)
        self._open_evidence()
        if self.mode is None:
            if self.config.mqtt.enabled:
                # No IoT Edge runtime (Kubernetes, Azure IoT Operations): upstream over MQTT v5.
                mqtt = self.mqtt = MqttLink(self.config, self._environ, self.run_id)
                mqtt.serve(self.methods)
                # A module that takes commands stays up when its cameras end, as an IoT Edge
                # module does: an applyConfig may give it more to do (and a pod that exits is
                # restarted, playing its files again).
                self._start_pipeline(
                    lambda config: mqtt.sink(config, self._open_local(config)),
                    keep_alive=self.config.mqtt.commands is not None,
                )
                self._watch_outbox(mqtt.outbox)
                return
            self._start_pipeline(self._open_local, keep_alive=False)
            return
        restored = self.configuration.restore()
        self.link = EdgeLink(self.config, self._environ, self.run_id)
        self.link.start(
            on_method=self._on_method,
            on_desired_patch=self.configuration.twin_patch,
            on_desired=self.configuration.twin_document,
        )
        if not restored and not self.link.first_sync.wait(self._twin_timeout_s):
            log.warning("no twin within %.0f s: starting with the local configuration", self._twin_timeout_s)
        link = self.link
        self._start_pipeline(lambda config: link.sink(config, self._open_local(config)), keep_alive=True)
        self._watch_outbox(link.outbox)
        link.retune(self.config)
        link.start_reporting(self.reported_state)

    def _open_evidence(self) -> None:
        """The evidence store on the state volume, its recorder (fed by the pipeline) and its
        sender; none where the state folder cannot be written (said once)."""
        config = self.config.evidence
        try:
            root = private_root(state_dir(self._environ))
            store = EvidenceStore(root, config)
        except OSError as exc:
            log.warning("evidence: the state folder cannot hold it (%s): no snapshots or clips", first_line(exc))
            return
        destination = destination_for(config, root)
        self.evidence = EvidenceRecorder(store, destination.locate)
        self.evidence.start()
        # Started with the pipeline: each delivery is an event, files left by a run before included.
        self._evidence_sender = EvidenceSender(store, destination, config, self._evidence_delivered)

    def _evidence_delivered(self, item: Item, location: str) -> None:
        if self.pipeline is not None:
            meta = item.meta
            self.pipeline.event(
                "evidence",
                camera=meta.get("camera"),
                event_id=meta.get("event_id"),
                kind=meta.get("kind"),
                location=location,
                rule=meta.get("rule"),
                track_id=meta.get("track_id"),
                label=meta.get("label"),
                at=meta.get("at"),
            )

    def _watch_outbox(self, outbox: Outbox | None) -> None:
        """What went wrong with the outbox (a damaged file moved aside, memory only, messages
        dropped) becomes an event, whichever link it feeds."""
        if outbox is not None:
            outbox.on_problem = self._event
            for name, details in outbox.startup_problems():
                self._event(name, details)

    def _open_local(self, config: AppConfig) -> SinkSwitch:
        # Inside IoT Edge the outputs carry the messages: a stdout sink would only fill the log.
        self._local = SinkSwitch(open_sink(config.sink, stdout=self.mode is None))
        return self._local

    def _start_pipeline(self, make_sink: Callable[[AppConfig], Sink], keep_alive: bool) -> None:
        """The sink is made from the configuration the pipeline starts with (under the
        configuration's lock, so a twin document arriving meanwhile cannot slip in between)."""

        def start(config: AppConfig) -> Callable[[AppConfig], Changes]:
            self.pipeline = Pipeline(
                config,
                make_sink(config),
                evidence=self.evidence,
                on_tick=self._tick,
                accelerator=self.accelerator,
                keep_alive=keep_alive,
                seams=self._seams,
                extra_metrics=self._extra_metrics,
                host_ordinal=ordinal_from_host(self._environ.get("HOSTNAME") or socket.gethostname()),
            )
            self.pipeline.start()
            if self._evidence_sender is not None:
                self._evidence_sender.start()
            # The endpoints started on the local configuration, before the twin was read.
            self.endpoints.apply(config.http)
            return self._switch

        self.configuration.attach(start)

    @property
    def http(self) -> HttpServer | None:
        return self.endpoints.server

    def startup_summary(self) -> str:
        """One line saying how the module runs: mode, configuration, cameras, provider."""
        status = self._pipeline().status()
        provider = status.get("provider") or {}
        # The reasons were warned above, once per model: here only what runs instead.
        dropped = ", ".join(provider.get("dropped") or {})
        dropped = f"{dropped} not used: see the warning above" if dropped else ""
        cameras = ", ".join(status["cameras"]) or "none yet"
        source = self.configuration.source
        if self.configuration.damaged:
            source += f" ({self.configuration.damaged})"
        line = (
            f"edgevision: running {describe_mode(self.mode, self._environ)}; configuration: {source}; "
            f"cameras: {cameras}; provider: {provider.get('provider')}"
        )
        return line + (f" ({dropped})" if dropped else "")

    def request_stop(self) -> None:
        if self._stop_requested is None:
            self._stop_requested = time.monotonic()
        if self.pipeline is not None:
            self.pipeline.request_stop()

    def wait(self, timeout: float | None = None) -> bool:
        done = self.pipeline.wait(timeout) if self.pipeline is not None else True
        if done:
            if self.evidence is not None:
                # A clip being encoded gets a share of the stop's grace; files already written
                # stay on the volume and are delivered at the next start.
                left = (self._stop_requested or time.monotonic()) + self.config.upstream.stop_grace_s - time.monotonic()
                self.evidence.stop(timeout=max(0.0, min(3.0, left / 3)))
                self.evidence = None
            if self._evidence_sender is not None:
                self._evidence_sender.stop(timeout=1.0)
                self._evidence_sender = None
            if self.link is not None:
                # What is left of the grace since the stop was asked for (a stop without one: all).
                deadline = (self._stop_requested or time.monotonic()) + self.config.upstream.stop_grace_s
                self.link.close(self.reported_state() if self.pipeline is not None else None, deadline)
                self.link = None
            if self.mqtt is not None:
                self.mqtt.close((self._stop_requested or time.monotonic()) + self.config.upstream.stop_grace_s)
                self.mqtt = None
            if self._local is not None:
                self._local.close()
                self._local = None
            self.endpoints.stop()
        return done

    # -- configuration -------------------------------------------------------------------------

    def reload_base(self, load: Callable[[], Mapping[str, Any]]) -> Changes | None:
        """The local configuration changed (its file, a mounted ConfigMap): read it again with
        `load` and converge as a twin patch would (validated whole, the twin's document over it,
        live where possible). Invalid: reported (event, reported properties), nothing changes."""
        try:
            document = dict(load())
            policy = Policy.of(validate(document))
        except ConfigError as exc:
            self.configuration.rejected(exc, None, "file")
            return None
        except Exception as exc:  # noqa: BLE001 - unreadable, not YAML, over the size cap
            self.configuration.rejected(ConfigError([f"configuration file: {exc}"]), None, "file")
            return None
        previous, self._policy = self._policy, policy
        try:
            return self.configuration.new_base(document, "file")
        except ConfigError:
            self._policy = previous
            return None

    def apply_patch(self, patch: Any, source: str = "method") -> Changes:
        """Apply a full or partial configuration; raises ConfigError and changes nothing if invalid."""
        return self.configuration.apply_patch(patch, source)

    def _event(self, name: str, details: dict[str, Any]) -> None:
        if self.pipeline is not None:
            self.pipeline.event(name, **details)

    def _rejected(self, error: ConfigError, version: int | None, source: str) -> None:
        if self.pipeline is not None:
            self.pipeline.event("config_rejected", source=source, version=version, errors=error.problems)

    def _switch(self, config: AppConfig) -> Changes:
        """The pipeline takes what is its; the sink and the upstream link are the module's."""
        pipeline = self._pipeline()
        actions = reconfigure.plan(self.config, config)
        changes = pipeline.apply(config)
        for action in actions:
            if isinstance(action, reconfigure.ReopenSink) and self._local is not None:
                self._local.replace(open_sink(action.sink, stdout=self.mode is None))
            elif isinstance(action, reconfigure.RetuneUpstream):
                for link in (self.link, self.mqtt):
                    if link is not None:
                        link.retune(config)
            elif isinstance(action, reconfigure.ReconfigureHttp):
                self.endpoints.apply(action.http)
        return changes

    # -- status ----------------------------------------------------------------------------------

    def _tick(self, _pipeline: Pipeline) -> None:
        self._report_now()
        if self._on_tick is not None:
            self._on_tick(self)

    def _report_now(self) -> None:
        if self.link is not None and self.pipeline is not None:
            self.link.report(self.reported_state())

    def _extra_metrics(self) -> dict[str, Any]:
        if self.link is not None:
            return {"twin": self.link.twin_state, "upstream": self.link.outbox_counts()}
        if self.mqtt is not None:
            return {"upstream": self.mqtt.outbox_counts()}
        return {}

    def reported_state(self) -> dict[str, Any]:
        return reported_properties(
            status=self._pipeline().status(),
            accelerator=self.accelerator,
            mode=self.mode,
            config_status={**self.config_status, "source": self.configuration.source},
            results_mode=self.config.upstream.results_mode,
            outbox=self.link.outbox_counts() if self.link is not None else {},
            twin=self.link.twin_status() if self.link is not None else None,
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
        document["config"] = {
            **self.config_status,
            "source": self.configuration.source,
            "last_known_good_damaged": self.configuration.damaged,
        }
        document["configuration"] = self.config.model_dump(mode="json")
        document["upstream"] = {
            "mode": self.mode,
            "results_mode": self.config.upstream.results_mode,
            **(self.link.stats() if self.link is not None else {}),
            **(self.mqtt.stats() if self.mqtt is not None else {}),
        }
        document["twin"] = self.link.twin_status() if self.link is not None else None
        document["evidence"] = self.evidence_status()
        document["totals"] = pipeline.metrics_snapshot()["totals"]
        return redact_document(json.loads(json.dumps(document, default=str)))

    def metrics_snapshot(self) -> dict[str, Any]:
        pipeline = self._pipeline()
        return {**pipeline.metrics_snapshot(), "latency_histograms": pipeline.metrics.latency_histograms()}

    def camera_ids(self) -> list[str]:
        return self._pipeline().camera_ids()

    def snapshot(self, camera: str, max_bytes: int) -> PreviewImage | None:
        return self._pipeline().snapshot(camera, max_bytes)

    def evidence_status(self) -> dict[str, Any] | None:
        """The evidence queue: files, bytes, oldest, last delivery, last error, drops."""
        if self.evidence is None:
            return None
        sender = self._evidence_sender.stats() if self._evidence_sender is not None else {}
        return {**self.evidence.store.stats(), **sender, "recorder": self.evidence.stats()}

    def latest_evidence(self, camera: str) -> dict[str, Any] | None:
        if self.evidence is None:
            return None
        found = self.evidence.store.latest(camera)
        if not found:
            return None
        return {
            kind: {
                "event_id": item.meta.get("event_id"),
                "rule": item.meta.get("rule"),
                "at": item.meta.get("at"),
                "location": item.delivered or str(self.evidence.store.path(item)),
                "delivered": item.delivered is not None,
                "bytes": item.size,
            }
            for kind, item in found.items()
        }

    def restart_camera(self, camera: str) -> None:
        self._pipeline().restart_camera(camera)

    def score(self, image: np.ndarray) -> dict[str, Any]:
        return self._pipeline().score(image)

    def _on_method(self, request: Any) -> None:
        status, payload = self.methods(request.name, request.payload)
        log.info("method %s -> %d", request.name, status)
        if self.link is not None:
            self.link.answer(request, status, payload)
