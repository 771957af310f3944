"""Source URIs: what kind of camera a string names, and its parameters."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from edgevision.redaction import redact_uri

SourceKind = Literal["stream", "file", "folder", "usb", "synthetic"]

_SYNTHETIC = re.compile(r"^(?P<w>\d{1,5})x(?P<h>\d{1,5})(?:@(?P<fps>\d+(?:\.\d+)?))?$")
_TRUE = {"1", "true", "yes", "on"}
# What a camera file may be, by its suffix: video containers and streams, and images.
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".flv",
     ".wmv", ".3gp", ".ogv", ".y4m", ".h264", ".264", ".h265", ".265", ".hevc", ".mjpeg", ".mjpg", ".gif"}
)  # fmt: skip
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
MEDIA_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES


@dataclass(frozen=True)
class SourceSpec:
    kind: SourceKind
    # URL for streams, path for files and folders, device index for USB.
    target: str
    loop: bool = False
    width: int = 1280
    height: int = 720
    fps: float = 30.0

    @property
    def live(self) -> bool:
        """Live sources drop old frames and reconnect; recorded ones end.

        An unpaced synthetic source (fps 0) is not live: it makes a frame whenever the
        pipeline has room for one, which is what a benchmark of the pipeline wants.
        """
        return self.kind in ("stream", "usb") or (self.kind == "synthetic" and self.fps > 0)


def parse_source_uri(uri: str) -> SourceSpec:
    """Parse rtsp://, http(s)://, file:PATH, a plain path, /dev/videoN, usb:N, synthetic:WxH@FPS.

    Raises ValueError naming what is wrong.
    """
    uri = uri.strip()
    if not uri:
        raise ValueError("empty source URI")
    lowered = uri.lower()
    if lowered.startswith(("rtsp://", "rtsps://", "http://", "https://", "rtmp://")):
        parts = urlsplit(uri)
        if not parts.hostname:
            raise ValueError(f"{redact_uri(uri)!r}: no host in the URL")
        try:
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            # urllib's message quotes a piece of the address, where a password may be: not echoed.
            raise ValueError(
                f"{redact_uri(uri)!r}: the port is not a number (a password holding ':', '/', '?', '#' or '@' must be "
                "percent-encoded, or given with credentials: env:NAME or file:/path)"
            ) from None
        return SourceSpec("stream", uri)
    if lowered.startswith("synthetic:"):
        return _synthetic(uri)
    if lowered.startswith("usb:"):
        index = uri[4:]
        if not index.isdigit():
            raise ValueError(f"{redact_uri(uri)!r}: usb: needs a device index, e.g. usb:0")
        return SourceSpec("usb", index)
    match = re.fullmatch(r"/dev/video(\d+)", uri)
    if match:
        return SourceSpec("usb", match.group(1))
    if uri.isdigit():
        return SourceSpec("usb", uri)
    loop = False
    if lowered.startswith("file:"):
        parts = urlsplit(uri)
        query = parse_qs(parts.query)
        loop = query.get("loop", ["0"])[0].lower() in _TRUE
        path = parts.path
        if parts.netloc and parts.netloc != "localhost":
            path = parts.netloc + path  # file:relative/path
    elif "://" in uri:
        raise ValueError(f"{redact_uri(uri)!r}: unsupported scheme (rtsp, http, https, file, usb, synthetic)")
    else:
        path = uri
    if not path:
        raise ValueError(f"{redact_uri(uri)!r}: no path")
    kind: SourceKind = "folder" if Path(path).is_dir() else "file"
    if kind == "file" and Path(path).suffix.lower() not in MEDIA_SUFFIXES:
        # FFmpeg plays more than video: a text file through its tty demuxer, rendered as frames
        # anyone with a snapshot could read.
        raise ValueError(
            f"{redact_uri(uri)!r}: a camera file must be a video or an image ({', '.join(sorted(MEDIA_SUFFIXES))})"
        )
    return SourceSpec(kind, path, loop=loop)


def _synthetic(uri: str) -> SourceSpec:
    spec_text, _, query_text = uri.split(":", 1)[1].partition("?")
    width, height, fps = 1280, 720, 30.0
    if spec_text:
        match = _SYNTHETIC.match(spec_text)
        if not match:
            raise ValueError(f"{redact_uri(uri)!r}: synthetic sources look like synthetic:1280x720@30")
        width, height = int(match["w"]), int(match["h"])
        fps = float(match["fps"]) if match["fps"] else fps
    query = parse_qs(query_text)
    try:
        width = int(query.get("width", [width])[0])
        height = int(query.get("height", [height])[0])
        fps = float(query.get("fps", [fps])[0])
    except ValueError:
        raise ValueError(f"{redact_uri(uri)!r}: width, height and fps must be numbers") from None
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise ValueError(f"{redact_uri(uri)!r}: frame size must be 16..8192 pixels a side")
    if fps < 0:
        raise ValueError(f"{redact_uri(uri)!r}: fps must be >= 0 (0: as fast as possible)")
    return SourceSpec("synthetic", "synthetic", width=width, height=height, fps=fps)


def split_named_source(text: str) -> tuple[str | None, str]:
    """`front=rtsp://...` -> ("front", "rtsp://..."); a bare URI has no name."""
    match = re.match(r"^([A-Za-z0-9][A-Za-z0-9_-]{0,63})=(.+)$", text)
    if match and ":" not in match.group(1) and "/" not in match.group(1):
        return match.group(1), match.group(2)
    return None, text
