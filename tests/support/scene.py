"""Synthetic scenes with exact ground truth: objects moving along known paths, seen by a detector
that jitters, misses frames, dips in confidence, and flickers across edges.

`detections(frame)` gives what such a detector reports for one frame (boxes in pixels); the same
scene renders as images (`render`) for the pipeline and the preview.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from edgevision.detections import Detections

WIDTH, HEIGHT = 640, 480


@dataclass
class Mover:
    """An object from `start` to `end` (normalised centres) over frames [first, last]."""

    label: int
    start: tuple[float, float]
    end: tuple[float, float]
    first: int
    last: int
    size: tuple[float, float] = (40.0, 80.0)  # width, height in pixels
    # Frames it is not detected in (occlusion).
    hidden: range | set[int] = field(default_factory=set)
    # A custom path, normalised centre by frame (overrides start/end).
    path: Callable[[int], tuple[float, float]] | None = None

    def centre(self, frame: int) -> tuple[float, float]:
        if self.path is not None:
            return self.path(frame)
        t = (frame - self.first) / max(self.last - self.first, 1)
        return (self.start[0] + t * (self.end[0] - self.start[0]), self.start[1] + t * (self.end[1] - self.start[1]))

    def box(self, frame: int) -> np.ndarray:
        """x1, y1, x2, y2 in pixels; its bottom centre is the centre point given."""
        cx, cy = self.centre(frame)
        w, h = self.size
        x, y = cx * WIDTH, cy * HEIGHT
        return np.asarray([x - w / 2, y - h, x + w / 2, y], dtype=np.float32)


@dataclass
class Scene:
    movers: list[Mover]
    frames: int
    seed: int = 7
    jitter_px: float = 2.0
    # Chance per object and frame that the detector misses it.
    dropout: float = 0.05
    # Chance that a detection's score dips under the sure threshold (ByteTrack's second round).
    weak: float = 0.1
    _rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        # Drawn once for the whole scene so that every run (and both tiers) sees the same one.
        self._noise = {
            frame: [
                (
                    self._rng.random(),
                    self._rng.normal(0, self.jitter_px, 4),
                    self._rng.random(),
                    self._rng.uniform(0.7, 0.95),
                    self._rng.uniform(0.2, 0.45),
                )
                for _ in self.movers
            ]
            for frame in range(self.frames)
        }

    def visible(self, frame: int) -> list[Mover]:
        return [m for m in self.movers if m.first <= frame <= m.last]

    def detections(self, frame: int) -> Detections:
        boxes, scores, classes = [], [], []
        for mover, (drop, jitter, weak, sure, unsure) in zip(self.movers, self._noise[frame], strict=True):
            if not mover.first <= frame <= mover.last or frame in mover.hidden or drop < self.dropout:
                continue
            boxes.append(mover.box(frame) + jitter.astype(np.float32))
            scores.append(unsure if weak < self.weak else sure)
            classes.append(mover.label)
        if not boxes:
            return Detections.empty(WIDTH, HEIGHT)
        return Detections(
            np.asarray(boxes, np.float32), np.asarray(scores, np.float32), np.asarray(classes, np.int64), WIDTH, HEIGHT
        )

    def render(self, frame: int) -> np.ndarray:
        """The scene as an image: a textured floor and each visible object as a filled box."""
        image = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
        image[::40, :] = 110
        image[:, ::40] = 110
        for index, mover in enumerate(self.visible(frame)):
            x1, y1, x2, y2 = mover.box(frame).astype(int)
            color = (60 + 37 * index % 190, 200 - 23 * index % 150, 120 + 51 * index % 130)
            cv2.rectangle(image, (int(x1), int(y1)), (int(x2), int(y2)), color, -1)
        return image


# -- the scene through the real pipeline --------------------------------------------------------

# The frame index is written into two uniform blocks (at the top-left unless told otherwise),
# big enough to survive the letterbox's resize exactly; the stand-in detector reads it back.
_BLOCK = 48


def render_indexed(scene: Scene, frame: int, at: tuple[int, int] = (0, 0)) -> np.ndarray:
    image = scene.render(frame)
    x, y = at
    image[y : y + _BLOCK, x : x + _BLOCK] = frame % 256
    image[y : y + _BLOCK, x + _BLOCK : x + 2 * _BLOCK] = frame // 256
    return image


class SceneDetector:
    """A detector-shaped stand-in engine: reads which frame of `scene` each batch slot holds and
    writes YOLOX-Nano's raw output for the scene's detections of that frame, so the real decoder,
    NMS, tracker, zones, lines and publisher run on exactly what the scene says is there."""

    def __init__(self, scene: Scene, side: int = 416, classes: int = 80, at: tuple[int, int] = (0, 0)) -> None:
        from edgevision.families.yolox import anchor_count

        self.scene = scene
        self.at = at
        self.side = side
        self.columns = 5 + classes
        self.anchors = anchor_count(side, side, (8, 16, 32))
        # The letterbox puts a WIDTH x HEIGHT frame at this scale into the model input.
        self.scale = min(side / WIDTH, side / HEIGHT)
        grid = side // 8
        self._cells = [(i % grid, i // grid) for i in range(grid * grid)]

    def frame_of(self, tensor: np.ndarray) -> int:
        """The frame index from a letterboxed BGR tensor (3, side, side) of float pixels."""
        x, y = self.at
        row = int((y + _BLOCK / 2) * self.scale)
        low = round(float(tensor[0, row, int((x + _BLOCK / 2) * self.scale)]))
        high = round(float(tensor[0, row, int((x + _BLOCK * 1.5) * self.scale)]))
        return high * 256 + low

    def compute(self, batch: np.ndarray, out: np.ndarray) -> list[np.ndarray]:
        out[...] = 0.0
        for slot in range(len(batch)):
            frame = self.frame_of(batch[slot])
            if not 0 <= frame < self.scene.frames:
                continue
            found = self.scene.detections(frame)
            for k, (box, score, cid) in enumerate(zip(found.boxes, found.scores, found.class_ids, strict=True)):
                x1, y1, x2, y2 = (box * self.scale).tolist()
                cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, 1.0), max(y2 - y1, 1.0)
                gx, gy = self._cells[k]
                out[slot, k, 0:4] = (cx / 8 - gx, cy / 8 - gy, np.log(w / 8), np.log(h / 8))
                out[slot, k, 4] = score
                out[slot, k, 5 + int(cid)] = 1.0
        return [out]
