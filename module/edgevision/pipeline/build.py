"""Building the inference stages for a configuration: model, provider, layout, engine, decoder."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edgevision.config.model import DEFAULT_MODEL, AppConfig
from edgevision.detector.loader import DetectorLoader
from edgevision.errors import first_line
from edgevision.inference.options import EngineConfig
from edgevision.inference.providers import gpu_may_run
from edgevision.inference.status import EngineError
from edgevision.metrics import PipelineMetrics
from edgevision.pipeline.batches import Batch
from edgevision.pipeline.cameras import SourceFactory, real_source
from edgevision.pipeline.failover import with_inference
from edgevision.pipeline.layout import ALLOW_SPINNING, Layout, choose_layout
from edgevision.pipeline.scheduler import Scheduler
from edgevision.pipeline.stages import InferenceStages
from edgevision.sources.frames import Frame, FrameQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Seams:
    """The pipeline's neighbours: where a test may put a stand-in (never for what it tests)."""

    detector_loader: DetectorLoader = dataclasses.field(default_factory=DetectorLoader)
    source_factory: SourceFactory = real_source
    # Whether a GPU provider may run for a configuration (None: ask ONNX Runtime's libraries).
    gpu_check: Callable[[AppConfig], bool] | None = None


def engine_config(config: AppConfig, layout: Layout) -> EngineConfig:
    """One model's engine settings. inference.gpu_mem_limit_mb is per process: each model in use
    gets an equal share, which its engine divides among its sessions."""
    inference = config.inference
    limit = inference.gpu_mem_limit_mb
    return EngineConfig(
        provider=inference.provider,
        use_tensorrt=inference.use_tensorrt,
        intra_op_threads=layout.intra_op_threads,
        inter_op_threads=1,
        allow_spinning=ALLOW_SPINNING,
        device_id=inference.device_id,
        gpu_mem_limit_mb=None if limit is None else limit / len(config.model_keys()),
        tensorrt_cache_dir=inference.tensorrt_cache_dir,
        fp16=inference.fp16,
        cuda_graph=inference.cuda_graph,
    )


@dataclass(frozen=True)
class StageHooks:
    """What the stages need from the pipeline around them."""

    # The queues of the cameras whose frames go through one model (by model key).
    queues: Callable[[str], dict[str, FrameQueue]]
    target_fps: Callable[[str], float | None]
    ready: threading.Condition
    metrics: PipelineMetrics
    deliver: Callable[[Batch], None]
    on_finished: Callable[[], None]
    idle: Callable[[], bool]
    drop: Callable[[Frame, str], None]
    preprocessed: Callable[[Frame], None]
    # Whether the detector sees a frame (False: the camera's tracker carries its boxes).
    gate: Callable[[Frame], bool] = lambda _frame: True


class StageBuilder:
    """Builds stages for a configuration; batch ids run on across rebuilds."""

    def __init__(self, hooks: StageHooks, seams: Seams) -> None:
        self._hooks = hooks
        self._detectors = seams.detector_loader
        self._gpu_check = seams.gpu_check or (lambda c: gpu_may_run(c.inference.provider, c.inference.use_tensorrt))
        # Batch ids per model key, running on across rebuilds (the publisher orders by them).
        self._batch_ids: dict[str, itertools.count] = {}
        # When the build in progress began (None: none): a TensorRT engine build takes minutes,
        # during which the supervisor is busy but not stuck.
        self.building_since: float | None = None

    def build(self, config: AppConfig, key: str = DEFAULT_MODEL) -> InferenceStages:
        """The stages of one model (by key) of a configuration. Raises (BuildError and kin)
        before anything runs if the model or engine cannot be had."""
        self.building_since = time.monotonic()
        try:
            return self._build(config, key)
        finally:
            self.building_since = None

    def _build(self, config: AppConfig, key: str) -> InferenceStages:
        model_config = config.model_for(key)
        model = self._detectors.resolve(model_config)
        inference = config.inference
        gpu_possible = self._gpu_check(config)
        layout = choose_layout(config, on_gpu=gpu_possible)
        in_graph = inference.preprocess == "graph"
        detector = self._detectors.load(model, engine_config(config, layout), layout.max_batch, in_graph)
        if gpu_possible and not detector.engine.on_gpu:
            # The reason was warned when the GPU engine was made: this is only the consequence.
            log.info("GPU provider not used; inference laid out for the CPU")
            layout = choose_layout(config, on_gpu=False)
            detector = self._detectors.load(model, engine_config(config, layout), layout.max_batch, in_graph)
        engine = detector.engine
        if detector.batch < layout.max_batch:
            # A fixed-batch export its family cannot rewrite (the loader said why).
            layout = dataclasses.replace(layout, max_batch=detector.batch)
        if engine.status.cuda_graph and layout.workers > 1:
            # ONNX Runtime: a session replaying CUDA graphs may not be run from several threads.
            engine.status.declined["workers"] = (
                f"{layout.workers} asked; CUDA graphs take one inference worker (a captured graph may not be "
                "replayed from several threads)"
            )
            log.warning("CUDA graphs on: one inference worker, not %d", layout.workers)
            layout = dataclasses.replace(layout, workers=1)
        cpu_config = engine_config(with_inference(config, provider="cpu"), choose_layout(config, on_gpu=False))
        log.info(
            "inference (%s, model %s): %s, %d worker(s) x %d intra-op thread(s), batches up to %d",
            key,
            model.name,
            engine.provider,
            layout.workers,
            layout.intra_op_threads,
            layout.max_batch,
        )
        hooks = self._hooks
        scheduler = Scheduler(
            queues=lambda: hooks.queues(key),
            target_fps=hooks.target_fps,
            ready=hooks.ready,
            max_batch=layout.max_batch,
            max_wait_s=inference.max_batch_wait_ms / 1000.0,
            on_throttled=lambda frame: hooks.drop(frame, "throttled"),
        )
        stages = InferenceStages(
            lane=key,
            detector=detector,
            layout=layout,
            scheduler=scheduler,
            metrics=hooks.metrics,
            deliver=hooks.deliver,
            on_finished=hooks.on_finished,
            batch_ids=self._batch_ids.setdefault(key, itertools.count()),
            idle=hooks.idle,
            drop=hooks.drop,
            preprocessed=hooks.preprocessed,
            gate=hooks.gate,
            decoder=detector.decoder(model_config.score_threshold, model_config.nms_iou),
            preprocess_workers=inference.preprocess_workers,
            rescue=lambda: self._detectors.load(model, cpu_config, layout.max_batch, in_graph).engine,
        )
        # Before any frame, and before the hung-run watchdog sees these stages: each batch size
        # runs once (on a GPU its session is made, TensorRT builds or loads its engine, cuDNN picks
        # algorithms). A model that cannot run fails here, so a live swap to it is refused and the
        # running one kept.
        spec = model.manifest.input
        try:
            took = stages.pool.warm_up((spec.height, spec.width))
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"model {model.name} fails its first run: {first_line(exc)}") from exc
        if engine.on_gpu:
            if took:
                log.info("warmed up batch sizes %s on %s (ms: %s)", list(took), engine.provider, took)
            else:
                log.info("%s: a session per batch and frame size, made as each camera's frames come", engine.provider)
        return stages
