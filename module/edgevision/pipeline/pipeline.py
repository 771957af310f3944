"""The hot loop: cameras -> batches -> preprocess -> infer -> postprocess -> publish.

The pipeline wires the parts together and supervises them; building stages (build.py), GPU
failover (failover.py), configuration changes (reconfigure.py), the cameras (cameras.py) and
events (events.py) each live in their own module. The sink and the seams are passed in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edgevision import __version__
from edgevision.accel.discover import AcceleratorInfo
from edgevision.accel.telemetry import GpuTelemetry
from edgevision.analytics.camera import Analytics
from edgevision.config.model import AppConfig
from edgevision.config.replicas import held
from edgevision.control import PreviewImage, Probe
from edgevision.errors import ConfigError, NotReady
from edgevision.evidence.recorder import EvidenceRecorder
from edgevision.metrics import PipelineMetrics
from edgevision.models.store import ResolvedModel
from edgevision.pipeline import health, reconfigure
from edgevision.pipeline.build import Seams, StageBuilder, StageHooks
from edgevision.pipeline.cameras import Cameras
from edgevision.pipeline.describe import stage_status
from edgevision.pipeline.events import EventLog
from edgevision.pipeline.lanes import Lanes, Routing, assignment
from edgevision.pipeline.reorder import ReorderBuffer
from edgevision.pipeline.scorer import Scorer
from edgevision.pipeline.stages import InferenceStages
from edgevision.preview_frames import PreviewFrames
from edgevision.publish.messages import iso_time
from edgevision.publish.sinks import Sink
from edgevision.sources.frames import Frame
from edgevision.sources.readers import configure_ffmpeg

log = logging.getLogger(__name__)

TICK_S = 0.5


class Pipeline:
    """Runs until every camera has ended (recorded sources) or `request_stop()`."""

    def __init__(
        self,
        config: AppConfig,
        sink: Sink,
        *,
        on_tick: Callable[[Pipeline], None] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        accelerator: AcceleratorInfo | None = None,
        keep_alive: bool = False,
        seams: Seams | None = None,
        extra_metrics: Callable[[], dict[str, Any]] | None = None,
        host_ordinal: int | None = None,
        evidence: EvidenceRecorder | None = None,
    ) -> None:
        seams = seams or Seams()
        # Snapshots and clips of events (edgevision.evidence): frames in, events annotated.
        self.evidence = evidence
        # This replica's ordinal from its host name (a StatefulSet pod's), when the configuration
        # gives none: with several replicas, each watches its share of the cameras only.
        self._host_ordinal = host_ordinal
        self.full_cameras: tuple[str, ...] = tuple(c.id for c in config.cameras)
        config = self._held(config)
        self.config = config
        if config.replicas.count > 1:
            replica = self.replica_status()
            log.info(
                "replica %s of %d: %d of %d cameras (%s)",
                replica["ordinal"],
                replica["count"],
                len(replica["cameras"]),
                replica["configured"],
                ", ".join(replica["cameras"]) or "none",
            )
        self.sink = sink
        # A module keeps running with no camera (its cameras may come later from the twin).
        self._keep_alive = keep_alive
        self.accelerator = accelerator
        self._gpu = GpuTelemetry.open(accelerator) if accelerator is not None else None
        self.metrics = PipelineMetrics()
        self.preview = PreviewFrames()
        self._on_tick = on_tick
        # Figures from around the pipeline for its metrics (the module's twin state).
        self._extra_metrics = extra_metrics or dict
        self._events = EventLog(sink, self.metrics, on_event)
        self._ready = threading.Condition()
        self._stop = threading.Event()
        # Wakes the supervisor before its tick: a stop request, or the stages finishing.
        self._wake = threading.Event()
        self._done = threading.Event()
        self._lock = threading.RLock()
        self.cameras = Cameras(self.metrics, self._ready, self._stop, seams.source_factory, self.preview.forget)
        # Which model each camera's frames go through.
        self.routing = Routing(self.cameras.queues, assignment(config))
        # Each camera's tracks, zones, lines and masks; its events go out like any other.
        self.analytics = Analytics(self._analytics_event)
        self.analytics.configure(config.cameras)
        self.preview.overlays = self.analytics.of
        if evidence is not None:
            evidence.overlays = self.analytics.of
            evidence.configure(config.cameras)
        self._reorder = ReorderBuffer(sink, self.metrics, self.preview, self.analytics, evidence=evidence)
        hooks = StageHooks(
            queues=self.routing.of,
            target_fps=self._target_fps,
            ready=self._ready,
            metrics=self.metrics,
            deliver=self._reorder.submit,
            on_finished=self._wake.set,
            idle=self._sources_idle,
            drop=self.cameras.drop,
            preprocessed=self._preprocessed,
            gate=lambda frame: self.analytics.wants_detection(frame.camera, frame.image, frame.captured_mono),
        )
        self._builder = StageBuilder(hooks, seams)
        # One set of stages per model in use (`default`: the model section), each with its failover.
        self.lanes = Lanes(self._builder.build, self.routing, lambda: self.config, self.event, self.metrics)
        self._scorer = Scorer()
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        # Liveness: the supervisor's last round.
        self.last_tick = time.monotonic()
        self.started_at: float | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Load every model and engine (errors surface here), then start every thread."""
        configure_ffmpeg()
        self.lanes.start(self.config)
        self.started_at = time.time()
        self._reorder.start()
        # Cameras first: stages that find no camera at all would end at once.
        for camera in self.config.cameras:
            self.cameras.add(camera, self.config.sources)
        self.lanes.run()
        self._supervisor.start()
        primary = self.lanes.primary
        assert primary is not None, "a pipeline loads at least one model"
        self.event(
            "started",
            version=__version__,
            provider=primary.stages.engine.provider,
            model=primary.stages.model.name,
            cameras=[c.id for c in self.config.cameras],
            models={key: lane.stages.model.name for key, lane in self.lanes.by_key.items()},
        )

    def request_stop(self) -> None:
        """Stop sources, drain batches in flight, flush the sink (signal-handler safe)."""
        self._stop.set()
        self._wake.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    # -- callbacks from the stages and cameras -------------------------------------------------

    def _target_fps(self, camera_id: str) -> float | None:
        camera = self.config.camera(camera_id)
        return camera.target_fps if camera else None

    def _sources_idle(self) -> bool:
        if self._keep_alive and not self._stop.is_set():
            return False
        return self.cameras.idle()

    # -- supervision ---------------------------------------------------------------------------

    def _supervise(self) -> None:
        next_metrics = time.monotonic() + self.config.metrics_interval_s
        try:
            while True:
                self._wake.wait(TICK_S)
                self._wake.clear()
                self.last_tick = time.monotonic()
                if self._stop.is_set():
                    break
                now = time.monotonic()
                self.cameras.check_stalls(now)
                self._events.camera_changes()
                if self._on_tick is not None:
                    self._on_tick(self)
                if now >= next_metrics:
                    self._events.metrics(self.metrics_snapshot(advance=True))
                    next_metrics = now + self.config.metrics_interval_s
                with self._lock:
                    self.lanes.check_failover()
                    # Read after the checks: they may have swapped stages.
                    running = self.lanes.running
                if not running and self._sources_idle():
                    break
        except Exception:  # whatever happens, shut down cleanly
            log.exception("supervisor failed")
        self._shutdown()

    def _analytics_event(self, name: str, details: dict[str, Any]) -> None:
        if self.evidence is not None:
            details = self.evidence.annotate(name, details)
        self._events.publish(name, details, logging.DEBUG)

    def _preprocessed(self, frame: Frame) -> None:
        if self.evidence is not None:
            self.evidence.frame(frame)
        self.preview.keep(frame)

    def _shutdown(self) -> None:
        self.cameras.stop_all()
        self.lanes.stop()
        self._reorder.stop(timeout=30)
        if self.evidence is not None:
            self.evidence.flush()  # clips being recorded end with what they have
        self._events.camera_changes()
        self._events.metrics(self.metrics_snapshot(advance=True))
        self.event("stopped", uptime_s=round(time.time() - (self.started_at or time.time()), 2))
        self._events.flush()
        if self._gpu is not None:
            self._gpu.close()
        self._done.set()

    def event(self, name: str, **details: Any) -> None:
        """A lifecycle event: to the sink (the `events` output upstream), the log and on_event."""
        self._events.event(name, **details)

    # -- views ---------------------------------------------------------------------------------

    @property
    def _stages(self) -> InferenceStages | None:
        """The primary model's stages (the `model` section's when used): /score and the top of /status."""
        lane = self.lanes.primary
        return lane.stages if lane is not None else None

    @property
    def model(self) -> ResolvedModel | None:
        return self._stages.model if self._stages is not None else None

    def camera_ids(self) -> list[str]:
        return self.cameras.ids()

    def health(self) -> Probe:
        return health.liveness(self.done, self.last_tick, time.monotonic(), self._builder.building_since)

    def readiness(self) -> Probe:
        last = [(c.camera, c.last_frame_mono) for c in list(self.metrics.cameras.values())]
        return health.readiness(
            self.model is not None,
            last,
            time.monotonic(),
            self.metrics.inference.recent(),
            self.metrics.results.recent(),
        )

    def metrics_snapshot(self, advance: bool = False) -> dict[str, Any]:
        """The metrics message's figures; only the periodic message advances the interval."""
        stages = self._stages
        extra: dict[str, Any] = {}
        if stages is not None:
            extra = {
                "provider": stages.engine.provider,
                "model": stages.model.name,
                "model_verified": stages.model.verified,
                "in_flight_batches": self.lanes.in_flight(),
                "models": self.lanes.metrics(),
                "camera_models": dict(self.routing.routes),
            }
        extra["analytics"] = self.analytics.snapshot()
        if self._gpu is not None:
            extra["gpu"] = self._gpu.sample()
        extra.update(self._extra_metrics())
        queues = {**self.cameras.depths(), **self.lanes.queue_depths(), "publish": self._reorder.depth()}
        return self.metrics.snapshot(queues=queues, extra=extra, advance=advance)

    def status(self) -> dict[str, Any]:
        default = self.lanes.primary
        return {
            "version": __version__,
            "started_at": iso_time(self.started_at) if self.started_at else None,
            "accelerator": self.accelerator.to_dict() if self.accelerator else None,
            "failover": default.failover.to_dict() if default is not None else None,
            "cameras": self.cameras.status(),
            **stage_status(default.stages if default is not None else None),
            "models": self.lanes.status(),
            "analytics": self.analytics.snapshot(),
            "replica": self.replica_status(),
            "readiness": self.readiness().body,
        }

    def snapshot(self, camera: str, max_bytes: int) -> PreviewImage | None:
        if camera not in self.cameras.ids():
            raise KeyError(camera)
        return self.preview.snapshot(camera, max_bytes)

    def score(self, image: np.ndarray) -> dict[str, Any]:
        stages = self._stages
        if stages is None:
            raise NotReady("model not loaded yet")
        return self._scorer.score(stages, self.config.model, image)

    # -- live configuration --------------------------------------------------------------------

    def apply(self, new: AppConfig) -> dict[str, list[str]]:
        """Switch to a new configuration: live where possible, restarting only what changed.

        Raises (and keeps the running configuration) if a new model or engine cannot be built.
        The changes returned include those of the sink and the upstream link, which their owners
        carry out (reconfigure.ReopenSink, reconfigure.RetuneUpstream).
        """
        full = tuple(c.id for c in new.cameras)
        new = self._held(new)  # raises before anything is touched
        with self._lock:
            self.full_cameras = full
            actions = reconfigure.plan(self.config, new)
            built = self.lanes.prepare(new, actions)  # raises before anything is touched
            self.lanes.switch(new, actions, built)
            self.config = new
            for action in actions:
                if isinstance(action, reconfigure.RetuneInference):
                    self.lanes.retune(action)
                else:
                    self.cameras.carry_out(action, new)
            self.analytics.configure(new.cameras)
            if self.evidence is not None:
                self.evidence.configure(new.cameras)
        changes = reconfigure.describe(actions)
        self.event("config_applied", changes=changes)
        return changes

    def _held(self, config: AppConfig) -> AppConfig:
        """The configuration with this replica's cameras only."""
        count = config.replicas.count
        if count == 1:
            return config
        ordinal = config.replicas.ordinal if config.replicas.ordinal is not None else self._host_ordinal
        if ordinal is None:
            raise ConfigError(
                [
                    f"replicas.count {count}: this replica's ordinal is unknown: set replicas.ordinal, "
                    "or run it as a StatefulSet pod (host name NAME-N)"
                ]
            )
        mine = set(held((c.id for c in config.cameras), ordinal, count))
        return config.model_copy(update={"cameras": tuple(c for c in config.cameras if c.id in mine)})

    def replica_status(self) -> dict[str, Any]:
        """Which cameras this replica holds, of how many configured."""
        replicas = self.config.replicas
        ordinal = replicas.ordinal if replicas.ordinal is not None else self._host_ordinal
        return {
            "ordinal": ordinal if replicas.count > 1 else (ordinal or 0),
            "count": replicas.count,
            "cameras": sorted(c.id for c in self.config.cameras),
            "configured": len(self.full_cameras),
        }

    def restart_camera(self, camera_id: str) -> None:
        """Reopen one camera now (operators' `restartCamera`); KeyError if unknown."""
        self.cameras.restart(camera_id)
