"""The publish stage: a reorder buffer that puts batches back in order, then one result message per frame."""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time

from edgevision.analytics.camera import Analytics
from edgevision.errors import first_line
from edgevision.evidence.recorder import EvidenceRecorder
from edgevision.metrics import PipelineMetrics
from edgevision.pipeline.batches import Batch
from edgevision.preview_frames import PreviewFrames
from edgevision.publish.messages import result_message
from edgevision.publish.sinks import Sink

log = logging.getLogger(__name__)

_STOP = object()


class ReorderBuffer:
    """Receives finished batches in any order; publishes them in batch order.

    Batches are numbered in the order the scheduler formed them, per model (each model's stages
    number their own), and each camera's frames enter one model's batches in capture order, so
    batch order keeps every camera's results in order while several inference workers finish
    out of order. A camera moved to another model is moved only once its old model's stages have
    handed over every batch (edgevision.pipeline.pipeline), so its order holds across the move.
    """

    def __init__(
        self,
        sink: Sink,
        metrics: PipelineMetrics,
        preview: PreviewFrames,
        analytics: Analytics,
        maxsize: int = 64,
        evidence: EvidenceRecorder | None = None,
    ) -> None:
        self._sink = sink
        self._evidence = evidence
        # Tracks, zones, lines and masks: run here because results leave in each camera's order.
        self._analytics = analytics
        self._preview = preview
        self._metrics = metrics
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        # Per model key: finished batches waiting for an earlier one, and the next id to publish.
        self._pending: dict[str, list[tuple[int, Batch]]] = {}
        self._next_id: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="publish", daemon=True)
        self.sink_errors = 0

    def start(self) -> None:
        self._thread.start()

    def submit(self, batch: Batch) -> None:
        self._queue.put(batch)

    def stop(self, timeout: float | None = None) -> None:
        """Publish everything submitted so far, then end."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def depth(self) -> int:
        return self._queue.qsize() + sum(len(p) for p in list(self._pending.values()))

    def _run(self) -> None:
        while (batch := self._queue.get()) is not _STOP:
            lane = batch.producer.lane
            pending = self._pending.setdefault(lane, [])
            heapq.heappush(pending, (batch.id, batch))
            while pending and pending[0][0] == self._next_id.get(lane, 0):
                self._publish(heapq.heappop(pending)[1])
                self._next_id[lane] = self._next_id.get(lane, 0) + 1
        # Anything left out of order (a gap can only come from a bug upstream) still goes out.
        for pending in self._pending.values():
            while pending:
                self._publish(heapq.heappop(pending)[1])

    def _publish(self, batch: Batch) -> None:
        started = time.perf_counter()
        sink = self._sink
        producer = batch.producer
        size = len(batch.frames)
        for index, frame in enumerate(batch.frames):
            stats = self._metrics.camera(frame.camera)
            if batch.error is not None or batch.detections is None:
                stats.dropped_frames("error")
                self._metrics.inference.failed(batch.error or "no detections")
                continue
            if index in batch.bad_frames:
                stats.dropped_frames("bad_frame")
                stats.record_error(batch.bad_frames[index])
                continue
            latency_ms = (time.monotonic() - frame.captured_mono) * 1e3
            found = batch.detections[index]
            detected = found is not None
            if found is None:
                # The detector skipped it: the camera's tracker carries the boxes.
                carried = self._analytics.carry(
                    frame.camera, producer.labels, frame.captured_at, frame.media_time_s, frame.seq
                )
                if carried is None:
                    stats.dropped_frames("error")
                    continue
                analysed = carried
            else:
                analysed = self._analytics.process(
                    frame.camera, found, producer.labels, frame.captured_at, frame.media_time_s, frame.seq
                )
            detections = analysed.detections
            self._preview.published(frame.camera, frame.seq, detections, producer.labels, analysed.track_ids)
            if self._evidence is not None:
                self._evidence.published(frame.camera, frame.seq, detections, producer.labels, analysed.track_ids)
            message = result_message(
                camera=frame.camera,
                seq=frame.seq,
                captured_at=frame.captured_at,
                media_time_s=frame.media_time_s,
                latency_ms=latency_ms,
                detections=detections,
                labels=producer.labels,
                model=producer.model,
                provider=producer.provider,
                batch_id=batch.id,
                batch_size=size,
                track_ids=analysed.track_ids,
                counts=analysed.counts,
                detected=detected,
            )
            if detected:
                self._metrics.inference.ok()
            try:
                sink.publish(message)
                self._metrics.results.ok()
            except Exception as exc:  # noqa: BLE001 - a failing sink must not stop the pipeline
                self.sink_errors += 1
                self._metrics.results.failed(f"the results sink failed: {first_line(exc)}")
                if self.sink_errors == 1 or self.sink_errors % 1000 == 0:
                    log.error("sink failed (%d so far): %s", self.sink_errors, exc)
            stats.inferred_frame(latency_ms, detected)
        self._metrics.stage("publish", time.perf_counter() - started, max(size, 1))
