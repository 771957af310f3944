"""Frame readers per source kind: OpenCV capture (streams, files, USB), image folders, synthetic."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edgevision.config.source_uri import IMAGE_SUFFIXES, SourceSpec
from edgevision.redaction import redact_uri
from edgevision.sources.frames import BufferPool


class SourceFailure(RuntimeError):
    """The source cannot be opened or stopped delivering (retry later for live ones)."""


class EndOfStream(Exception):
    """A recorded source has no more frames."""


class FrameReader(Protocol):
    """A frame is taken in two steps, so one a newer frame will replace before it is wanted costs
    no pixels: `grab` moves to the next frame (it has arrived, and its time is known), `retrieve`
    makes its pixels."""

    def grab(self) -> None:
        """Move to the next frame. Raises EndOfStream or SourceFailure."""

    def retrieve(self, pool: BufferPool) -> np.ndarray | None:
        """The grabbed frame's pixels; None for a corrupt or empty one (skipped)."""

    def read(self, pool: BufferPool) -> np.ndarray | None:
        """`grab`, then `retrieve`."""

    def frame_interval_s(self) -> float | None:
        """Seconds until the next frame is due, for real-time pacing; None if unknown."""

    def media_time_s(self) -> float | None:
        """The last frame's time in its source (seconds from its first frame, growing across loops);
        None for a live source, whose frames are timed by the capture clock."""

    def close(self) -> None: ...


class TwoStepReader:
    """`read` for readers that take a frame in two steps (see FrameReader)."""

    def grab(self) -> None:
        raise NotImplementedError

    def retrieve(self, pool: BufferPool) -> np.ndarray | None:
        raise NotImplementedError

    def read(self, pool: BufferPool) -> np.ndarray | None:
        self.grab()
        return self.retrieve(pool)


class CaptureReader(TwoStepReader):
    """OpenCV VideoCapture with FFmpeg timeouts, so a dead network stream cannot block forever."""

    def __init__(self, spec: SourceSpec, open_timeout_s: float, read_timeout_s: float) -> None:
        self.spec = spec
        if spec.kind == "usb":
            self._cap = cv2.VideoCapture(int(spec.target), cv2.CAP_V4L2)
        else:
            if spec.kind == "file" and not Path(spec.target).is_file():
                raise SourceFailure(f"file not found: {spec.target}")
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(read_timeout_s * 1000),
            ]
            self._cap = cv2.VideoCapture(spec.target, cv2.CAP_FFMPEG, params)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceFailure(f"cannot open {redact_uri(spec.target)}")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self._nominal_interval = 1.0 / fps if 0 < fps < 1000 else None
        self._last_ms: float | None = None
        self._interval: float | None = self._nominal_interval
        self._shape: tuple[int, ...] | None = None
        # A file's timeline: its first frame's timestamp (containers start at 0 or one frame in),
        # and what earlier loops added, so media time never runs backwards.
        self._first_ms: float | None = None
        self._media_s: float | None = None
        self._loop_offset_s = 0.0

    def grab(self) -> None:
        # The compressed frame is decoded here (a later one may depend on it); only its
        # conversion to BGR pixels, about half the cost, waits for `retrieve`.
        if not self._cap.grab():
            if self.spec.kind == "file":
                raise EndOfStream()
            raise SourceFailure("stream ended or timed out")
        self._track_timestamps()

    def retrieve(self, pool: BufferPool) -> np.ndarray | None:
        buffer = pool.acquire(self._shape)
        ok, image = self._cap.retrieve(buffer) if buffer is not None else self._cap.retrieve()
        if buffer is not None and image is not buffer:
            pool.release(buffer)
        if not ok or image is None or image.size == 0:
            return None
        self._shape = image.shape
        return image

    def _track_timestamps(self) -> None:
        # Container frame rates lie (an AVI may claim 50 fps for 25 fps content); the
        # presentation timestamps do not.
        position = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        if self._last_ms is not None and position > self._last_ms:
            self._interval = (position - self._last_ms) / 1000.0
        self._last_ms = position
        if self.spec.kind == "file":
            if self._first_ms is None:
                self._first_ms = position
            media = self._loop_offset_s + max(position - self._first_ms, 0.0) / 1000.0
            # A timestamp that jumps back (a damaged file) must not run the timeline backwards.
            self._media_s = media if self._media_s is None else max(media, self._media_s)

    def frame_interval_s(self) -> float | None:
        return self._interval

    def media_time_s(self) -> float | None:
        return self._media_s

    def rewind(self) -> None:
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._last_ms = None
        self._first_ms = None
        if self._media_s is not None:
            self._loop_offset_s = self._media_s + (self._interval or 0.0)

    def close(self) -> None:
        self._cap.release()


class FolderReader(TwoStepReader):
    """Images of a folder in name order; unreadable ones are skipped and counted."""

    def __init__(self, spec: SourceSpec) -> None:
        folder = Path(spec.target)
        if not folder.is_dir():
            raise SourceFailure(f"folder not found: {folder}")
        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceFailure(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
        self._next = 0
        self._interval = 1.0 / spec.fps if spec.fps > 0 else None
        # Images played, loops included: the folder's timeline at its frame rate.
        self._played = 0
        self._grabbed: Path | None = None

    def grab(self) -> None:
        if self._next >= len(self._files):
            raise EndOfStream()
        self._grabbed = self._files[self._next]
        self._next += 1
        self._played += 1

    def retrieve(self, pool: BufferPool) -> np.ndarray | None:
        """The grabbed image, decoded (an image never retrieved is never decoded)."""
        path = self._grabbed
        if path is None:
            return None
        self._grabbed = None
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError:
            return None
        return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None

    def frame_interval_s(self) -> float | None:
        return self._interval

    def media_time_s(self) -> float | None:
        return (self._played - 1) * self._interval if self._interval else None

    def rewind(self) -> None:
        self._next = 0

    def close(self) -> None:
        pass


class SyntheticReader(TwoStepReader):
    """Generated frames (no decode cost), for benchmarks and smoke tests."""

    VARIANTS = 8

    def __init__(self, spec: SourceSpec, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self._frames = []
        for _ in range(self.VARIANTS):
            frame = np.full((spec.height, spec.width, 3), 90, np.uint8)
            for _ in range(12):
                x, y = int(rng.integers(0, spec.width - 8)), int(rng.integers(0, spec.height - 8))
                w, h = int(rng.integers(8, max(9, spec.width // 4))), int(rng.integers(8, max(9, spec.height // 3)))
                color = tuple(int(c) for c in rng.integers(0, 255, 3))
                cv2.rectangle(frame, (x, y), (x + w, y + h), color, -1)
            frame.flags.writeable = False  # shared by every frame that shows it
            self._frames.append(frame)
        self._count = 0
        self._interval = 1.0 / spec.fps if spec.fps > 0 else None

    def grab(self) -> None:
        self._count += 1

    def retrieve(self, pool: BufferPool) -> np.ndarray | None:
        return self._frames[(self._count - 1) % self.VARIANTS]

    def frame_interval_s(self) -> float | None:
        return self._interval

    def media_time_s(self) -> float | None:
        return (self._count - 1) * self._interval if self._interval else None

    def close(self) -> None:
        pass


def open_reader(spec: SourceSpec, open_timeout_s: float, read_timeout_s: float) -> FrameReader:
    if spec.kind == "synthetic":
        return SyntheticReader(spec)
    if spec.kind == "folder":
        return FolderReader(spec)
    return CaptureReader(spec, open_timeout_s, read_timeout_s)


def configure_ffmpeg() -> None:
    """Process-wide FFmpeg settings, applied once before the first capture opens."""
    # RTSP over TCP: UDP loses packets on busy networks and yields smeared frames.
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    # FFmpeg prints every reconnect attempt on stderr; the source reports outages itself.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
