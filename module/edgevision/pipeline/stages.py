"""The inference stages: schedule -> preprocess -> infer -> postprocess, each on its own threads."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable

import numpy as np

from edgevision.detector.load import LoadedDetector
from edgevision.errors import first_line
from edgevision.families.base import Decoder
from edgevision.inference.engine import Engine
from edgevision.metrics import PipelineMetrics
from edgevision.pipeline.batches import Batch, Producer, SlotPool
from edgevision.pipeline.layout import Layout
from edgevision.pipeline.scheduler import Scheduler
from edgevision.preprocess import Preprocessor
from edgevision.sources.frames import Frame

log = logging.getLogger(__name__)

_STOP = object()
# A batch failing for the reason last logged is logged again at most this often.
FAILURE_LOG_S = 30.0


class InferenceStages:
    """One engine and the threads that feed it; stopped and rebuilt when the model or layout changes.

    Every batch that is formed reaches `deliver`, failed or not, so the publisher's reorder
    buffer never waits for a batch that will not come.
    """

    def __init__(
        self,
        *,
        detector: LoadedDetector,
        layout: Layout,
        scheduler: Scheduler,
        metrics: PipelineMetrics,
        deliver: Callable[[Batch], None],
        on_finished: Callable[[], None],
        batch_ids: itertools.count,
        idle: Callable[[], bool],
        drop: Callable[[Frame, str], None],
        preprocessed: Callable[[Frame], None],
        decoder: Decoder,
        preprocess_workers: int,
        rescue: Callable[[], Engine] | None = None,
        lane: str = "default",
        gate: Callable[[Frame], bool] = lambda _frame: True,
    ) -> None:
        self._arguments = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.lane = lane
        self.detector = detector
        self.model = detector.model
        self.engine = engine = detector.engine
        self.layout = layout
        self.scheduler = scheduler
        self.metrics = metrics
        self._deliver = deliver
        self._on_finished = on_finished
        self._batch_ids = batch_ids
        self._idle = idle
        self._drop = drop
        self._preprocessed = preprocessed
        self._gate = gate
        self.producer = Producer(detector.name, engine.provider, detector.labels, lane)
        self.decoder = decoder
        self._pre_workers = preprocess_workers
        self.pool = SlotPool(engine, layout.max_batch, per_size=layout.workers + preprocess_workers + 1)
        self._pre_q: queue.Queue = queue.Queue(maxsize=preprocess_workers + 1)
        self._infer_q: queue.Queue = queue.Queue(maxsize=layout.workers + 1)
        self._post_q: queue.Queue = queue.Queue(maxsize=layout.workers + 1)
        self._stop = threading.Event()
        # Set only when stages are abandoned: a formed batch then gives up waiting for a slot.
        self._abort = threading.Event()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._remaining = {"preprocess": preprocess_workers, "inference": layout.workers}
        self._threads: list[threading.Thread] = []
        # A GPU run that raised: the first reason, for the pipeline to fail over on. Batches
        # run meanwhile on `rescue` (a CPU engine), so none is lost to the failure.
        self.failure: str | None = None
        self._rescue = rescue
        self._rescue_engine: Engine | None = None
        # Each worker's run in progress and its start, to tell a hung run from a slow one.
        self._runs: dict[str, tuple[float, Batch]] = {}
        # The last failure logged and when, and how many since that were not.
        self._failure_said: tuple[str, float] | None = None
        self._failures_unsaid = 0
        self._abandoned: set[int] = set()

    def restaged(self) -> InferenceStages:
        """New stages on the same engine, model and decoder (new threads, queues and slots):
        how a model's stages take a new set of cameras once the old ones handed over every batch."""
        return InferenceStages(**self._arguments)

    def start(self) -> None:
        specs = [
            ("schedule", self._schedule_loop, 1),
            ("preprocess", self._preprocess_loop, self._pre_workers),
            ("infer", self._infer_loop, self.layout.workers),
            ("postprocess", self._postprocess_loop, 1),
        ]
        for name, target, count in specs:
            for index in range(count):
                thread = threading.Thread(target=target, name=f"{name}-{index}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        """Form no new batch; batches already formed run to the end."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the batches in flight; after `timeout`, abandon the stages (returns False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self.running:
            self._abort.set()
            return False
        return True

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def set_thresholds(self, score_threshold: float, nms_iou: float) -> None:
        # The postprocess thread reads these per batch; each assignment is atomic.
        self.decoder.score_threshold = score_threshold
        self.decoder.nms_iou = nms_iou

    def queue_depths(self) -> dict[str, int]:
        return {
            "preprocess": self._pre_q.qsize(),
            "inference": self._infer_q.qsize(),
            "postprocess": self._post_q.qsize(),
        }

    # -- stage loops -------------------------------------------------------------------------

    def _schedule_loop(self) -> None:
        try:
            while True:
                frames = self.scheduler.collect(self._stop, self._idle)
                if not frames:
                    break
                # Frames the gate lets by stay in the batch (each camera's order is the batch's),
                # but take no place in the slot and no inference.
                carried = frozenset(i for i, frame in enumerate(frames) if not self._gate(frame))
                slot = None
                if len(carried) < len(frames):
                    # Downstream keeps draining, so a slot always comes free, also while stopping.
                    slot = self.pool.acquire(len(frames) - len(carried), self._abort)
                    if slot is None:
                        for frame in frames:
                            self._drop(frame, "shutdown")
                        break
                with self._lock:
                    self._in_flight += 1
                self._pre_q.put(Batch(next(self._batch_ids), frames, slot, self.producer, carried=carried))
        except Exception:
            log.exception("scheduler failed")
        finally:
            for _ in range(self._pre_workers):
                self._pre_q.put(_STOP)

    def _preprocess_loop(self) -> None:
        prepare = self.detector.preprocessor()
        while (batch := self._pre_q.get()) is not _STOP:
            self._preprocess(batch, prepare)
            self._infer_q.put(batch)
        self._finish_stage("preprocess", self._infer_q, self.layout.workers)

    def _infer_loop(self) -> None:
        while (batch := self._infer_q.get()) is not _STOP:
            self._infer(batch)
            if batch.id in self._abandoned:
                return  # came back after being given up for hung; the rescue thread took over
            self._post_q.put(batch)
        self._finish_stage("inference", self._post_q, 1)

    def _postprocess_loop(self) -> None:
        while (batch := self._post_q.get()) is not _STOP:
            self._postprocess(batch)
            self._hand_over(batch)
        self._on_finished()

    # -- one batch through one stage -------------------------------------------------------

    def _preprocess(self, batch: Batch, prepare: Preprocessor) -> None:
        started = time.perf_counter()
        detected = batch.detected
        if detected:
            metas, bad = prepare.prepare([batch.frames[i].image for i in detected], batch.slot)
            batch.metas = metas
            batch.bad_frames = {detected[k]: reason for k, reason in bad.items()}
        for frame in batch.frames:
            self._preprocessed(frame)
        if detected:
            self.metrics.stage("preprocess", time.perf_counter() - started, len(detected))

    def _infer(self, batch: Batch) -> None:
        if not batch.detected:
            return  # every frame carried: nothing to run
        started = time.perf_counter()
        worker = threading.current_thread().name
        self._runs[worker] = (time.monotonic(), batch)
        try:
            if self.failure is None:
                batch.outputs = batch.slot.run()
            else:
                batch.outputs = self._run_rescued(batch)
        except Exception as exc:  # noqa: BLE001 - reported per batch; the stage keeps running
            reason = first_line(exc)
            if self.engine.on_gpu and self._rescue is not None:
                if self.failure is None:
                    self.failure = reason
                    log.error(
                        "%s failed at run time: %s; running on the CPU until the switch", self.engine.provider, reason
                    )
                try:
                    batch.outputs = self._run_rescued(batch)
                except Exception as rescue_exc:  # noqa: BLE001
                    batch.error = f"inference failed: {reason}; on the CPU too: {first_line(rescue_exc)}"
            else:
                batch.error = f"inference failed: {reason}"
            if batch.error:
                self._say_failure(batch.id, batch.error)
        finally:
            self._runs.pop(worker, None)
        self.metrics.stage("inference", time.perf_counter() - started, len(batch.detected))
        self.metrics.batch(len(batch.detected))

    def _say_failure(self, batch_id: int, error: str) -> None:
        """A failed batch in the log: each new reason at once, the same one at most every
        FAILURE_LOG_S with how many were not logged (a model that fails every run would otherwise
        write a line a frame)."""
        now = time.monotonic()
        with self._lock:
            said = self._failure_said
            if said is not None and said[0] == error and now - said[1] < FAILURE_LOG_S:
                self._failures_unsaid += 1
                return
            unsaid, self._failures_unsaid = self._failures_unsaid, 0
            self._failure_said = (error, now)
        more = f" ({unsaid} more batches failed since the last line)" if unsaid else ""
        log.error("batch %d: %s%s", batch_id, error, more)

    def _run_rescued(self, batch: Batch) -> list[np.ndarray]:
        with self._lock:
            if self._rescue_engine is None:
                assert self._rescue is not None
                self._rescue_engine = self._rescue()
        # Rare path: the slot's buffers are bound to the failed engine, so this run allocates.
        return self._rescue_engine.run(batch.slot.input)

    def stalled_for(self) -> float:
        """How long the oldest inference run in progress has been running (0 if none)."""
        starts = [started for started, _ in list(self._runs.values())]
        return time.monotonic() - min(starts) if starts else 0.0

    def abandon_hung(self, reason: str) -> int:
        """Give up on the runs in progress: their batches are delivered as failed (counted, and
        the publisher does not wait for them); queued batches run on the rescue engine.
        Returns the number of frames abandoned."""
        self.failure = self.failure or reason
        hung = [batch for _, batch in list(self._runs.values())]
        frames = 0
        for batch in hung:
            with self._lock:
                if batch.id in self._abandoned:
                    continue
                self._abandoned.add(batch.id)
            batch.error = f"abandoned: {reason}"
            batch.slot = None  # still held by the hung run
            frames += len(batch.frames)
            self._hand_over(batch)
        threading.Thread(target=self._rescue_queued, name="rescue", daemon=True).start()
        return frames

    def _rescue_queued(self) -> None:
        """Stand in for the hung inference workers until the preprocessing stage ends."""
        stops = 0
        while stops < self.layout.workers:
            batch = self._infer_q.get()
            if batch is _STOP:
                stops += 1
                continue
            self._infer(batch)
            self._post_q.put(batch)
        self._post_q.put(_STOP)

    def _postprocess(self, batch: Batch) -> None:
        started = time.perf_counter()
        detected = batch.detected
        if batch.error is None:
            try:
                found = self.decoder(batch.outputs, batch.metas) if detected else []
                by_frame: list = [None] * len(batch.frames)
                for index, detections in zip(detected, found, strict=False):
                    by_frame[index] = detections
                batch.detections = by_frame
            except Exception as exc:  # noqa: BLE001 - e.g. an output that fits no manifest
                batch.error = f"postprocessing failed: {exc}"
                log.error("batch %d: %s", batch.id, batch.error)
        batch.outputs = None
        if batch.slot is not None:
            self.pool.release(batch.slot)
        batch.slot = None
        if detected:
            self.metrics.stage("postprocess", time.perf_counter() - started, len(detected))

    def _hand_over(self, batch: Batch) -> None:
        try:
            self._deliver(batch)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _finish_stage(self, stage: str, next_queue: queue.Queue, next_workers: int) -> None:
        """The last worker of a stage to stop tells every worker of the next one."""
        with self._lock:
            self._remaining[stage] -= 1
            last = self._remaining[stage] == 0
        if last:
            for _ in range(next_workers):
                next_queue.put(_STOP)
