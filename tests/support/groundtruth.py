"""Ground-truth clips for counting: sprites cut from the test assets' images (a person from
astronaut.jpg, a cat from chelsea.jpg) moving on known paths over a 1280x720 background at 25 fps,
seen by the real model. Where the behaviour depends on the detector (a box that shrinks as its
object is covered, a score that dips, a miss) it is the real detector's.

What the truth is comes from the paths, not from the detector: which side of a line each object
starts and ends on, when its anchor enters and leaves a zone, where its box is and how much of it
is covered. Detections are cached by the rendered frames' and the model's SHA-256, so the suite
and the benchmark pay for inference once (`GROUNDTRUTH_CACHE_DIR`, default `.cache/`).

Used by tests/integration/test_groundtruth.py and benchmarks/groundtruth.py.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgevision.detections import Detections
from edgevision.geometry import crosses_segment, inside, parse_points

WIDTH, HEIGHT, FPS = 1280, 720, 25
REPO = Path(__file__).resolve().parents[2]
# Bump when rendering changes in a way the frames' hash would not see (it sees everything now).
_VERSION = b"groundtruth-2"

# Sprite -> (image, crop x1, y1, x2, y2 in the image's pixels, the label the detector gives it).
# The crops are the model's own boxes on the images (astronaut: person 0.93; chelsea: cat 0.61).
SPRITES: dict[str, tuple[str, tuple[int, int, int, int], str]] = {
    "person": ("astronaut.jpg", (11, 20, 369, 508), "person"),
    "cat": ("chelsea.jpg", (0, 0, 451, 300), "cat"),
}

Point = tuple[float, float]


@dataclass(frozen=True)
class Actor:
    """A sprite whose box's bottom centre is `path(frame)` (pixels; None: not in the scene).
    Higher `depth` is drawn later, in front."""

    name: str
    sprite: str
    height: int
    path: Callable[[int], Point | None]
    depth: int = 0

    def box(self, frame: int, aspect: float) -> np.ndarray | None:
        at = self.path(frame)
        if at is None:
            return None
        x, y = at
        width = self.height * aspect
        return np.asarray([x - width / 2, y - self.height, x + width / 2, y], dtype=np.float64)


@dataclass(frozen=True)
class Clip:
    name: str
    frames: int
    actors: tuple[Actor, ...]
    # The camera's analytics, as a twin would set them.
    lines: dict[str, dict[str, Any]] = field(default_factory=dict)
    zones: dict[str, dict[str, Any]] = field(default_factory=dict)
    what: str = ""


def _walk(points: list[tuple[int, float, float]]) -> Callable[[int], Point | None]:
    """A path through (frame, x, y) waypoints, straight between them; absent outside them."""

    def at(frame: int) -> Point | None:
        if frame < points[0][0] or frame > points[-1][0]:
            return None
        for (f0, x0, y0), (f1, x1, y1) in itertools.pairwise(points):
            if f0 <= frame <= f1:
                t = (frame - f0) / max(f1 - f0, 1)
                return (x0 + t * (x1 - x0), y0 + t * (y1 - y0))
        return (points[-1][1], points[-1][2])

    return at


def _sway(amplitude: float, per_side: int, first: int, last: int, x: float, y: float, walk_in: Any, walk_out: Any):
    """Walks in, sways ±amplitude px across x (per_side frames each side) from first to last, walks on."""

    def at(frame: int) -> Point | None:
        if first <= frame < last:
            return (x + (amplitude if (frame - first) // per_side % 2 else -amplitude), y)
        return walk_in(frame) if frame < first else walk_out(frame)

    return at


def _blink(path: Callable[[int], Point | None], first: int, last: int, every: int) -> Callable[[int], Point | None]:
    """The path, absent every other `every` frames between first and last (a detector's flicker)."""

    def at(frame: int) -> Point | None:
        if first <= frame < last and (frame - first) // every % 2:
            return None
        return path(frame)

    return at


GATE = {"gate": {"points": "0.5,0.05 0.5,0.98"}}  # drawn downwards: moving right to left is `in`
LINE_X = 0.5 * WIDTH


def library() -> dict[str, Clip]:
    """Every ground-truth clip, by name."""
    clips = [
        Clip(
            "crossing",
            128,
            (
                Actor("left-to-right", "person", 330, _walk([(0, 260, 560), (127, 1020, 560)]), depth=0),
                Actor("right-to-left", "person", 350, _walk([(0, 1020, 600), (127, 260, 600)]), depth=1),
            ),
            lines=GATE,
            what="two people cross each other on the line; the one behind is hidden for several frames",
        ),
        Clip(
            "overtaking",
            129,
            (
                Actor("slow", "person", 330, _walk([(0, 384, 560), (128, 896, 560)]), depth=0),
                Actor("fast", "person", 350, _walk([(40, 100, 590), (100, 1180, 590)]), depth=1),
            ),
            lines=GATE,
            what="a runner overtakes a walker on the line, in front of it",
        ),
        Clip(
            "overtaking-slowly",
            129,
            (
                Actor("slow", "person", 330, _walk([(0, 384, 560), (128, 896, 560)]), depth=0),
                Actor("fast", "person", 350, _walk([(20, 192, 590), (108, 1088, 590)]), depth=1),
            ),
            lines=GATE,
            what="a walker overtakes a slower one on the line: the one behind is hidden for longer than the patience",
        ),
        Clip(
            "cat",
            100,
            (Actor("cat", "cat", 300, _walk([(0, 1100, 600), (99, 180, 600)])),),
            lines=GATE,
            what="a cat crosses the line right to left",
        ),
        Clip(
            "turn-back",
            90,
            (
                Actor(
                    "from-left",
                    "person",
                    330,
                    _walk([(0, 380, 560), (40, LINE_X - 22, 560), (50, LINE_X - 22, 560), (89, 380, 560)]),
                ),
            ),
            lines=GATE,
            what="someone walks up to 22 px before the line, waits, and turns back",
        ),
        Clip(
            "crossing-depth",
            128,
            (
                Actor("far", "person", 300, _walk([(0, 1040, 520), (127, 240, 520)]), depth=0),
                Actor("near", "person", 380, _walk([(0, 200, 660), (127, 1080, 660)]), depth=1),
            ),
            lines=GATE,
            what="a near person and a farther, smaller one cross each other on the line",
        ),
        Clip(
            "flicker",
            100,
            (
                Actor(
                    "flickering",
                    "person",
                    330,
                    _blink(
                        _walk([(0, 380, 560), (35, LINE_X + 8, 560), (65, LINE_X + 8, 560), (99, 380, 560)]), 35, 65, 3
                    ),
                ),
            ),
            lines=GATE,
            what="someone stands on the line, seen only every other 3 frames for over a second, and goes back",
        ),
        Clip(
            "dwell",
            190,
            (
                Actor(
                    "visitor",
                    "person",
                    330,
                    _sway(
                        3,
                        12,
                        45,
                        145,
                        640,
                        640,
                        _walk([(0, 150, 640), (45, 640, 640)]),
                        _walk([(145, 640, 640), (189, 1150, 640)]),
                    ),
                ),
            ),
            zones={"queue": {"polygon": "0.3,0.55 0.7,0.55 0.7,0.98 0.3,0.98", "dwell_s": 3.0}},
            what="someone walks into a zone, stands for 4 s, and walks out",
        ),
    ]
    for amplitude, per_side in ((5, 4), (10, 2), (20, 8), (12, 12)):
        walk_in = _walk([(0, 380, 560), (40, LINE_X, 560)])
        walk_out = _walk([(90, LINE_X, 560), (129, 900, 560)])
        clips.append(
            Clip(
                f"sway-{amplitude}px-{per_side}f",
                130,
                (Actor("swayer", "person", 330, _sway(amplitude, per_side, 40, 90, LINE_X, 560, walk_in, walk_out)),),
                lines=GATE,
                what=f"someone stops on the line and sways ±{amplitude} px, {per_side} frames a side, for 2 s, then goes on",
            )
        )
    return {clip.name: clip for clip in clips}


# -- rendering ------------------------------------------------------------------------------------


class Renderer:
    """Draws a clip's frames; sprites are read from the assets once and resized once per height."""

    def __init__(self, assets: Path) -> None:
        self._images = {name: cv2.imread(str(assets / "images" / image)) for name, (image, _, _) in SPRITES.items()}
        for name, image in self._images.items():
            if image is None:
                raise FileNotFoundError(f"sprite image for {name} not found under {assets / 'images'}")
        self._crops = {name: self._images[name][y1:y2, x1:x2] for name, (_, (x1, y1, x2, y2), _) in SPRITES.items()}
        self._scaled: dict[tuple[str, int], np.ndarray] = {}
        self.background = _background()

    def aspect(self, sprite: str) -> float:
        crop = self._crops[sprite]
        return crop.shape[1] / crop.shape[0]

    def _sprite(self, sprite: str, height: int) -> np.ndarray:
        key = (sprite, height)
        if key not in self._scaled:
            width = max(1, round(height * self.aspect(sprite)))
            self._scaled[key] = cv2.resize(self._crops[sprite], (width, height), interpolation=cv2.INTER_AREA)
        return self._scaled[key]

    def render(self, clip: Clip, frame: int) -> np.ndarray:
        image = self.background.copy()
        for actor in sorted(clip.actors, key=lambda a: a.depth):
            box = actor.box(frame, self.aspect(actor.sprite))
            if box is None:
                continue
            sprite = self._sprite(actor.sprite, actor.height)
            x1, y1 = round(box[0]), round(box[1])
            sx, sy = max(0, -x1), max(0, -y1)
            dx, dy = max(0, x1), max(0, y1)
            w = min(sprite.shape[1] - sx, WIDTH - dx)
            h = min(sprite.shape[0] - sy, HEIGHT - dy)
            if w > 0 and h > 0:
                image[dy : dy + h, dx : dx + w] = sprite[sy : sy + h, sx : sx + w]
        return image

    def frames(self, clip: Clip) -> Iterator[np.ndarray]:
        for frame in range(clip.frames):
            yield self.render(clip, frame)


def _background() -> np.ndarray:
    """A floor with gentle shading and fine noise: nothing on it the model takes for an object."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    image = np.empty((HEIGHT, WIDTH, 3), np.float32)
    image[..., 0] = 110 + 30 * np.sin(x / 170.0)
    image[..., 1] = 120 + 25 * np.cos(y / 130.0)
    image[..., 2] = 100 + 20 * np.sin((x + y) / 210.0)
    image += np.random.default_rng(1).integers(0, 8, image.shape).astype(np.float32)
    return cv2.GaussianBlur(np.clip(image, 0, 255).astype(np.uint8), (5, 5), 0)


# -- truth ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TruthBox:
    actor: str
    label: str
    box: np.ndarray  # x1, y1, x2, y2, the whole sprite (pixels), clipped to the frame
    visible: float  # share of its area neither covered by an actor in front nor off the frame


def truth_boxes(clip: Clip, renderer: Renderer, frame: int) -> list[TruthBox]:
    placed = []
    for actor in clip.actors:
        box = actor.box(frame, renderer.aspect(actor.sprite))
        if box is not None:
            placed.append((actor, box))
    found = []
    for actor, box in placed:
        mask = np.zeros((HEIGHT, WIDTH), bool)
        x1, y1, x2, y2 = (round(v) for v in box)
        mask[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
        area = max((x2 - x1) * (y2 - y1), 1)
        for other, other_box in placed:
            if other.depth > actor.depth:
                ox1, oy1, ox2, oy2 = (round(v) for v in other_box)
                mask[max(oy1, 0) : max(oy2, 0), max(ox1, 0) : max(ox2, 0)] = False
        clipped = np.clip(box, [0, 0, 0, 0], [WIDTH, HEIGHT, WIDTH, HEIGHT])
        found.append(TruthBox(actor.name, SPRITES[actor.sprite][2], clipped, float(mask.sum()) / area))
    return found


def longest_hidden(clip: Clip, renderer: Renderer, least_visible: float = 0.5) -> int:
    """The most frames in a row any object in the scene is less than `least_visible` uncovered."""
    longest = 0
    runs: Counter[str] = Counter()
    for frame in range(clip.frames):
        present = {t.actor: t.visible for t in truth_boxes(clip, renderer, frame)}
        for actor in clip.actors:
            if actor.name in present and present[actor.name] < least_visible:
                runs[actor.name] += 1
                longest = max(longest, runs[actor.name])
            else:
                runs[actor.name] = 0
    return longest


def _anchor(actor: Actor, frame: int) -> Point | None:
    """The anchor the analytics use by default (bottom centre), normalised."""
    at = actor.path(frame)
    return None if at is None else (at[0] / WIDTH, at[1] / HEIGHT)


def truth_crossings(clip: Clip, line: str) -> dict[str, Counter[str]]:
    """Crossings by direction and label: an object whose first and last anchors are on different
    sides of the line, having passed through its segment, crossed it once (net)."""
    points = parse_points(clip.lines[line]["points"], least=2, most=2)
    (ax, ay), (bx, by) = points.tolist()
    counts: dict[str, Counter[str]] = {"in": Counter(), "out": Counter()}
    for actor in clip.actors:
        path = [p for f in range(clip.frames) if (p := _anchor(actor, f)) is not None]
        if not path:
            continue

        def side(p: Point) -> int:
            return 1 if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) >= 0 else -1

        first, last = path[0], path[-1]
        if side(first) != side(last) and crosses_segment(first, last, points):
            counts["in" if side(last) > 0 else "out"][SPRITES[actor.sprite][2]] += 1
    return counts


def truth_visits(clip: Clip, zone: str) -> list[tuple[str, float, float]]:
    """(actor, entered, left) per visit, in seconds of media time (left: the clip's end if still inside)."""
    polygon = parse_points(clip.zones[zone]["polygon"], least=3)
    visits = []
    for actor in clip.actors:
        entered = None
        for frame in range(clip.frames):
            at = _anchor(actor, frame)
            now = at is not None and bool(inside(np.asarray([at]), polygon)[0])
            if now and entered is None:
                entered = frame
            elif not now and entered is not None:
                visits.append((actor.name, entered / FPS, frame / FPS))
                entered = None
        if entered is not None:
            visits.append((actor.name, entered / FPS, clip.frames / FPS))
    return visits


# -- detections, cached ---------------------------------------------------------------------------


def cache_dir() -> Path:
    return Path(os.environ.get("GROUNDTRUTH_CACHE_DIR") or REPO / ".cache" / "groundtruth")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class ClipDetections:
    """The real model's detections of each clip's frames, computed once per clip and model."""

    def __init__(self, assets: Path, model_path: Path) -> None:
        self.renderer = Renderer(assets)
        self.model_path = model_path
        self.model_sha256 = file_sha256(model_path)
        self._detector: Any = None
        self.labels: tuple[str, ...] = ()
        self.inferred_frames = 0

    def _detector_for(self) -> Any:
        if self._detector is None:
            from edgevision.detector.detector import Detector
            from edgevision.detector.load import load_detector
            from edgevision.detector.resolve import resolve_model
            from edgevision.inference.options import EngineConfig

            self._detector = Detector(load_detector(resolve_model(str(self.model_path)), EngineConfig(provider="cpu")))
        return self._detector

    def of(self, clip: Clip) -> list[Detections]:
        digest = hashlib.sha256(_VERSION + self.model_sha256.encode())
        for image in self.renderer.frames(clip):
            digest.update(image.data)
        path = cache_dir() / f"{clip.name}-{digest.hexdigest()[:24]}.npz"
        if path.is_file():
            try:
                return self._load(path)
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)  # a damaged cache entry is recomputed
        detector = self._detector_for()
        found = [detector.detect([image])[0] for image in self.renderer.frames(clip)]
        self.inferred_frames += len(found)
        self._save(path, found, detector.labels)
        self.labels = tuple(detector.labels)
        return found

    def of_video(self, video: Path) -> tuple[list[Detections], list[float]]:
        """A real clip's detections and each frame's time in it (from its timestamps), cached by the
        file's and the model's SHA-256."""
        digest = hashlib.sha256(_VERSION + self.model_sha256.encode() + file_sha256(video).encode()).hexdigest()
        path = cache_dir() / f"{video.stem}-{digest[:24]}.npz"
        times_path = path.with_suffix(".times.npy")
        if path.is_file() and times_path.is_file():
            try:
                return self._load(path), np.load(times_path).tolist()
            except (OSError, ValueError, KeyError):
                path.unlink(missing_ok=True)
        detector = self._detector_for()
        capture = cv2.VideoCapture(str(video))
        found, times, first = [], [], None
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    break
                position = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                first = position if first is None else first
                times.append(max(position - first, times[-1] if times else 0.0))
                found.append(detector.detect([image])[0])
        finally:
            capture.release()
        self.inferred_frames += len(found)
        self.labels = tuple(detector.labels)
        self._save(path, found, detector.labels)
        np.save(times_path, np.asarray(times))
        return found, times

    def _save(self, path: Path, found: list[Detections], labels: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        counts = np.asarray([len(d.scores) for d in found], np.int64)
        boxes = np.concatenate([d.boxes for d in found]) if counts.sum() else np.zeros((0, 4), np.float32)
        scores = np.concatenate([d.scores for d in found]) if counts.sum() else np.zeros(0, np.float32)
        classes = np.concatenate([d.class_ids for d in found]) if counts.sum() else np.zeros(0, np.int64)
        partial = path.with_suffix(".part.npz")
        size = np.asarray([found[0].width, found[0].height] if found else [WIDTH, HEIGHT])
        np.savez(
            partial,
            counts=counts,
            boxes=boxes,
            scores=scores,
            classes=classes,
            labels=np.asarray(list(labels)),
            size=size,
        )
        partial.replace(path)

    def _load(self, path: Path) -> list[Detections]:
        with np.load(path) as data:
            counts, boxes, scores, classes = data["counts"], data["boxes"], data["scores"], data["classes"]
            self.labels = tuple(str(v) for v in data["labels"])
            width, height = (int(v) for v in data["size"])
        found, start = [], 0
        for n in counts.tolist():
            found.append(
                Detections(
                    boxes[start : start + n], scores[start : start + n], classes[start : start + n], width, height
                )
            )
            start += n
        return found


# -- identity against the truth -------------------------------------------------------------------


@dataclass
class Identity:
    """How the tracker's ids followed the clip's objects (frames where an object is at least
    `least_visible` uncovered count)."""

    objects: int
    ids: int  # distinct track ids issued on matched and unmatched detections alike
    switches: dict[str, int]  # per object: times its matched id changed
    idf1: float


def identity(
    clip: Clip,
    renderer: Renderer,
    found: list[Detections],
    ids_per_frame: list[list[int | None]],
    least_visible: float = 0.5,
) -> Identity:
    from edgevision.analytics.tracker import greedy_match, iou_matrix

    pairs: Counter[tuple[str, int]] = Counter()
    last: dict[str, int] = {}
    switches: Counter[str] = Counter()
    truth_total = tracked_total = 0
    all_ids: set[int] = set()
    for frame, (detections, ids) in enumerate(zip(found, ids_per_frame, strict=True)):
        truth = [t for t in truth_boxes(clip, renderer, frame) if t.visible >= least_visible]
        truth_total += len(truth)
        tracked = [(box, i) for box, i in zip(detections.boxes, ids, strict=True) if i is not None]
        tracked_total += len(tracked)
        all_ids.update(i for _, i in tracked)
        if not truth or not tracked:
            continue
        overlap = iou_matrix(np.stack([t.box for t in truth]), np.stack([b for b, _ in tracked]).astype(np.float64))
        for t, d in greedy_match(overlap, 0.5):
            name, track = truth[t].actor, tracked[d][1]
            pairs[(name, track)] += 1
            if name in last and last[name] != track:
                switches[name] += 1
            last[name] = track
    # IDF1: the one-to-one mapping of objects to ids that agrees on the most frames (greedy by
    # agreement: with a handful of objects it is the optimum).
    used_objects: set[str] = set()
    used_ids: set[int] = set()
    agreed = 0
    for (name, track), n in pairs.most_common():
        if name not in used_objects and track not in used_ids:
            used_objects.add(name)
            used_ids.add(track)
            agreed += n
    denominator = truth_total + tracked_total
    return Identity(
        objects=len(clip.actors),
        ids=len(all_ids),
        switches={a.name: switches[a.name] for a in clip.actors},
        idf1=2 * agreed / denominator if denominator else 1.0,
    )


def media_time(frame: int) -> float:
    return frame / FPS


def write_video(clip: Clip, renderer: Renderer, path: Path) -> Path:
    """The clip as a file a camera can play (MJPEG in AVI at 25 fps, what OpenCV's wheel writes)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise OSError(f"cannot write {path}")
    try:
        for image in renderer.frames(clip):
            writer.write(image)
    finally:
        writer.release()
    return path


@dataclass
class Played:
    analytics: Any  # CameraAnalytics
    events: list[dict[str, Any]]
    ids: list[list[int | None]]
    detected: int  # frames the detector saw (the rest the tracker carried)
    frames: int


def play(
    clip: Clip,
    clips: ClipDetections,
    *,
    fps: float = FPS,
    images: bool = True,
    wall_speed: float = 1.0,
    **settings: Any,
) -> Played:
    """A clip through one camera's analytics as the pipeline runs it: the gate decides per frame
    whether the detector sees it (its cached detections) or the tracker carries it; `fps` plays
    it as a live camera throttled to that rate (frames dropped evenly)."""
    from edgevision.analytics.camera import CameraAnalytics
    from edgevision.config.camera import CameraConfig

    camera = CameraConfig(id="cam", uri="synthetic:1280x720@0", lines=clip.lines, zones=clip.zones, **settings)
    events: list[dict[str, Any]] = []
    analytics = CameraAnalytics(camera, lambda name, details: events.append({"event": name, **details}))
    found = clips.of(clip)
    ids: list[list[int | None]] = []
    detected = played = 0
    step = FPS / min(fps, FPS)
    next_due = 0.0
    for frame, detections in enumerate(found):
        if frame + 1e-9 < next_due:
            continue
        next_due += step
        media = media_time(frame)
        image = clips.renderer.render(clip, frame) if images else None
        wall = 1.8e9 + media / wall_speed
        if analytics.wants_detection(image, media):
            result = analytics.process(detections, clips.labels, wall, media, frame)
            detected += 1
        else:
            result = analytics.carry(clips.labels, wall, media, frame)
        ids.append(result.track_ids or [])
        played += 1
    return Played(analytics, events, ids, detected, played)
