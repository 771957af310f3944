"""Where messages go: the interface, and the local JSON Lines sinks (stdout or rotated file)."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import IO, Any, Protocol

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Receives every message (`type`: result, metrics, event); must not block for long."""

    def publish(self, message: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class JsonLinesSink:
    """One JSON document per line, to stdout or to a file rotated by size.

    A line is written with a single call and files are flushed on close, so a clean stop never
    leaves half a line behind.
    """

    def __init__(self, path: Path | None = None, rotate_bytes: int = 100 * 1024 * 1024, backups: int = 5) -> None:
        self.path = path
        self.rotate_bytes = rotate_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._size = 0
        self.lines = 0
        self._stream: IO[str] = sys.stdout if path is None else self._open()

    def _open(self) -> IO[str]:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stream = self.path.open("a", encoding="utf-8", buffering=1 << 16)
        self._size = self.path.stat().st_size
        return stream

    def publish(self, message: dict[str, Any]) -> None:
        line = encode(message) + "\n"
        with self._lock:
            if self.path is not None and self._size + len(line) > self.rotate_bytes and self._size > 0:
                self._rotate()
            self._stream.write(line)
            self._size += len(line.encode("utf-8")) if not line.isascii() else len(line)
            self.lines += 1

    def _rotate(self) -> None:
        assert self.path is not None
        self._stream.close()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for index in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        log.info("rotated %s", self.path)
        self._stream = self._open()

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()

    def close(self) -> None:
        with self._lock:
            self._stream.flush()
            if self._stream is not sys.stdout:
                self._stream.close()


def open_sink(kind: str, path: Path | None, rotate_mb: float, backups: int) -> Sink:
    if kind == "stdout":
        return JsonLinesSink(None)
    return JsonLinesSink(path, rotate_bytes=int(rotate_mb * 1024 * 1024), backups=backups)
