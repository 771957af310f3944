"""The hot loop: cameras -> batches -> preprocess -> infer -> postprocess -> publish."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from edgevision import __version__
from edgevision.accel import AcceleratorInfo
from edgevision.accel.telemetry import GpuTelemetry
from edgevision.config import AppConfig, CameraConfig
from edgevision.detector import load_engine
from edgevision.engine import GPU_PROVIDERS, Engine, EngineConfig, first_line, provider_load_error, requested_providers
from edgevision.metrics import PipelineMetrics, iso_time
from edgevision.models import ResolvedModel, resolve_model
from edgevision.pipeline.failover import Failover, FailoverPolicy
from edgevision.pipeline.publisher import Publisher
from edgevision.pipeline.scheduler import Scheduler
from edgevision.pipeline.stages import InferenceStages, Layout
from edgevision.publish.sink import Sink, open_sink
from edgevision.snapshots import LatestFrames
from edgevision.sources import Frame, FrameQueue, Source, configure_ffmpeg
from edgevision.sources.readers import redact

log = logging.getLogger(__name__)

TICK_S = 0.5
# Fields whose change needs the inference stages rebuilt (new engine).
_ENGINE_FIELDS = (
    "provider",
    "use_tensorrt",
    "workers",
    "intra_op_threads",
    "max_batch",
    "preprocess_workers",
    "preprocess",
    "fp16",
    "cuda_graph",
)


def choose_layout(config: AppConfig, on_gpu: bool, cores: int | None = None) -> Layout:
    """GPU: one worker feeding batches. CPU: frame-level parallelism, one intra-op thread each.

    On a CPU every stage shares the cores: one session run per core with one thread each
    scales better than one run with many threads on a small model, and spinning ORT threads
    would take cores from decoding.
    """
    cores = cores or os.cpu_count() or 1
    inference = config.inference
    if on_gpu:
        return Layout(
            workers=inference.workers or 1,
            intra_op_threads=inference.intra_op_threads if inference.intra_op_threads is not None else 0,
            max_batch=inference.max_batch or 8,
            allow_spinning=False,
        )
    return Layout(
        workers=inference.workers or cores,
        intra_op_threads=inference.intra_op_threads if inference.intra_op_threads is not None else 1,
        max_batch=inference.max_batch or 1,
        allow_spinning=False,
    )


def _with_inference(config: AppConfig, **changes: Any) -> AppConfig:
    return config.model_copy(update={"inference": config.inference.model_copy(update=changes)})


def _failover_policy(config: AppConfig) -> FailoverPolicy:
    inference = config.inference
    return FailoverPolicy(inference.gpu_retry_initial_s, inference.gpu_retry_max_s, inference.inference_timeout_s)


def _needs_new_engine(old: AppConfig, new: AppConfig) -> bool:
    if (new.model.name, new.model.manifest) != (old.model.name, old.model.manifest):
        return True
    return any(getattr(new.inference, f) != getattr(old.inference, f) for f in _ENGINE_FIELDS)


class Pipeline:
    """Runs until every camera has ended (recorded sources) or `request_stop()`."""

    def __init__(
        self,
        config: AppConfig,
        sink: Sink | None = None,
        *,
        on_tick: Callable[[Pipeline], None] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        accelerator: AcceleratorInfo | None = None,
        keep_alive: bool = False,
        engine_loader: Callable[..., Engine] = load_engine,
    ) -> None:
        self.config = config
        self._load_engine = engine_loader
        self._failover = Failover(_failover_policy(config))
        # A module keeps running with no camera (its cameras may come later from the twin).
        self._keep_alive = keep_alive
        self.accelerator = accelerator
        self._gpu = GpuTelemetry.open(accelerator) if accelerator is not None else None
        self.metrics = PipelineMetrics()
        self._own_sink = sink is None
        self.sink: Sink = sink or open_sink(
            config.sink.kind, config.sink.path, config.sink.rotate_mb, config.sink.backups
        )
        self._on_tick = on_tick
        self._on_event = on_event
        self._ready = threading.Condition()
        self._queues: dict[str, FrameQueue] = {}
        self._sources: dict[str, Source] = {}
        self._stop = threading.Event()
        # Wakes the supervisor before its tick: a stop request, or the stages finishing.
        self._wake = threading.Event()
        self._done = threading.Event()
        self._lock = threading.RLock()
        self._batch_ids = itertools.count()
        self.latest = LatestFrames()
        self._publisher = Publisher(lambda: self.sink, self.metrics, self.latest)
        self._stages: InferenceStages | None = None
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        # Liveness: the supervisor's last round (the health endpoint reads it).
        self.last_tick = time.monotonic()
        self._camera_states: dict[str, str] = {}
        self.started_at: float | None = None
        # Why CUDA graphs were switched off at run time; they stay off for this process.
        self._cuda_graph_off: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Load the model and engine (errors surface here), then start every thread."""
        configure_ffmpeg()
        self._stages = self._build_stages(self.config)
        self.started_at = time.time()
        self._publisher.start()
        # Cameras first: stages that find no camera at all would end at once.
        for camera in self.config.cameras:
            self._add_camera(camera)
        self._stages.start()
        self._supervisor.start()
        self.event(
            "started",
            version=__version__,
            provider=self._stages.engine.provider,
            model=self._stages.model.name,
            cameras=[c.id for c in self.config.cameras],
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

    # -- building ----------------------------------------------------------------------------

    def _build_stages(self, config: AppConfig) -> InferenceStages:
        model = resolve_model(config.model.name, manifest=config.model.manifest)
        inference = config.inference
        wanted = requested_providers(EngineConfig(provider=inference.provider, use_tensorrt=inference.use_tensorrt))
        gpu_possible = any(p in GPU_PROVIDERS and provider_load_error(p) is None for p in wanted)
        layout = choose_layout(config, on_gpu=gpu_possible)
        in_graph = inference.preprocess == "graph"
        engine = self._load_engine(model, self._engine_config(config, layout), layout.max_batch, in_graph)
        if gpu_possible and not engine.on_gpu:
            log.warning("GPU provider not used; re-laying out inference for the CPU")
            layout = choose_layout(config, on_gpu=False)
            engine = self._load_engine(model, self._engine_config(config, layout), layout.max_batch, in_graph)
        cpu_config = self._engine_config(_with_inference(config, provider="cpu"), choose_layout(config, on_gpu=False))
        log.info(
            "inference: %s, %d worker(s) x %d intra-op thread(s), batches up to %d",
            engine.provider,
            layout.workers,
            layout.intra_op_threads,
            layout.max_batch,
        )
        scheduler = Scheduler(
            queues=lambda: self._queues,
            target_fps=self._target_fps,
            ready=self._ready,
            max_batch=layout.max_batch,
            max_wait_s=inference.max_batch_wait_ms / 1000.0,
            on_throttled=lambda frame: self._drop(frame, "throttled"),
        )
        return InferenceStages(
            model=model,
            engine=engine,
            layout=layout,
            scheduler=scheduler,
            metrics=self.metrics,
            deliver=self._publisher.submit,
            on_finished=self._wake.set,
            batch_ids=self._batch_ids,
            idle=self._sources_idle,
            drop=self._drop,
            preprocessed=self.latest.keep,
            score_threshold=config.model.score_threshold,
            nms_iou=config.model.nms_iou,
            preprocess_workers=inference.preprocess_workers,
            rescue=lambda: self._load_engine(model, cpu_config, layout.max_batch, in_graph),
        )

    @staticmethod
    def _engine_config(config: AppConfig, layout: Layout) -> EngineConfig:
        return EngineConfig(
            provider=config.inference.provider,
            use_tensorrt=config.inference.use_tensorrt,
            intra_op_threads=layout.intra_op_threads,
            inter_op_threads=1,
            allow_spinning=layout.allow_spinning,
            fp16=config.inference.fp16,
            cuda_graph=config.inference.cuda_graph,
        )

    def _add_camera(self, camera: CameraConfig, start_seq: int = 0) -> None:
        every_frame = camera.keeps_every_frame
        size = self.config.sources.every_frame_queue_size if every_frame else self.config.sources.live_queue_size
        frame_queue = FrameQueue(
            size,
            drop_oldest=not every_frame,
            ready=self._ready,
            on_drop=lambda frame: self._drop(frame, "queue_full" if not self._stop.is_set() else "shutdown"),
        )
        source = Source(camera, self.config.sources, frame_queue, self.metrics, start_seq=start_seq)
        with self._lock:
            self._queues = {**self._queues, camera.id: frame_queue}
            self._sources[camera.id] = source
        source.start()

    def _remove_camera(self, camera_id: str) -> int:
        """Stop a camera; its queued frames are dropped. Returns the next sequence number."""
        with self._lock:
            source = self._sources.pop(camera_id)
            frame_queue = self._queues[camera_id]
            self._queues = {k: v for k, v in self._queues.items() if k != camera_id}
        source.stop()
        for frame in frame_queue.drain():
            self._drop(frame, "camera_removed")
        self.latest.forget(camera_id)
        return source.next_seq

    # -- callbacks from the stages -------------------------------------------------------------

    def _drop(self, frame: Frame, reason: str) -> None:
        self.metrics.camera(frame.camera).dropped_frames(reason)
        frame.release()

    def _target_fps(self, camera_id: str) -> float | None:
        camera = self.config.camera(camera_id)
        return camera.target_fps if camera else None

    def _sources_idle(self) -> bool:
        """No frame will come any more: every camera has ended and every queue is empty."""
        if self._keep_alive and not self._stop.is_set():
            return False
        with self._lock:
            sources = list(self._sources.values())
            queues = list(self._queues.values())
        return all(s.ended for s in sources) and not any(len(q) for q in queues)

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
                for source in list(self._sources.values()):
                    source.check_stall(now)
                self._report_camera_changes()
                if self._on_tick is not None:
                    self._on_tick(self)
                if now >= next_metrics:
                    self._emit_metrics()
                    next_metrics = now + self.config.metrics_interval_s
                self._check_engine()
                stages = self._stages
                if stages is not None and not stages.running and self._sources_idle():
                    break
        except Exception:
            log.exception("supervisor failed")
        self._shutdown()

    def _check_engine(self) -> None:
        """Fail over from a GPU that raised or hung; bring it back when its retry is due."""
        stages = self._stages
        if stages is None:
            return
        stalled = stages.stalled_for()
        hung = stalled > self._failover.policy.inference_timeout_s
        failure = stages.failure or (f"an inference run has not returned for {stalled:.0f} s" if hung else None)
        with self._lock:
            if failure and stages.engine.on_gpu:
                self._fall_back(stages, failure, hung)
            elif self._failover.retry_due():
                self._retry_gpu()

    def _fall_back(self, stages: InferenceStages, reason: str, hung: bool) -> None:
        previous = stages.engine.provider
        graph = stages.engine.status.cuda_graph
        try:
            # CUDA graphs are the likelier culprit; without them the GPU may still serve.
            replacement = self._build_stages(
                _with_inference(self.config, **({"cuda_graph": False} if graph else {"provider": "cpu"}))
            )
        except Exception as exc:  # noqa: BLE001 - keep the failing stages rescuing batches on the CPU
            log.error("cannot build fallback inference stages: %s", exc)
            return
        retry_in = None if graph else self._failover.failed(reason)
        if graph:
            self._cuda_graph_off = reason
        # A hung run may never return: its batch is given up, the queued ones run on the CPU.
        abandoned = stages.abandon_hung(reason) if hung else 0
        self._swap_stages(replacement, join_timeout_s=1.0 if hung else 30.0)
        self.metrics.provider_switches += 1
        self.event(
            "provider_switched",
            previous=previous,
            provider=replacement.engine.provider,
            reason=reason,
            cuda_graph_disabled=graph,
            retry_gpu_in_s=retry_in,
            frames_abandoned=abandoned,
        )

    def _retry_gpu(self) -> None:
        try:
            config = self.config if self._cuda_graph_off is None else _with_inference(self.config, cuda_graph=False)
            stages = self._build_stages(config)
        except Exception as exc:  # noqa: BLE001
            stages, error = None, first_line(exc)
        else:
            error = (
                None
                if stages.engine.on_gpu
                else "the GPU provider did not load: "
                + "; ".join(f"{p}: {r}" for p, r in stages.engine.status.dropped.items())
            )
        if error is not None:
            wait = self._failover.postpone()
            self.event("gpu_retry_failed", reason=error, retry_gpu_in_s=wait)
            return
        assert stages is not None
        self._failover.restored()
        self._swap_stages(stages)
        self.metrics.provider_switches += 1
        self.event("provider_restored", provider=stages.engine.provider)

    def _shutdown(self) -> None:
        with self._lock:
            sources = list(self._sources.values())
        for source in sources:
            source.stop()
        with self._lock:
            queues = list(self._queues.values())
        for frame_queue in queues:
            for frame in frame_queue.drain():
                self._drop(frame, "shutdown")
        if self._stages is not None:
            self._stages.stop()
            if not self._stages.join(timeout=30):
                log.error("inference stages did not finish within 30 s")
        self._publisher.stop(timeout=30)
        self._report_camera_changes()
        self._emit_metrics()
        self.event("stopped", uptime_s=round(time.time() - (self.started_at or time.time()), 2))
        try:
            self.sink.flush()
            if self._own_sink:
                self.sink.close()
        except Exception:
            log.exception("closing the sink failed")
        if self._gpu is not None:
            self._gpu.close()
        self._done.set()

    def _emit_metrics(self) -> None:
        document = self.metrics_snapshot()
        try:
            self.sink.publish(document)
            self.sink.flush()
        except Exception as exc:  # noqa: BLE001
            log.error("cannot publish metrics: %s", exc)

    def _report_camera_changes(self) -> None:
        for camera_id, stats in list(self.metrics.cameras.items()):
            state = stats.state
            previous = self._camera_states.get(camera_id)
            if state != previous:
                self._camera_states[camera_id] = state
                if previous is not None:
                    self.event("camera_state", camera=camera_id, state=state, previous=previous, error=stats.last_error)

    def event(self, name: str, **details: Any) -> None:
        """A lifecycle event: to the sink (the `events` output upstream), the log and on_event."""
        document = {
            "type": "event",
            "schema": "edgevision.event/1",
            "event": name,
            "at": iso_time(time.time()),
            **details,
        }
        log.info("event %s %s", name, details)
        try:
            self.sink.publish(document)
        except Exception as exc:  # noqa: BLE001
            log.error("cannot publish event %s: %s", name, exc)
        if self._on_event is not None:
            self._on_event(document)

    # -- views ---------------------------------------------------------------------------------

    @property
    def engine(self) -> Engine | None:
        return self._stages.engine if self._stages is not None else None

    @property
    def model(self) -> ResolvedModel | None:
        return self._stages.model if self._stages is not None else None

    def camera_ids(self) -> list[str]:
        with self._lock:
            return list(self._sources)

    def queue_depths(self) -> dict[str, int]:
        depths = {f"camera:{cid}": len(q) for cid, q in self._queues.items()}
        if self._stages is not None:
            depths.update(self._stages.queue_depths())
        depths["publish"] = self._publisher.depth()
        return depths

    def metrics_snapshot(self) -> dict[str, Any]:
        stages = self._stages
        extra = {}
        if stages is not None:
            extra = {
                "provider": stages.engine.provider,
                "model": stages.model.name,
                "in_flight_batches": stages.in_flight,
            }
        if self._gpu is not None:
            extra["gpu"] = self._gpu.sample()
        return self.metrics.snapshot(queues=self.queue_depths(), extra=extra)

    def status(self) -> dict[str, Any]:
        stages = self._stages
        engine = stages.engine if stages else None
        return {
            "version": __version__,
            "started_at": iso_time(self.started_at) if self.started_at else None,
            "accelerator": self.accelerator.to_dict() if self.accelerator else None,
            "model": stages.model.name if stages else None,
            "provider": engine.status.to_dict() if engine else None,
            "layout": vars(stages.layout) if stages else None,
            "failover": {**self._failover.to_dict(), "cuda_graph_disabled": self._cuda_graph_off},
            "cameras": {
                cid: {
                    "uri": redact(source.camera.uri),
                    "state": source.stats.state,
                    "last_error": source.stats.last_error,
                    "captured": source.stats.captured,
                }
                for cid, source in sorted(self._sources.items())
            },
        }

    # -- live configuration --------------------------------------------------------------------

    def apply(self, new: AppConfig) -> dict[str, list[str]]:
        """Switch to a new configuration: live where possible, restarting only what changed.

        Raises (and keeps the running configuration) if a new model or engine cannot be built.
        """
        with self._lock:
            old = self.config
            changes: dict[str, list[str]] = {"live": [], "restarted": []}
            if _needs_new_engine(old, new):
                stages = self._build_stages(new)  # raises before anything is touched
                self._swap_stages(stages)
                changes["restarted"].append("inference")
            else:
                assert self._stages is not None
                self._stages.scheduler.max_wait_s = new.inference.max_batch_wait_ms / 1000.0
                self._stages.set_thresholds(new.model.score_threshold, new.model.nms_iou)
                if new.model != old.model or new.inference != old.inference:
                    changes["live"].append("thresholds/batching")
            self.config = new
            self._failover.policy = _failover_policy(new)
            if new.sources != old.sources:
                for camera_id in list(self._sources):
                    self._restart_camera(camera_id, new.camera(camera_id))
                changes["restarted"].append("all cameras (source options)")
            else:
                self._apply_cameras(old, new, changes)
            if new.metrics_interval_s != old.metrics_interval_s:
                changes["live"].append("metrics_interval_s")
            if new.sink != old.sink and self._own_sink:
                previous, self.sink = (
                    self.sink,
                    open_sink(new.sink.kind, new.sink.path, new.sink.rotate_mb, new.sink.backups),
                )
                previous.close()
                changes["restarted"].append("sink")
        self.event("config_applied", changes=changes)
        return changes

    def _apply_cameras(self, old: AppConfig, new: AppConfig, changes: dict[str, list[str]]) -> None:
        old_ids = {c.id for c in old.cameras}
        new_ids = {c.id for c in new.cameras}
        for camera_id in sorted(old_ids - new_ids):
            self._remove_camera(camera_id)
            changes["restarted"].append(f"camera {camera_id} (removed)")
        for camera in new.cameras:
            before = old.camera(camera.id)
            if before is None:
                self._add_camera(camera)
                changes["restarted"].append(f"camera {camera.id} (added)")
            elif before.model_copy(update={"target_fps": camera.target_fps}) != camera:
                self._restart_camera(camera.id, camera)
                changes["restarted"].append(f"camera {camera.id}")
            elif before.target_fps != camera.target_fps:
                changes["live"].append(f"camera {camera.id} target_fps")

    def _restart_camera(self, camera_id: str, camera: CameraConfig | None) -> None:
        next_seq = self._remove_camera(camera_id)
        if camera is not None:
            self._add_camera(camera, start_seq=next_seq)

    def restart_camera(self, camera_id: str) -> None:
        """Reopen one camera now (operators' `restartCamera`)."""
        with self._lock:
            source = self._sources.get(camera_id)
        if source is None:
            raise KeyError(camera_id)
        source.restart()

    def _swap_stages(self, stages: InferenceStages, join_timeout_s: float = 30.0) -> None:
        """Controlled restart: the old stages finish their batches, then the new ones start."""
        old = self._stages
        if old is not None:
            old.stop()
            old.join(timeout=join_timeout_s)
        self._stages = stages
        stages.start()
        self.event(
            "provider", provider=stages.engine.provider, dropped=stages.engine.status.dropped, model=stages.model.name
        )
