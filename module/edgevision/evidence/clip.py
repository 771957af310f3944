"""A clip's frames to an MP4 a browser plays: H.264 through PyAV (its wheels bundle FFmpeg with
libx264); where PyAV is missing, OpenCV's `mp4v` (MPEG-4 Part 2: VLC plays it, browsers do not),
said in the clip's metadata and the status."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

H264, MP4V = "h264", "mp4v"


@dataclass(frozen=True)
class ClipInfo:
    frames: int
    width: int
    height: int
    duration_s: float
    codec: str


def available_codec() -> str:
    """h264 where PyAV and its libx264 load, else mp4v."""
    try:
        import av

        av.codec.Codec("libx264", "w")
    except Exception:  # noqa: BLE001 - missing package, or a build without libx264
        return MP4V
    return H264


def encode(
    times: Sequence[float], render: Callable[[int], np.ndarray], path: Path, codec: str | None = None
) -> ClipInfo:
    """Frames `render(0..n-1)` (BGR, one size), shown at `times` (seconds, rising), into `path`."""
    if not times:
        raise ValueError("a clip needs at least one frame")
    codec = codec or available_codec()
    first = render(0)
    # 4:2:0 chroma needs even sides.
    height, width = first.shape[0] & ~1, first.shape[1] & ~1
    start = times[0]
    duration = max(times[-1] - start, 0.0)
    if codec == H264:
        _h264(times, render, first, path, width, height)
    else:
        _mp4v(times, render, first, path, width, height)
    return ClipInfo(len(times), width, height, round(duration, 3), codec)


def _h264(
    times: Sequence[float], render: Callable[[int], np.ndarray], first: np.ndarray, path: Path, width: int, height: int
) -> None:
    import av

    # Millisecond timestamps: the clip plays at the pace its frames were seen (a variable rate).
    base = Fraction(1, 1000)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        rate = max(1, min(60, round(len(times) / max(times[-1] - times[0], 1e-3)))) if len(times) > 1 else 1
        stream = container.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "26"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = base
        # One thread: the clip is made beside the cameras, not instead of them.
        stream.codec_context.thread_count = 1
        last = -1
        for index, at in enumerate(times):
            image = first if index == 0 else render(index)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:height, :width]), format="bgr24")
            pts = max(round((at - times[0]) * 1000), last + 1)
            frame.pts, frame.time_base, last = pts, base, pts
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _mp4v(
    times: Sequence[float], render: Callable[[int], np.ndarray], first: np.ndarray, path: Path, width: int, height: int
) -> None:
    span = max(times[-1] - times[0], 1e-3)
    fps = max(1.0, min(60.0, (len(times) - 1) / span)) if len(times) > 1 else 1.0
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {path.name} with mp4v")
    try:
        for index in range(len(times)):
            image = first if index == 0 else render(index)
            writer.write(np.ascontiguousarray(image[:height, :width]))
    finally:
        writer.release()
