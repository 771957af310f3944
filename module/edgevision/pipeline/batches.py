"""Batches in flight and the pool of preallocated inference slots they run in."""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from edgevision.detections import Detections
from edgevision.inference.engine import Engine
from edgevision.inference.options import padded_batch_sizes
from edgevision.inference.runner import BoundRunner
from edgevision.preprocess import LetterboxMeta
from edgevision.sources.frames import Frame


@dataclass(frozen=True)
class Producer:
    """What produced a batch's results (it changes when the model or provider is switched)."""

    model: str
    provider: str
    labels: tuple[str, ...]
    # The model key (`default`, or a key of `models`): batches are numbered, and published in
    # order, per key.
    lane: str = "default"


@dataclass(eq=False)
class Batch:
    id: int
    frames: list[Frame]
    slot: BoundRunner | None
    producer: Producer
    metas: list[LetterboxMeta] = field(default_factory=list)
    outputs: list[np.ndarray] | None = None
    # Per frame; None for a carried frame (the detector did not see it).
    detections: list[Detections | None] | None = None
    error: str | None = None
    # Which frames failed preprocessing (bad frame), by index; they get no result.
    bad_frames: dict[int, str] = field(default_factory=dict)
    # Which frames the detector skips, by index: their boxes are the tracker's (the gate decided).
    carried: frozenset[int] = frozenset()

    @functools.cached_property
    def detected(self) -> list[int]:
        """Indexes of the frames the detector sees, in order (computed once: every stage asks)."""
        return [i for i in range(len(self.frames)) if i not in self.carried]


class SlotPool:
    """Runners (input and output buffers, IO binding) per batch size, allocated once, lent out."""

    def __init__(self, engine: Engine, max_batch: int, per_size: int) -> None:
        self.sizes = padded_batch_sizes(max_batch)
        self._engine = engine
        self._per_size = per_size
        self._free: dict[int, list[BoundRunner]] = {s: [] for s in self.sizes}
        self._created: dict[int, int] = {s: 0 for s in self.sizes}
        self._cond = threading.Condition()

    def size_for(self, frames: int) -> int:
        return next(s for s in self.sizes if s >= frames)

    def acquire(self, frames: int, stop: threading.Event) -> BoundRunner | None:
        """A free slot that holds `frames`; waits while all are in use; None once stopped."""
        size = self.size_for(frames)
        with self._cond:
            while True:
                if self._free[size]:
                    return self._free[size].pop()
                if self._created[size] < self._per_size:
                    self._created[size] += 1
                    break
                if stop.is_set():
                    return None
                self._cond.wait(0.05)
        return self._engine.runner(size)

    def warm_up(self, frame_size: tuple[int, int]) -> dict[int, float]:
        """Run every batch size once, in a slot that stays in the pool: TensorRT builds (or
        loads) its engine, cuDNN picks its algorithms and the arena grows now, not during the
        first frames. `frame_size` (height, width) is what a frame model is fed. Returns the
        milliseconds each size took."""
        took: dict[int, float] = {}
        if self._engine.takes_frames and self._engine.status.one_shape_per_session:
            # A frames model on a GPU has a session per frame size, made (and warmed up) when a
            # camera's first frame of that size comes: one made at the model's size would idle.
            return took
        for size in self.sizes:
            with self._cond:
                self._created[size] += 1
            slot = self._engine.runner(size)
            if slot.takes_frames:
                slot.frames(*frame_size)
            started = time.perf_counter()
            slot.run()
            took[size] = round((time.perf_counter() - started) * 1e3, 1)
            self.release(slot)
        return took

    def release(self, slot: BoundRunner) -> None:
        with self._cond:
            self._free[slot.batch_size].append(slot)
            self._cond.notify()

    def in_use(self) -> int:
        with self._cond:
            return sum(self._created[s] - len(self._free[s]) for s in self.sizes)
