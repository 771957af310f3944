"""Forms inference batches across cameras, honouring each camera's target fps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from edgevision.sources.frames import Frame, FrameQueue


class Scheduler:
    """Takes frames round-robin from the camera queues into batches of up to `max_batch`.

    A batch is sent when full, or `max_batch_wait_ms` after its first frame. A camera with a
    target fps contributes a frame only when one is due; until then its queue keeps only the
    newest frames.
    """

    def __init__(
        self,
        queues: Callable[[], dict[str, FrameQueue]],
        target_fps: Callable[[str], float | None],
        ready: threading.Condition,
        max_batch: int,
        max_wait_s: float,
        on_throttled: Callable[[Frame], None],
    ) -> None:
        self._queues = queues
        self._target_fps = target_fps
        self._ready = ready
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._on_throttled = on_throttled
        self._next_due: dict[str, float] = {}
        self._turn = 0

    def collect(self, stop: threading.Event, idle: Callable[[], bool]) -> list[Frame]:
        """The next batch; empty when stopped, or when `idle()` says no more frames will come."""
        batch: list[Frame] = []
        deadline: float | None = None
        with self._ready:
            while True:
                # Once stopped, frames stay queued for whoever runs next (a rebuilt stage set).
                if stop.is_set():
                    return batch
                wake_at = self._take(batch)
                now = time.monotonic()
                if batch and deadline is None:
                    deadline = now + self.max_wait_s
                if len(batch) >= self.max_batch or (batch and now >= deadline):
                    return batch
                if not batch and idle():
                    return batch
                timeout = 0.1
                if deadline is not None:
                    timeout = min(timeout, deadline - now)
                if wake_at is not None:
                    timeout = min(timeout, wake_at - now)
                self._ready.wait(max(timeout, 0.0005))

    def _take(self, batch: list[Frame]) -> float | None:
        """Move due frames into the batch; returns when the next throttled frame falls due."""
        queues = list(self._queues().items())
        if not queues:
            return None
        wake_at: float | None = None
        progress = True
        while progress and len(batch) < self.max_batch:
            progress = False
            for offset in range(len(queues)):
                camera, queue = queues[(self._turn + offset) % len(queues)]
                if not len(queue):
                    continue
                fps = None if not queue.drop_oldest else self._target_fps(camera)
                now = time.monotonic()
                if fps:
                    due = self._next_due.get(camera, now)
                    if now < due:
                        wake_at = due if wake_at is None else min(wake_at, due)
                        continue
                    frame = self._newest(queue)
                    self._next_due[camera] = queue.wanted_at = max(due + 1.0 / fps, now)
                else:
                    queue.wanted_at = None
                    frame = queue.pop()
                if frame is None:
                    continue
                batch.append(frame)
                progress = True
                if len(batch) >= self.max_batch:
                    break
            self._turn = (self._turn + 1) % len(queues)
        return wake_at

    def _newest(self, queue: FrameQueue) -> Frame | None:
        """A throttled live camera sends its newest frame; older queued ones are skipped."""
        frames = queue.drain()
        for old in frames[:-1]:
            self._on_throttled(old)
        return frames[-1] if frames else None
