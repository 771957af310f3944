"""Camera sources: URIs, readers, and the per-camera reader thread."""

from edgevision.sources.frames import BufferPool, Frame, FrameQueue
from edgevision.sources.readers import EndOfStream, SourceFailure, configure_ffmpeg, open_reader
from edgevision.sources.source import ENDED_STATES, Source
from edgevision.sources.uri import SourceSpec, parse_source_uri, split_named_source

__all__ = [
    "ENDED_STATES",
    "BufferPool",
    "EndOfStream",
    "Frame",
    "FrameQueue",
    "Source",
    "SourceFailure",
    "SourceSpec",
    "configure_ffmpeg",
    "open_reader",
    "parse_source_uri",
    "split_named_source",
]
