"""Preview frames: the newest frame of each camera with its detections, drawn and JPEG-encoded on
request (live preview, snapshots).

Every image that leaves the module is made here, so the camera's privacy masks are applied here,
last, after every overlay and before the encoder: nothing drawn or captured shows through them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edgevision.analytics.camera import CameraAnalytics, Overlay
from edgevision.control import PreviewImage
from edgevision.detections import Detections
from edgevision.geometry import to_pixels
from edgevision.sources.frames import BufferPool, Frame


@dataclass
class _Held:
    seq: int
    captured_at: float
    image: np.ndarray
    pool: BufferPool | None


class PreviewFrames:
    """Holds one frame buffer per camera: the newest one that was preprocessed.

    Frames are handed over instead of released, so keeping the newest costs no copy per
    frame; only a snapshot request copies, under the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}
        self._detections: dict[str, tuple[int, Detections, Sequence[str], Sequence[int | None] | None]] = {}
        # A camera's analytics (zones, lines, counts to draw; masks to apply), if it has any.
        self.overlays: Callable[[str], CameraAnalytics | None] = lambda _camera: None

    def keep(self, frame: Frame) -> None:
        if frame.image is None:
            return
        held = _Held(frame.seq, frame.captured_at, frame.image, frame._pool)
        frame.image = None  # the buffer now belongs here
        with self._lock:
            previous = self._held.get(frame.camera)
            self._held[frame.camera] = held
        if previous is not None and previous.pool is not None:
            previous.pool.release(previous.image)

    def published(
        self,
        camera: str,
        seq: int,
        detections: Detections,
        labels: Sequence[str],
        track_ids: Sequence[int | None] | None = None,
    ) -> None:
        with self._lock:
            self._detections[camera] = (seq, detections, labels, track_ids)

    def forget(self, camera: str) -> None:
        with self._lock:
            self._held.pop(camera, None)
            self._detections.pop(camera, None)

    def snapshot(self, camera: str, max_bytes: int = 90_000) -> PreviewImage | None:
        """The newest frame with boxes and labels drawn, as a JPEG of at most `max_bytes`."""
        with self._lock:
            held = self._held.get(camera)
            if held is None:
                return None
            image = held.image.copy()
            seq, captured_at = held.seq, held.captured_at
            published = self._detections.get(camera)
        detections_seq = None
        detections, labels, track_ids = None, (), None
        if published is not None:
            detections_seq, detections, labels, track_ids = published
        annotate(image, self.overlays(camera), detections, labels, track_ids)
        height, width = image.shape[:2]
        return PreviewImage(camera, seq, captured_at, width, height, detections_seq, encode_jpeg(image, max_bytes))


def annotate(
    image: np.ndarray,
    analytics: CameraAnalytics | None,
    detections: Detections | None,
    labels: Sequence[str],
    track_ids: Sequence[int | None] | None = None,
    captions: bool = True,
    overlay: Overlay | None = None,
) -> None:
    """What every image that leaves the module gets, in this order: zones and lines, the boxes,
    the zones' and lines' names and counts over the boxes (so they stay readable), and the
    camera's masks over everything. `overlay`: the analytics' own, when already taken."""
    if analytics is not None and overlay is None:
        overlay = analytics.overlay()
    if overlay is not None:
        draw_overlay(image, overlay, captions=False)
    if detections is not None:
        draw(image, detections, labels, track_ids)
    if overlay is not None and captions:
        draw_overlay(image, overlay, captions=True)
    if analytics is not None:
        analytics.masks.apply(image)


def draw(
    image: np.ndarray, detections: Detections, labels: Sequence[str], track_ids: Sequence[int | None] | None = None
) -> None:
    thickness = max(1, round(max(image.shape[:2]) / 400))
    for index, ((x1, y1, x2, y2), score, cid) in enumerate(
        zip(detections.boxes.astype(int), detections.scores, detections.class_ids, strict=True)
    ):
        color = _color(int(cid))
        cv2.rectangle(image, (int(x1), int(y1)), (int(x2), int(y2)), color, thickness)
        track = track_ids[index] if track_ids is not None else None
        text = f"{'' if track is None else f'#{track} '}{labels[cid]} {score:.2f}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, thickness)
        top = max(int(y1) - th - 4, 0)
        cv2.rectangle(image, (int(x1), top), (int(x1) + tw + 4, top + th + 4), color, -1)
        cv2.putText(
            image,
            text,
            (int(x1) + 2, top + th + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thickness,
            (0, 0, 0),
            thickness,
            cv2.LINE_AA,
        )


_ZONE, _LINE = (60, 200, 255), (255, 120, 60)


def draw_overlay(image: np.ndarray, overlay: Overlay, captions: bool) -> None:
    """Zones (outlined) and lines (with an arrow to their `in` side); with `captions`, each one's
    name and counts (occupancy; in / out)."""
    height, width = image.shape[:2]
    thickness = max(1, round(max(height, width) / 400))
    scale = 0.35 * thickness
    for name, (polygon, occupancy) in overlay.zones.items():
        points = to_pixels(polygon, width, height)
        corner = (int(points[:, 0].min()) + 4, int(points[:, 1].max()) + 4)
        if captions:
            _label(image, f"{name}: {sum(occupancy.values())} inside", corner, _ZONE, scale, thickness)
        else:
            cv2.polylines(image, [points], True, _ZONE, thickness + 1, cv2.LINE_AA)
    for name, (line, crossed) in overlay.lines.items():
        (ax, ay), (bx, by) = to_pixels(line, width, height).tolist()
        if captions:
            text = f"{name}: in {crossed.get('in', 0)} / out {crossed.get('out', 0)}"
            _label(image, text, (min(ax, bx) + 4, max(ay, by) + 6), _LINE, scale, thickness)
            continue
        cv2.line(image, (ax, ay), (bx, by), _LINE, thickness + 1, cv2.LINE_AA)
        # An arrow from the middle towards the `in` side (clockwise of the line's direction).
        mx, my = (ax + bx) // 2, (ay + by) // 2
        length = max(1.0, float(np.hypot(bx - ax, by - ay)))
        nx, ny = -(by - ay) / length, (bx - ax) / length
        tip = (int(mx + nx * 25 * thickness), int(my + ny * 25 * thickness))
        cv2.arrowedLine(image, (mx, my), tip, _LINE, thickness, cv2.LINE_AA, tipLength=0.35)


def _label(
    image: np.ndarray, text: str, at: tuple[int, int], color: tuple[int, int, int], scale: float, thickness: int
) -> None:
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x = min(max(at[0], 0), max(image.shape[1] - tw - 4, 0))
    y = min(max(at[1], 0), max(image.shape[0] - th - 6, 0))
    cv2.rectangle(image, (x, y), (x + tw + 4, y + th + 6), color, -1)
    cv2.putText(image, text, (x + 2, y + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness, cv2.LINE_AA)


def _color(class_id: int) -> tuple[int, int, int]:
    # Spread hues so neighbouring classes differ; bright enough for black text.
    hue = (class_id * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 200, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def encode_jpeg(image: np.ndarray, max_bytes: int) -> bytes:
    """Lower the quality, then the size, until the JPEG fits."""
    for quality in (85, 70, 55, 40):
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and len(data) <= max_bytes:
            return data.tobytes()
    while True:
        image = cv2.resize(
            image, (max(1, image.shape[1] * 3 // 4), max(1, image.shape[0] * 3 // 4)), interpolation=cv2.INTER_AREA
        )
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 40])
        if len(data) <= max_bytes or image.shape[0] <= 8:
            return data.tobytes()
