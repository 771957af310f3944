"""From a running configuration to a new one: the list of actions, decided without side effects.

The pipeline carries out the actions on inference and cameras; whoever owns the sink and the
upstream link carries out theirs. Each action says whether it takes effect live or restarts
something, and how the change is described to operators.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from edgevision.config.camera import CameraConfig
from edgevision.config.model import DEFAULT_MODEL, AppConfig, HttpConfig, SinkConfig

# Fields whose change needs the inference stages rebuilt (a new engine).
_ENGINE_FIELDS = (
    *("provider", "use_tensorrt", "workers", "intra_op_threads", "max_batch", "preprocess_workers", "preprocess"),
    *("fp16", "cuda_graph", "device_id", "gpu_mem_limit_mb", "tensorrt_cache_dir"),
)


@dataclass(frozen=True)
class Action:
    # Whether carrying it out restarts something (else it takes effect live).
    restarts: ClassVar[bool] = True

    def describe(self) -> str:
        raise NotImplementedError


def _of_model(text: str, key: str) -> str:
    return text if key == DEFAULT_MODEL else f"{text} (model {key})"


@dataclass(frozen=True)
class RebuildInference(Action):
    """A new model or engine settings: new stages once the batches in flight finish."""

    key: str = DEFAULT_MODEL

    def describe(self) -> str:
        return _of_model("inference", self.key)


@dataclass(frozen=True)
class AddModel(Action):
    """A model a camera names now and none did before: its engine and stages are built."""

    key: str

    def describe(self) -> str:
        return f"model {self.key} (added)"


@dataclass(frozen=True)
class RemoveModel(Action):
    """A model no camera names any more: its stages finish their batches and its engine goes."""

    key: str

    def describe(self) -> str:
        return f"model {self.key} (removed)"


@dataclass(frozen=True)
class MoveCamera(Action):
    """A camera's frames go through another model from now on; none is lost (its old model's
    stages hand over every batch first, and its source keeps running)."""

    camera_id: str
    previous: str
    key: str

    restarts: ClassVar[bool] = False

    def describe(self) -> str:
        return f"camera {self.camera_id} model"


@dataclass(frozen=True)
class RetuneInference(Action):
    """Thresholds and batching wait, changed in place."""

    score_threshold: float
    nms_iou: float
    max_batch_wait_s: float
    noticeable: bool
    key: str = DEFAULT_MODEL

    restarts: ClassVar[bool] = False

    def describe(self) -> str:
        return _of_model("thresholds/batching", self.key)


@dataclass(frozen=True)
class RestartAllCameras(Action):
    def describe(self) -> str:
        return "all cameras (source options)"


@dataclass(frozen=True)
class RemoveCamera(Action):
    camera_id: str

    def describe(self) -> str:
        return f"camera {self.camera_id} (removed)"


@dataclass(frozen=True)
class AddCamera(Action):
    camera: CameraConfig

    def describe(self) -> str:
        return f"camera {self.camera.id} (added)"


@dataclass(frozen=True)
class RestartCamera(Action):
    camera: CameraConfig

    def describe(self) -> str:
        return f"camera {self.camera.id}"


@dataclass(frozen=True)
class ReconfigureAnalytics(Action):
    """A camera's tracking, zones, lines or masks: taken live (unchanged zones and lines keep
    their counts), its source keeps running."""

    camera_id: str

    restarts: ClassVar[bool] = False

    def describe(self) -> str:
        return f"camera {self.camera_id} analytics"


@dataclass(frozen=True)
class RetargetCamera(Action):
    """A camera's target fps: read by the scheduler per frame, so nothing restarts."""

    camera_id: str

    restarts: ClassVar[bool] = False

    def describe(self) -> str:
        return f"camera {self.camera_id} target_fps"


@dataclass(frozen=True)
class ChangeMetricsInterval(Action):
    restarts: ClassVar[bool] = False

    def describe(self) -> str:
        return "metrics_interval_s"


@dataclass(frozen=True)
class ReopenSink(Action):
    """For the owner of the local sink."""

    sink: SinkConfig

    def describe(self) -> str:
        return "sink"


@dataclass(frozen=True)
class RetuneUpstream(Action):
    """For the owner of the upstream link: results mode, outbox limits, report interval."""

    restarts: ClassVar[bool] = False

    def describe(self) -> str:
        return "upstream"


@dataclass(frozen=True)
class ReconfigureHttp(Action):
    """For the owner of the HTTP endpoints: a new token is taken live; a new address, port or
    limit replaces the server (its connections close)."""

    http: HttpConfig
    live: bool

    @property
    def restarts(self) -> bool:
        return not self.live

    def describe(self) -> str:
        return "http"


@dataclass(frozen=True)
class AtNextStart(Action):
    """Kept in the configuration but used only from the next start (the outbox file is open)."""

    field: str

    restarts: ClassVar[bool] = False

    def describe(self) -> str:
        return self.field


def needs_new_engine(old: AppConfig, new: AppConfig, key: str = DEFAULT_MODEL) -> bool:
    if not old.model_for(key).loads_same_model(new.model_for(key)):
        return True
    return any(getattr(new.inference, f) != getattr(old.inference, f) for f in _ENGINE_FIELDS)


def plan(old: AppConfig, new: AppConfig) -> list[Action]:
    """What to do, in order, to go from `old` to `new`."""
    actions: list[Action] = []
    before = old.model_keys()
    actions += [RemoveModel(key) for key in before if key not in new.model_keys()]
    for key in new.model_keys():
        if key not in before:
            actions.append(AddModel(key))
        elif needs_new_engine(old, new, key):
            actions.append(RebuildInference(key))
        else:
            model = new.model_for(key)
            actions.append(
                RetuneInference(
                    model.score_threshold,
                    model.nms_iou,
                    new.inference.max_batch_wait_ms / 1000.0,
                    noticeable=model != old.model_for(key) or new.inference != old.inference,
                    key=key,
                )
            )
    if new.sources != old.sources:
        actions.append(RestartAllCameras())
    else:
        actions.extend(_camera_actions(old, new))
    actions.extend(_moves(old, new))
    if new.metrics_interval_s != old.metrics_interval_s:
        actions.append(ChangeMetricsInterval())
    if new.sink != old.sink:
        actions.append(ReopenSink(new.sink))
    if new.upstream != old.upstream:
        actions.append(RetuneUpstream())
    if new.upstream.outbox_path != old.upstream.outbox_path:
        actions.append(AtNextStart("upstream.outbox_path"))
    if new.mqtt != old.mqtt:
        # The broker, its credentials and topics are read when the link starts.
        actions.append(AtNextStart("mqtt"))
    if new.evidence != old.evidence:
        # The store's limits and the destination are read when the module starts (the cameras'
        # own evidence settings are live: they are part of each camera's analytics).
        actions.append(AtNextStart("evidence"))
    if new.http != old.http:
        live = old.http.model_copy(update={"token": new.http.token, "metrics_auth": new.http.metrics_auth}) == new.http
        actions.append(ReconfigureHttp(new.http, live))
    return actions


def _camera_actions(old: AppConfig, new: AppConfig) -> list[Action]:
    new_ids = {c.id for c in new.cameras}
    actions: list[Action] = [RemoveCamera(c) for c in sorted({c.id for c in old.cameras} - new_ids)]
    for camera in new.cameras:
        before = old.camera(camera.id)
        if before is None:
            actions.append(AddCamera(camera))
            continue
        source = before.without_analytics().model_copy(update={"target_fps": camera.target_fps, "model": camera.model})
        if source != camera.without_analytics():
            actions.append(RestartCamera(camera))
        elif before.target_fps != camera.target_fps:
            actions.append(RetargetCamera(camera.id))
        if before.analytics != camera.analytics:
            actions.append(ReconfigureAnalytics(camera.id))
    return actions


def _moves(old: AppConfig, new: AppConfig) -> list[Action]:
    actions: list[Action] = []
    for camera in new.cameras:
        before = old.camera(camera.id)
        if before is not None and old.model_key(before) != new.model_key(camera):
            actions.append(MoveCamera(camera.id, old.model_key(before), new.model_key(camera)))
    return actions


def describe(actions: Sequence[Action]) -> dict[str, list[str]]:
    """The `changes` document operators see: what took effect live, what was restarted, and
    (`needs_restart`, only when there is any) what is kept but used from the next start only."""
    changes: dict[str, list[str]] = {"live": [], "restarted": []}
    for action in actions:
        if isinstance(action, RetuneInference) and not action.noticeable:
            continue
        if isinstance(action, AtNextStart):
            changes.setdefault("needs_restart", []).append(action.describe())
            continue
        changes["restarted" if action.restarts else "live"].append(action.describe())
    return changes
