"""The configuration model: every section, its fields, defaults and limits (pydantic)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from edgevision.config.camera import CAMERA_KEY, CameraConfig
from edgevision.config.evidence import EvidenceConfig
from edgevision.config.replicas import ReplicasConfig
from edgevision.config.section import Section
from edgevision.config.trust import RemoteConfig
from edgevision.models.manifest import FAMILY_NAMES

ProviderChoice = Literal["auto", "cpu", "cuda", "tensorrt"]
PROVIDER_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "tensorrt")
# The model of cameras that name none: the `model` section.
DEFAULT_MODEL = "default"
_KEY = CAMERA_KEY


class ModelConfig(Section):
    name: str = Field(
        default="yolox-nano", description="A built-in model (see `edgevision models list`) or a .onnx path."
    )
    path: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description='A model file; takes the place of `name`. With no manifest for it, its family, input and classes are read from the file itself (see the README, "Your own model").',
    )
    manifest: str | None = Field(
        default=None,
        description="A built-in manifest's name (see `edgevision models list`) describing a file given by `path` (input, layout, labels, family).",
    )
    family: str | None = Field(
        default=None, description="The detector family (yolox, ultralytics, end2end, detr) when the file cannot tell."
    )
    labels: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="Class names, one a line, for a file whose metadata names none.",
    )
    verify: Literal["require", "warn"] | None = Field(
        default=None,
        description="A model named by a manifest must match its SHA-256 (require) or runs and says it does not (warn); null: EDGEVISION_MODEL__VERIFY, else require.",
    )
    score_threshold: float = Field(
        default=0.3, ge=0.0, le=1.0, description="Detections less sure than this are dropped."
    )
    nms_iou: float = Field(
        default=0.45,
        gt=0.0,
        le=1.0,
        description="Non-maximum suppression (families without it in the graph): a box overlapping a surer one of its class by more than this IoU is dropped.",
    )

    @field_validator("family")
    @classmethod
    def _known_family(cls, family: str | None) -> str | None:
        if family is not None and family not in FAMILY_NAMES:
            raise ValueError(f"unknown family {family!r} (known: {', '.join(FAMILY_NAMES)})")
        return family

    @property
    def spec(self) -> str:
        """What names the model: its path, else its name."""
        return self.path or self.name

    def loads_same_model(self, other: ModelConfig) -> bool:
        """Whether `other` needs no new engine (thresholds may differ)."""
        fields = ("name", "path", "manifest", "family", "labels", "verify")
        return all(getattr(self, f) == getattr(other, f) for f in fields)


class InferenceConfig(Section):
    provider: ProviderChoice = Field(
        default="auto",
        description="auto: TensorRT (with use_tensorrt), else CUDA, else the CPU; cuda: CUDA, else the CPU; tensorrt: TensorRT, CUDA, the CPU; cpu: the CPU only. A provider that does not load is dropped with its reason, in the log, status and reported properties.",
    )
    use_tensorrt: bool = Field(
        default=False,
        description="With provider auto: try TensorRT ahead of CUDA (engines built at the first start, cached in tensorrt_cache_dir).",
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        le=32,
        description="None: chosen from the provider. CPU: one worker per core, each one intra-op thread (frame-level parallelism scales better than intra-op threads on small models). GPU: one worker feeding batches.",
    )
    intra_op_threads: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="Threads each session uses inside one operator; None: chosen with workers (one per worker on the CPU).",
    )
    max_batch: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Frames run together (cameras of one model batch together); None: from the provider (1 on the CPU).",
    )
    max_batch_wait_ms: float = Field(
        default=5.0,
        ge=0,
        le=1000,
        description="How long a batch that is not full waits for more frames before it runs.",
    )
    preprocess_workers: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Threads that letterbox and convert frames for the model (preprocess: host).",
    )
    preprocess: Literal["host", "graph"] = Field(
        default="host",
        description='"graph": the letterbox, layout and dtype conversion run inside the model, on its provider; the host only copies uint8 frames. "host": OpenCV on the preprocessing threads.',
    )
    fp16: bool = Field(
        default=False,
        description="GPU only: a half-precision copy of the model on CUDA; CUDA graphs (captured per batch shape).",
    )
    cuda_graph: bool = Field(
        default=False,
        description="GPU only: capture the model's run as a CUDA graph, one per batch shape (fewer kernel launches).",
    )
    gpu_retry_initial_s: float = Field(
        default=30.0,
        gt=0,
        le=86400,
        description="A GPU that fails at run time: the CPU takes over and the GPU is tried again after gpu_retry_initial_s, doubling up to gpu_retry_max_s. A run longer than inference_timeout_s counts as a failure (a hung driver).",
    )
    gpu_retry_max_s: float = Field(
        default=900.0,
        gt=0,
        le=86400,
        description="The longest wait before a failed GPU is tried again (see gpu_retry_initial_s).",
    )
    inference_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="A run longer than this counts as a GPU failure (a hung driver): the CPU takes over.",
    )
    device_id: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Which GPU (CUDA ordinal); GPU-PV cannot select by index, so leave it 0 there.",
    )
    gpu_mem_limit_mb: int | None = Field(
        default=None,
        ge=64,
        le=1 << 20,
        description="The most GPU memory (MiB) the module's inference sessions may hold together, per process; None: no cap. Each model in use gets an equal share, divided among its sessions (one per input shape on a GPU) in proportion to their batch sizes. Under GPU-PV the GPU's memory is shared with Windows, so a cap keeps the module from taking what the host needs.",
    )
    tensorrt_cache_dir: Path | None = Field(
        default=None,
        description="TensorRT engine and timing caches; None: the user cache dir. The image points it at the state volume so a re-created container does not build engines again.",
    )
    max_engines: int = Field(
        default=4,
        ge=1,
        le=16,
        description="How many models may be loaded at once (the `model` section and each camera's own): an EFLOW VM has 1-4 GB, and each engine holds its weights and arena.",
    )


class SourceOptions(Section):
    live_queue_size: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Frames a live camera may have waiting for inference; beyond, the oldest is dropped (and counted): results stay current.",
    )
    every_frame_queue_size: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Frames a file played with every_frame may have waiting; the reader waits for room, nothing is dropped.",
    )
    reconnect_initial_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="A camera that fails or ends is opened again after this long, doubling up to reconnect_max_s.",
    )
    reconnect_max_s: float = Field(
        default=30.0, gt=0, le=3600, description="The longest wait between attempts to open a failed camera."
    )
    stall_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="A camera that is connected but sends no frame for this long is closed and opened again (counted as a stall).",
    )
    open_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Opening a stream may take this long; then it counts as a failure and is retried.",
    )
    max_frame_pixels: int = Field(
        default=12_000_000,
        ge=4096,
        le=200_000_000,
        description="A decoded frame over this many pixels is refused (a camera error, counted as `oversize`): 12 MP covers 4K UHD (8.3 MP) and 4000 x 3000 cameras at 36 MB a frame; a 7000 x 7000 MJPEG stream (147 MB a frame) took the process from 169 MB to 802 MB without it.",
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> SourceOptions:
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be >= reconnect_initial_s")
        return self


class SinkConfig(Section):
    kind: Literal["stdout", "jsonl"] = Field(
        default="stdout",
        description="stdout: JSON Lines on standard output (inside IoT Edge, where the outputs carry the messages, nothing); jsonl: a file.",
    )
    path: Path | None = Field(
        default=None, description="jsonl: the file (its folder must be writable by the module's user)."
    )
    rotate_mb: float = Field(
        default=100.0, gt=0, description="jsonl: the file is rotated when it reaches this many MiB."
    )
    backups: int = Field(default=5, ge=0, le=1000, description="jsonl: how many rotated files are kept.")

    @model_validator(mode="after")
    def _path_for_files(self) -> SinkConfig:
        if self.kind == "jsonl" and self.path is None:
            raise ValueError("a jsonl sink needs a path")
        return self


class UpstreamConfig(Section):
    """What goes to IoT Hub through edgeHub, and how often."""

    results_mode: Literal["every_frame", "on_change", "summary", "analytics_only"] = Field(
        default="on_change",
        description="every_frame: one message per processed frame; on_change: only when the set of labels in view changes (plus a heartbeat); summary: counts per label per interval. IoT Hub bills per message, so the default sends changes only. analytics_only: no per-frame results at all, only analytics events (on `events`) and each camera's zone and line counts every summary_interval_s (the cheapest useful traffic).",
    )
    heartbeat_s: float = Field(
        default=60.0, gt=0, le=86400, description="on_change: a result is sent at least this often, changed or not."
    )
    summary_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="summary and analytics_only: seconds between each camera's summary (counts by label, zone and line counts).",
    )
    stop_grace_s: float = Field(
        default=8.0,
        gt=0,
        le=600,
        description="IoT Edge (and docker stop) kill a module 10 s after SIGTERM: at a stop, every upstream call (the last messages, reported properties, the client's shutdown) shares this long in all.",
    )
    queue_size: int = Field(
        default=100_000,
        ge=1,
        le=10_000_000,
        description="The outbox keeps messages edgeHub has not acknowledged, on disk, across outages and restarts; beyond any of these limits the oldest are dropped (and counted).",
    )
    outbox_max_mb: float = Field(
        default=256.0,
        gt=0,
        le=65536,
        description="The outbox's size on disk (MiB) at most; beyond, the oldest messages are dropped (and counted).",
    )
    outbox_max_age_s: float = Field(
        default=86400.0, gt=0, le=30 * 86400, description="Messages waiting longer than this are dropped (and counted)."
    )
    outbox_path: str | None = Field(
        default=None,
        description='SQLite file; default: $EDGEVISION_STATE_DIR/outbox.sqlite (the container mounts a volume there), else the user state dir. ":memory:" keeps nothing across restarts.',
    )
    report_min_interval_s: float = Field(
        default=5.0, ge=0.1, le=3600, description="Reported properties are patched on change, at most this often."
    )
    connection_retry_interval_s: float = Field(
        default=10.0,
        ge=1,
        le=600,
        description="Between attempts to reach edgeHub (the SDK's retry) or the MQTT broker (backing off from 1 s, doubling, to this): how long after a broker comes back the messages held flow again, at most.",
    )
    stale_after_s: float | None = Field(
        default=None,
        ge=2,
        le=3600,
        description="Disconnected this long (or SDK calls timing out): the client is replaced by a new one. None: 3 x connection_retry_interval_s, at least 30 s.",
    )


class HttpConfig(Section):
    """The health and status endpoints (Dockerfile HEALTHCHECK, metrics collectors)."""

    enabled: bool = Field(
        default=True, description="Serve the endpoints (the image's HEALTHCHECK and the Kubernetes probes use them)."
    )
    bind: str = Field(
        default="127.0.0.1",
        description="Loopback unless asked: the image sets 0.0.0.0 (EDGEVISION_HTTP__BIND), where a token guards it.",
    )
    port: int = Field(default=9600, ge=0, le=65535, description="TCP port (0: a free one, said in the log).")
    token: SecretStr | None = Field(
        default=None,
        min_length=16,
        max_length=512,
        description="Required on every path but /healthz and /readyz (and /metrics unless metrics_auth); when unset, the module makes one in its state folder (http-token, 0600). Never echoed back.",
    )
    token_file: Path | None = Field(
        default=None,
        description="A file holding the token (a mounted Kubernetes Secret), read when the endpoints start; "
        "in place of `token`. A missing or unusable file keeps every guarded path closed, and says why.",
    )
    metrics_auth: bool = Field(
        default=False,
        description="/metrics carries camera ids and figures, no addresses or secrets; the Azure Monitor metrics-collector module sends no token, so it is open unless this asks for one.",
    )
    max_connections: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="Connections held at once, all clients together; beyond, new ones are refused (the probes' unix socket is outside this count).",
    )
    max_connections_per_client: int = Field(
        default=8, ge=1, le=4096, description="Connections one client address may hold at once (loopback included)."
    )
    backlog: int = Field(
        default=128, ge=1, le=4096, description="Connections the kernel may hold waiting to be accepted."
    )
    request_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="A client must send its whole request (headers and body) within this."
    )
    score_max_pixels: int = Field(
        default=40_000_000,
        ge=1,
        le=1_000_000_000,
        description="POST /score: images over this many pixels are refused from their header (413).",
    )
    score_queue: int = Field(
        default=4,
        ge=0,
        le=256,
        description="Requests waiting for the scorer beyond this get 429; scoring keeps within this share of time (/score is for spot checks, not a second camera: the cameras keep the engine).",
    )
    score_share: float = Field(
        default=0.05, gt=0, le=1, description="The share of the engine's time POST /score may take, at most."
    )
    preview_fps: float = Field(
        default=5.0,
        gt=0,
        le=30,
        description="/preview/<camera>.mjpg: frames per second sent to each viewer, and how many may watch at once.",
    )
    preview_viewers: int = Field(
        default=4,
        ge=0,
        le=64,
        description="How many may watch /preview at once, over all cameras (more get 503); 0: none.",
    )

    @model_validator(mode="after")
    def _one_token(self) -> HttpConfig:
        if self.token is not None and self.token_file is not None:
            raise ValueError("token and token_file: one or the other")
        return self

    @field_validator("bind")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("an IP address to listen on, e.g. 127.0.0.1 or 0.0.0.0") from None
        return value

    def secret(self) -> str | None:
        return self.token.get_secret_value() if self.token is not None else None


class MqttConfig(Section):
    """Results, events and metrics to an MQTT v5 broker (Azure IoT Operations' broker, or any),
    through the same on-disk outbox as the IoT Hub link: nothing lost over an outage."""

    enabled: bool = Field(
        default=False,
        description="Publish over MQTT v5 when there is no IoT Edge runtime (inside IoT Edge the IoT Hub link is used).",
    )
    host: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="The broker's host name or address (needed when enabled).",
    )
    port: int = Field(default=8883, ge=1, le=65535, description="The broker's port (8883: MQTT over TLS).")
    tls: bool = Field(default=True, description="TLS to the broker, verified against ca_file (else the system's CAs).")
    ca_file: Path | None = Field(
        default=None,
        description="PEM files (a mounted Secret or ConfigMap): the broker's CA, and a client certificate.",
    )
    cert_file: Path | None = Field(
        default=None, description="A client certificate (PEM) for X.509 authentication, with key_file."
    )
    key_file: Path | None = Field(default=None, description="The client certificate's private key (PEM).")
    username: str | None = Field(default=None, max_length=256, description="MQTT user name (with password).")
    password: SecretStr | None = Field(
        default=None,
        max_length=1024,
        description="MQTT password; never echoed (status, logs and events show it redacted).",
    )
    sat_token_file: Path | None = Field(
        default=None,
        description="Kubernetes service-account token (Azure IoT Operations' K8S-SAT authentication): sent in the CONNECT, read again at every connection, and the link reconnects every sat_refresh_s so a rotated token is sent before the old one expires.",
    )
    sat_refresh_s: float = Field(
        default=1800.0,
        ge=10,
        le=86400,
        description="With sat_token_file: reconnect this often, so a rotated token is sent before the old one expires.",
    )
    client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The MQTT client id; None: edgevision-<HOSTNAME> (a StatefulSet pod's name: one per replica).",
    )
    topics: dict[str, str] = Field(
        default_factory=lambda: {
            "results": "edgevision/{camera}/results",
            "events": "edgevision/{camera}/events",
            "metrics": "edgevision/metrics",
        },
        description="Topic per output; {camera} is replaced by the message's camera (empty for the module's own).",
    )
    qos: int = Field(
        default=1,
        ge=0,
        le=1,
        description="1: a message leaves the outbox only when the broker acknowledged it (at least once); 0: at most once.",
    )
    commands: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="The direct methods' operations as MQTT v5 requests: a request published to <commands>/<method> with a Response Topic (and Correlation Data) is answered there. None: no commands. The broker's authorization decides who may send them.",
    )

    @model_validator(mode="after")
    def _complete(self) -> MqttConfig:
        if self.enabled and not self.host:
            raise ValueError("host: needed when mqtt is enabled")
        if set(self.topics) != {"results", "events", "metrics"}:
            raise ValueError("topics: results, events and metrics, each a topic")
        for name, topic in self.topics.items():
            if not topic or "#" in topic or "+" in topic or len(topic) > 512 or "\x00" in topic:
                raise ValueError(f"topics.{name}: a topic to publish to (no wildcards)")
        if self.commands is not None and ("#" in self.commands or "+" in self.commands):
            raise ValueError("commands: a topic prefix (no wildcards)")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file: both or neither")
        return self

    def secret(self) -> str | None:
        return self.password.get_secret_value() if self.password is not None else None


class AppConfig(Section):
    cameras: tuple[CameraConfig, ...] = Field(
        default=(),
        description="The cameras: a list, or a mapping by id (module twins cannot hold arrays); each a source and what its frames go through.",
    )
    model: ModelConfig = Field(
        default=ModelConfig(), description="The model every camera uses unless it names one of `models`."
    )
    models: dict[str, ModelConfig] = Field(
        default_factory=dict, description="More models, by key, for cameras that name one (`cameras.<id>.model`)."
    )
    inference: InferenceConfig = Field(
        default=InferenceConfig(),
        description="How models run: the execution provider (CUDA, TensorRT, CPU; a fallback is reported, never silent), workers, batching, GPU memory and retry.",
    )
    sources: SourceOptions = Field(
        default=SourceOptions(),
        description="How every camera is read: queues, reconnect backoff, stall and open timeouts, the largest frame accepted.",
    )
    sink: SinkConfig = Field(
        default=SinkConfig(),
        description="The local copy of what the module publishes (stand-alone, the only one): standard output or a rotated JSON Lines file.",
    )
    upstream: UpstreamConfig = Field(
        default=UpstreamConfig(),
        description="What goes upstream (IoT Hub through edgeHub, or MQTT) and how: results mode, the on-disk outbox and its limits, retries, the stop's grace.",
    )
    http: HttpConfig = Field(
        default=HttpConfig(), description="The endpoints: /healthz, /readyz, /status, /metrics, /preview, /score."
    )
    remote: RemoteConfig = Field(
        default=RemoteConfig(),
        description="What the twin and direct methods may point cameras at (local configuration only).",
    )
    replicas: ReplicasConfig = Field(
        default=ReplicasConfig(),
        description="Several replicas sharing one camera list (a Kubernetes StatefulSet): each watches its share.",
    )
    mqtt: MqttConfig = Field(
        default=MqttConfig(),
        description="Upstream over MQTT v5 where there is no IoT Edge runtime (Kubernetes, Azure IoT Operations).",
    )
    evidence: EvidenceConfig = Field(
        default=EvidenceConfig(),
        description='Where cameras\' snapshots and clips go, and the limits on the state volume (README, "Evidence").',
    )
    metrics_interval_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Seconds between metrics messages (frames, fps, drops, latency per camera; the outbox).",
    )

    @field_validator("cameras", mode="before")
    @classmethod
    def _cameras_by_id(cls, cameras: Any) -> Any:
        """Cameras may also be a mapping by id: module twins cannot hold arrays."""
        if isinstance(cameras, Mapping):
            return [{**(c if isinstance(c, Mapping) else {"uri": c}), "id": i} for i, c in cameras.items()]
        return cameras

    @field_validator("cameras")
    @classmethod
    def _unique_ids(cls, cameras: tuple[CameraConfig, ...]) -> tuple[CameraConfig, ...]:
        ids = [c.id for c in cameras]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate camera id(s): {', '.join(duplicates)}")
        return cameras

    @field_validator("models")
    @classmethod
    def _model_keys(cls, models: dict[str, ModelConfig]) -> dict[str, ModelConfig]:
        for key in models:
            if not re.match(_KEY, key) or key == DEFAULT_MODEL:
                raise ValueError(f"model key {key!r}: letters, digits, _ and -, and not {DEFAULT_MODEL!r}")
        return models

    @model_validator(mode="after")
    def _camera_models(self) -> AppConfig:
        unknown = sorted({c.model for c in self.cameras if c.model and c.model != DEFAULT_MODEL} - set(self.models))
        if unknown:
            known = ", ".join(sorted(self.models)) or "none"
            raise ValueError(
                f"cameras name model(s) {', '.join(unknown)} that `models` does not define (defined: {known})"
            )
        loaded = len(self.model_keys())
        if loaded > self.inference.max_engines:
            raise ValueError(
                f"{loaded} models would be loaded at once (each model the cameras use); "
                f"inference.max_engines is {self.inference.max_engines}"
            )
        return self

    @model_validator(mode="after")
    def _synthetic_within_the_frame_cap(self) -> AppConfig:
        cap = self.sources.max_frame_pixels
        for camera in self.cameras:
            spec = camera.spec
            if spec.kind == "synthetic" and spec.width * spec.height > cap:
                raise ValueError(
                    f"cameras.{camera.id}.uri: synthetic frames of {spec.width}x{spec.height} are "
                    f"{spec.width * spec.height} pixels; sources.max_frame_pixels is {cap}"
                )
        return self

    def camera(self, camera_id: str) -> CameraConfig | None:
        return next((c for c in self.cameras if c.id == camera_id), None)

    def model_key(self, camera: CameraConfig) -> str:
        return camera.model if camera.model else DEFAULT_MODEL

    def model_keys(self) -> list[str]:
        """The models loaded: those the cameras use (the `model` section's first, when one does).
        A model no camera uses is never loaded, fetched or verified; with no camera at all (a
        module waiting for its twin) the `model` section's is, for POST /score and readiness."""
        used = {self.model_key(c) for c in self.cameras} or {DEFAULT_MODEL}
        return ([DEFAULT_MODEL] if DEFAULT_MODEL in used else []) + sorted(used - {DEFAULT_MODEL})

    def model_for(self, key: str) -> ModelConfig:
        return self.model if key == DEFAULT_MODEL else self.models[key]


def json_schema() -> dict[str, Any]:
    """The configuration's JSON Schema, with `cameras` as the module takes them: a list, or a
    mapping by id (module twins and most ConfigMaps), whose entries then need no `id`."""
    schema = AppConfig.model_json_schema()
    definitions = schema.setdefault("$defs", {})
    camera = definitions["CameraConfig"]
    by_key = {**camera, "properties": {k: v for k, v in camera["properties"].items() if k != "id"}}
    by_key["required"] = [r for r in camera.get("required", []) if r != "id"]
    by_key["title"] = "CameraByKey"
    definitions["CameraByKey"] = by_key
    listed = schema["properties"]["cameras"]
    schema["properties"]["cameras"] = {
        "anyOf": [listed, {"type": "object", "additionalProperties": {"$ref": "#/$defs/CameraByKey"}}],
        "description": "A list of cameras, or a mapping of camera id to camera.",
    }
    return schema
