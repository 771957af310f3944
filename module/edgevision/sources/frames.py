"""Frames, their reusable buffers, and the bounded per-camera frame queue."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


class BufferPool:
    """Reuses frame-sized arrays so decoding does not allocate a new image per frame."""

    def __init__(self, keep: int = 8) -> None:
        self._free: collections.deque[np.ndarray] = collections.deque()
        self._keep = keep

    def acquire(self, shape: tuple[int, ...] | None) -> np.ndarray | None:
        """A free buffer of this shape, or None (the reader then lets the decoder allocate)."""
        while self._free:
            try:
                buffer = self._free.pop()
            except IndexError:
                return None
            if shape is None or buffer.shape == shape:
                return buffer
        return None

    def release(self, buffer: np.ndarray) -> None:
        # Read-only images are shared (synthetic frames) and never recycled.
        if buffer.flags.writeable and len(self._free) < self._keep:
            self._free.append(buffer)


@dataclass(eq=False)
class Frame:
    camera: str
    seq: int
    captured_at: float  # wall clock, seconds since the epoch
    captured_mono: float  # monotonic clock, for latency
    image: np.ndarray | None
    # The frame's time in its source: a file's position, else the camera's capture clock (seconds
    # since its reader started). Tracking, dwell and event times run on it, so a file played
    # faster than real time still dwells as long as its people did. None: not known (stand-ins).
    media_time_s: float | None = None
    _pool: BufferPool | None = field(default=None, repr=False)

    def release(self) -> None:
        """Give the image buffer back once nobody reads it any more."""
        if self.image is not None and self._pool is not None:
            self._pool.release(self.image)
        self.image = None


class FrameQueue:
    """Bounded queue for one camera.

    Live cameras drop the oldest frame when full (the newest is what matters); recorded ones in
    every-frame mode block the reader instead, so nothing is lost.
    """

    def __init__(
        self, maxsize: int, drop_oldest: bool, ready: threading.Condition, on_drop: Callable[[Frame], None]
    ) -> None:
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self._items: collections.deque[Frame] = collections.deque()
        self._lock = threading.Condition()
        self._ready = ready
        self._on_drop = on_drop
        # When the consumer next takes a frame from this queue (monotonic seconds; None: as soon
        # as there is one). The scheduler sets it for a camera throttled to its target fps; the
        # source reads it to leave unconverted a frame a newer one will replace before then.
        # A stale value is harmless: it lies in the past.
        self.wanted_at: float | None = None

    def put(self, frame: Frame, stop: threading.Event) -> bool:
        """Queue a frame; False if stopped, before or while waiting for room (the frame is then
        dropped). Checked under the queue's lock: the shutdown sets `stop`, then drains, so a
        frame is either drained or dropped here, never left behind counted as captured."""
        dropped = None
        with self._lock:
            if stop.is_set():
                dropped = frame
            elif len(self._items) >= self.maxsize:
                if self.drop_oldest:
                    dropped = self._items.popleft()
                else:
                    while len(self._items) >= self.maxsize and not stop.is_set():
                        self._lock.wait(0.05)
                    if stop.is_set():
                        dropped = frame
            if dropped is not frame:
                self._items.append(frame)
        if dropped is not None:
            self._on_drop(dropped)
        with self._ready:
            self._ready.notify_all()
        return dropped is not frame

    def pop(self) -> Frame | None:
        with self._lock:
            if not self._items:
                return None
            frame = self._items.popleft()
            self._lock.notify_all()
            return frame

    def drain(self) -> list[Frame]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._lock.notify_all()
            return items

    def __len__(self) -> int:
        return len(self._items)
