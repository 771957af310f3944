"""A camera's recent frames as JPEGs, bounded in time and bytes: what a clip's first seconds and
an event's snapshot are made from (the frame itself is gone by the time its event is known)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from edgevision.detections import Detections


@dataclass
class Held:
    seq: int
    at: float  # the frame's time: its media time for files, else its capture time
    captured_at: float  # wall clock
    jpeg: bytes
    scale: float  # held pixels per frame pixel (frames wider than max_width are scaled down)
    # Set when the frame's result is published: what to draw on it.
    detections: Detections | None = None
    labels: Sequence[str] = ()
    track_ids: Sequence[int | None] | None = field(default=None)


class FrameRing:
    """Frames of the last `keep_s` seconds, or from `pinned` on (a clip being recorded), never
    more than `max_bytes`: past that the oldest go first, pinned or not (`overflowed` counts
    them; the clip is then shorter than asked, and says so)."""

    def __init__(self, keep_s: float, max_bytes: int) -> None:
        self.keep_s = keep_s
        self.max_bytes = max_bytes
        self._frames: deque[Held] = deque()
        self.bytes = 0
        self.overflowed = 0

    def add(self, held: Held, pinned: float | None = None) -> None:
        self._frames.append(held)
        self.bytes += len(held.jpeg)
        horizon = held.at - self.keep_s
        if pinned is not None:
            horizon = min(horizon, pinned)
        frames = self._frames
        while frames and (frames[0].at < horizon or self.bytes > self.max_bytes) and len(frames) > 1:
            old = frames.popleft()
            self.bytes -= len(old.jpeg)
            if old.at >= horizon:
                self.overflowed += 1

    def __len__(self) -> int:
        return len(self._frames)

    def newest(self) -> Held | None:
        return self._frames[-1] if self._frames else None

    def at_or_before(self, seq: int) -> Held | None:
        """The frame `seq`, else the newest one before it (frames are kept at the evidence fps)."""
        for held in reversed(self._frames):
            if held.seq <= seq:
                return held
        return None

    def find(self, seq: int) -> Held | None:
        for held in reversed(self._frames):
            if held.seq == seq:
                return held
            if held.seq < seq:
                return None
        return None

    def between(self, start: float, end: float) -> list[Held]:
        return sorted((h for h in self._frames if start <= h.at <= end), key=lambda h: h.seq)

    def clear(self) -> None:
        self._frames.clear()
        self.bytes = 0
