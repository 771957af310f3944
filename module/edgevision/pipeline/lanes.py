"""The models in use: one set of inference stages per model, each with its own GPU failover,
and which camera's frames go through which.

Cameras that name the same model share its engine and batch together; each model's stages
number their batches on their own (the publisher orders per model).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgevision.config.model import DEFAULT_MODEL, AppConfig
from edgevision.metrics import PipelineMetrics
from edgevision.pipeline import reconfigure
from edgevision.pipeline.describe import stage_status
from edgevision.pipeline.failover import FailoverController
from edgevision.pipeline.stages import InferenceStages
from edgevision.sources.frames import FrameQueue

log = logging.getLogger(__name__)

# How long a model's stages may take to hand over their batches when they are replaced.
JOIN_S = 30.0


def assignment(config: AppConfig) -> dict[str, str]:
    """Camera id -> the key of the model its frames go through."""
    return {camera.id: config.model_key(camera) for camera in config.cameras}


@dataclass
class Routing:
    """Which camera queues each model's scheduler takes frames from.

    Read by every scheduler at every batch, so each model's view is kept ready (rebuilt only when
    the cameras or the assignment change, both replaced whole, never mutated).
    """

    queues: Callable[[], dict[str, FrameQueue]]
    routes: dict[str, str] = field(default_factory=dict)
    # (the camera queues and the routes the views were made from, the views); replaced whole,
    # so a scheduler reading it while another rebuilds it sees one consistent set.
    _views: tuple[object, object, dict[str, dict[str, FrameQueue]]] = (None, None, {})

    def route(self, routes: dict[str, str]) -> None:
        self.routes = dict(routes)

    def of(self, key: str) -> dict[str, FrameQueue]:
        queues, routes = self.queues(), self.routes
        seen_queues, seen_routes, views = self._views
        if seen_queues is not queues or seen_routes is not routes:
            views = {}
            for camera, frame_queue in queues.items():
                views.setdefault(routes.get(camera, DEFAULT_MODEL), {})[camera] = frame_queue
            self._views = (queues, routes, views)
        return views.get(key, {})


@dataclass
class Lane:
    """One model: its running stages and the failover watching them."""

    key: str
    stages: InferenceStages
    failover: FailoverController


class Lanes:
    """Every model's stages: built, started, switched and stopped together.

    `build` makes one model's stages for a configuration; `event` tells the world. Not
    thread-safe: the pipeline calls it under its lock.
    """

    def __init__(
        self,
        build: Callable[[AppConfig, str], InferenceStages],
        routing: Routing,
        config: Callable[[], AppConfig],
        event: Callable[..., None],
        metrics: PipelineMetrics,
    ) -> None:
        self._build = build
        self.routing = routing
        self._config = config
        self._event = event
        self._metrics = metrics
        self.by_key: dict[str, Lane] = {}

    @property
    def primary(self) -> Lane | None:
        """The `model` section's lane when a camera uses it, else the first other model's: what
        POST /score runs and the top of /status describes."""
        return self.by_key.get(DEFAULT_MODEL) or next((self.by_key[k] for k in sorted(self.by_key)), None)

    def start(self, config: AppConfig) -> None:
        """Build every model's stages (raises before any runs), then start them."""
        built = {key: self._build(config, key) for key in config.model_keys()}
        self.by_key = {key: self._lane(key, stages) for key, stages in built.items()}

    def run(self) -> None:
        for lane in self.by_key.values():
            lane.stages.start()

    def _lane(self, key: str, stages: InferenceStages) -> Lane:
        failover = FailoverController(
            self._config,
            lambda config: self._build(config, key),
            lambda replacement, timeout_s: self.swap(key, replacement, timeout_s),
            lambda name, **details: self._event(name, model_key=key, **details),
            self._metrics,
        )
        return Lane(key, stages, failover)

    def check_failover(self) -> None:
        for lane in list(self.by_key.values()):
            lane.failover.check(lane.stages)

    @property
    def running(self) -> bool:
        return any(lane.stages.running for lane in self.by_key.values())

    def stop(self, timeout_s: float = JOIN_S) -> None:
        lanes = list(self.by_key.values())
        for lane in lanes:
            lane.stages.stop()
        for lane in lanes:
            if not lane.stages.join(timeout=timeout_s):
                log.error("inference stages of model %s did not finish within %.0f s", lane.key, timeout_s)

    def prepare(self, new: AppConfig, actions: list[reconfigure.Action]) -> dict[str, InferenceStages]:
        """The stages of every model a change adds or rebuilds: raises before anything is touched."""
        return {
            a.key: self._build(new, a.key)
            for a in actions
            if isinstance(a, reconfigure.RebuildInference | reconfigure.AddModel)
        }

    def switch(self, new: AppConfig, actions: list[reconfigure.Action], built: dict[str, InferenceStages]) -> None:
        """New and rebuilt models' stages in, removed ones out, and each camera to its model.

        A model that loses a camera to another one first hands over every batch it formed (its
        stages stop and finish, then restart on the same engine), so that camera's results keep
        their order across the move and none is lost.
        """
        removed = {a.key for a in actions if isinstance(a, reconfigure.RemoveModel)}
        restaged = {a.previous for a in actions if isinstance(a, reconfigure.MoveCamera)} - set(built) - removed
        ending = [self.by_key[k] for k in sorted(set(built) | removed | restaged) if k in self.by_key]
        for lane in ending:
            lane.stages.stop()
        for lane in ending:
            lane.stages.join(timeout=JOIN_S)
        self.routing.route(assignment(new))
        for key in removed:
            del self.by_key[key]
        for key in restaged:
            self.by_key[key].stages = self.by_key[key].stages.restaged()
        for key, stages in built.items():
            if key in self.by_key:
                self.by_key[key].stages = stages
            else:
                self.by_key[key] = self._lane(key, stages)
        for key in sorted(restaged | set(built)):
            self.by_key[key].stages.start()
        for lane in self.by_key.values():
            lane.failover.update_policy(new)
        for stages in built.values():
            self.provider_event(stages)

    def retune(self, action: reconfigure.RetuneInference) -> None:
        stages = self.by_key[action.key].stages
        stages.scheduler.max_wait_s = action.max_batch_wait_s
        stages.set_thresholds(action.score_threshold, action.nms_iou)

    def swap(self, key: str, stages: InferenceStages, join_timeout_s: float = JOIN_S) -> None:
        """Controlled restart of one model's stages: the old ones finish their batches, then the new ones start."""
        lane = self.by_key[key]
        lane.stages.stop()
        lane.stages.join(timeout=join_timeout_s)
        lane.stages = stages
        stages.start()
        self.provider_event(stages)

    def provider_event(self, stages: InferenceStages) -> None:
        self._event(
            "provider",
            provider=stages.engine.provider,
            dropped=stages.engine.status.dropped,
            model=stages.model.name,
            model_key=stages.lane,
        )

    # -- views ---------------------------------------------------------------------------------

    def status(self) -> dict[str, dict[str, Any]]:
        """What /status says of each model: its stages, failover and cameras."""
        routes = self.routing.routes
        return {
            key: {
                **stage_status(lane.stages),
                "failover": lane.failover.to_dict(),
                "cameras": sorted(c for c, k in routes.items() if k == key),
            }
            for key, lane in sorted(self.by_key.items())
        }

    def metrics(self) -> dict[str, Any]:
        """The metrics message's figures per model (beside the default model's at the top)."""
        return {
            key: {
                "model": lane.stages.model.name,
                "provider": lane.stages.engine.provider,
                "model_verified": lane.stages.model.verified,
                "in_flight_batches": lane.stages.in_flight,
            }
            for key, lane in sorted(self.by_key.items())
        }

    def queue_depths(self) -> dict[str, int]:
        depths: dict[str, int] = {}
        for key, lane in self.by_key.items():
            prefix = "" if key == DEFAULT_MODEL else f"{key}:"
            depths.update({prefix + name: depth for name, depth in lane.stages.queue_depths().items()})
        return depths

    def in_flight(self) -> int:
        return sum(lane.stages.in_flight for lane in self.by_key.values())
