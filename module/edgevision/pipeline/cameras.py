"""The running cameras: one source and one bounded frame queue each, added, removed and restarted
while the pipeline runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from edgevision.config.camera import CameraConfig
from edgevision.config.model import AppConfig, SourceOptions
from edgevision.metrics import CameraStats, PipelineMetrics
from edgevision.pipeline import reconfigure
from edgevision.redaction import redact_uri
from edgevision.sources.frames import Frame, FrameQueue
from edgevision.sources.source import Source


class CameraSource(Protocol):
    """What the pipeline needs of a camera's reader (edgevision.sources.source.Source)."""

    camera: CameraConfig
    stats: CameraStats

    @property
    def ended(self) -> bool: ...

    @property
    def next_seq(self) -> int: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def restart(self) -> None: ...

    def check_stall(self, now: float) -> bool: ...


# (camera, source options, its queue, metrics, first sequence number) -> a source, not started.
SourceFactory = Callable[[CameraConfig, SourceOptions, FrameQueue, PipelineMetrics, int], CameraSource]


def real_source(
    camera: CameraConfig, options: SourceOptions, queue: FrameQueue, metrics: PipelineMetrics, start_seq: int
) -> CameraSource:
    return Source(camera, options, queue, metrics, start_seq=start_seq)


class Cameras:
    """Thread-safe; the scheduler reads `queues()` (a fresh dict per change) without the lock."""

    def __init__(
        self,
        metrics: PipelineMetrics,
        ready: threading.Condition,
        stopping: threading.Event,
        source_factory: SourceFactory = real_source,
        on_removed: Callable[[str], None] = lambda _camera_id: None,
    ) -> None:
        self._metrics = metrics
        self._ready = ready
        self._stopping = stopping
        self._factory = source_factory
        # A removed or restarted camera's preview frame is dropped with it.
        self._on_removed = on_removed
        self._lock = threading.RLock()
        self._queues: dict[str, FrameQueue] = {}
        self._sources: dict[str, CameraSource] = {}

    def drop(self, frame: Frame, reason: str) -> None:
        """A frame that will not be inferred: counted by reason, its buffer given back."""
        self._metrics.camera(frame.camera).dropped_frames(reason)
        frame.release()

    def queues(self) -> dict[str, FrameQueue]:
        return self._queues

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._sources)

    def sources(self) -> dict[str, CameraSource]:
        with self._lock:
            return dict(self._sources)

    def add(self, camera: CameraConfig, options: SourceOptions, start_seq: int = 0) -> None:
        every_frame = camera.keeps_every_frame
        size = options.every_frame_queue_size if every_frame else options.live_queue_size

        def on_drop(frame: Frame) -> None:
            self.drop(frame, "shutdown" if self._stopping.is_set() else "queue_full")

        frame_queue = FrameQueue(size, drop_oldest=not every_frame, ready=self._ready, on_drop=on_drop)
        source = self._factory(camera, options, frame_queue, self._metrics, start_seq)
        with self._lock:
            self._queues = {**self._queues, camera.id: frame_queue}
            self._sources[camera.id] = source
        source.start()

    def remove(self, camera_id: str, reason: str = "camera_removed") -> int:
        """Stop a camera; its queued frames are dropped. Returns its next sequence number."""
        with self._lock:
            source = self._sources.pop(camera_id)
            frame_queue = self._queues[camera_id]
            self._queues = {k: v for k, v in self._queues.items() if k != camera_id}
        source.stop()
        for frame in frame_queue.drain():
            self.drop(frame, reason)
        self._on_removed(camera_id)
        return source.next_seq

    def carry_out(self, action: reconfigure.Action, config: AppConfig) -> None:
        """A camera action of a reconfiguration plan; a restarted camera continues its numbering."""
        if isinstance(action, reconfigure.RestartAllCameras):
            for camera_id in self.ids():
                self._replace(camera_id, config)
        elif isinstance(action, reconfigure.RemoveCamera):
            self.remove(action.camera_id)
        elif isinstance(action, reconfigure.AddCamera):
            self.add(action.camera, config.sources)
        elif isinstance(action, reconfigure.RestartCamera):
            self._replace(action.camera.id, config)

    def _replace(self, camera_id: str, config: AppConfig) -> None:
        next_seq = self.remove(camera_id)
        camera = config.camera(camera_id)
        if camera is not None:
            self.add(camera, config.sources, start_seq=next_seq)

    def restart(self, camera_id: str) -> None:
        """Reopen one camera now; KeyError if there is no such camera."""
        with self._lock:
            source = self._sources[camera_id]
        source.restart()

    def check_stalls(self, now: float) -> None:
        for source in self.sources().values():
            source.check_stall(now)

    def idle(self) -> bool:
        """No frame will come any more: every camera has ended and every queue is empty."""
        with self._lock:
            sources = list(self._sources.values())
            queues = list(self._queues.values())
        return all(s.ended for s in sources) and not any(len(q) for q in queues)

    def stop_all(self) -> None:
        """Stop every source and drop what is queued (shutdown)."""
        for source in self.sources().values():
            source.stop()
        with self._lock:
            queues = list(self._queues.values())
        for frame_queue in queues:
            for frame in frame_queue.drain():
                self.drop(frame, "shutdown")

    def status(self) -> dict[str, dict[str, Any]]:
        return {
            cid: {
                "uri": redact_uri(source.camera.uri),
                "state": source.stats.state,
                "last_error": source.stats.last_error,
                "captured": source.stats.captured,
            }
            for cid, source in sorted(self.sources().items())
        }

    def depths(self) -> dict[str, int]:
        return {f"camera:{cid}": len(q) for cid, q in self._queues.items()}
