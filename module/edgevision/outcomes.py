"""How a stage has been doing lately: frames that went through it and frames it failed, over a
sliding window, with totals and the last reason. Readiness and the exit status are judged on it.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_S = 30
# A stage is failing when, over the window, at least this many frames failed and they are more
# than half of all it saw: one bad frame is not an outage, a stage that fails every frame is.
MIN_FAILED = 10


@dataclass(frozen=True)
class Recent:
    ok: int
    failed: int
    total_failed: int
    last_error: str | None

    @property
    def failing(self) -> bool:
        return self.failed >= MIN_FAILED and self.failed > self.ok


class Outcomes:
    """Thread-safe; one-second buckets, so a count costs a dict lookup, not an allocation."""

    def __init__(self, window_s: int = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: collections.OrderedDict[int, list[int]] = collections.OrderedDict()
        self.total_ok = 0
        self.total_failed = 0
        self.last_error: str | None = None

    def ok(self, frames: int = 1) -> None:
        self._add(frames, 0, None)

    def failed(self, reason: str, frames: int = 1) -> None:
        self._add(0, frames, reason)

    def _add(self, ok: int, failed: int, reason: str | None) -> None:
        second = int(self._clock())
        with self._lock:
            bucket = self._buckets.get(second)
            if bucket is None:
                bucket = self._buckets[second] = [0, 0]
                while next(iter(self._buckets)) <= second - self._window_s:
                    self._buckets.popitem(last=False)
            bucket[0] += ok
            bucket[1] += failed
            self.total_ok += ok
            self.total_failed += failed
            if reason is not None:
                self.last_error = reason

    def recent(self) -> Recent:
        since = int(self._clock()) - self._window_s
        with self._lock:
            ok = sum(b[0] for s, b in self._buckets.items() if s > since)
            failed = sum(b[1] for s, b in self._buckets.items() if s > since)
            return Recent(ok, failed, self.total_failed, self.last_error)
