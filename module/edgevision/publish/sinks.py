"""Where messages go: the Sink interface, the local JSON Lines sinks (stdout or a rotated file),
and a switch that lets the sink behind it be replaced while messages flow."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any, Protocol

from edgevision.config.model import SinkConfig
from edgevision.errors import ConfigError
from edgevision.publish.messages import encode

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Receives every message (`type`: result, metrics, event); must not block for long."""

    def publish(self, message: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class JsonLinesSink:
    """One JSON document per line, to stdout or to a file rotated by size.

    Flush policy: each line is handed to the operating system as it is published (one write
    call), so a killed process (kill -9) loses none; nothing is fsync'ed, so a power cut may lose
    the last seconds. A line that cannot be written (a full disk) raises to the publisher, which
    counts it; closing never raises.
    """

    def __init__(self, path: Path | None = None, rotate_bytes: int = 100 * 1024 * 1024, backups: int = 5) -> None:
        self.path = path
        self.rotate_bytes = rotate_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._size = 0
        self.lines = 0
        self._closed = False
        # A file is written through its descriptor, unbuffered: each line is one write call.
        self._fd: int | None = None if path is None else self._open()

    def _open(self) -> int:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(fd).st_size
        return fd

    def publish(self, message: dict[str, Any]) -> None:
        data = (encode(message) + "\n").encode("utf-8")
        with self._lock:
            if self._closed:
                raise OSError("the results sink is closed")
            if self._fd is None:
                sys.stdout.write(data.decode("utf-8"))
                sys.stdout.flush()
            else:
                if self._size + len(data) > self.rotate_bytes and self._size > 0:
                    self._rotate()
                _write_all(self._fd, data)
            self._size += len(data)
            self.lines += 1

    def _rotate(self) -> None:
        assert self.path is not None and self._fd is not None
        os.close(self._fd)
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for index in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{index}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        log.info("rotated %s", self.path)
        self._fd = self._open()

    def flush(self) -> None:
        """Nothing is held back: each line was written when it was published."""
        if self._fd is None:
            with self._lock:
                try:
                    sys.stdout.flush()
                except (OSError, ValueError) as exc:
                    log.error("the results sink cannot flush: %s", exc)

    def close(self) -> None:
        """Close; closing again does nothing (owners may share a sink). Never raises."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._fd is not None:
                try:
                    os.close(self._fd)
                except OSError as exc:
                    log.error("the results sink could not be closed cleanly: %s", exc.strerror or exc)


def _write_all(fd: int, data: bytes) -> None:
    """One write call for a line (a short write, rare, is finished; a failed one raises)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class DiscardSink:
    """No local copy (inside IoT Edge with no file sink configured)."""

    def publish(self, message: dict[str, Any]) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def open_sink(config: SinkConfig, stdout: bool = True) -> Sink:
    """The local sink a sink configuration names; with `stdout` False a stdout sink discards
    (inside IoT Edge the outputs carry the messages, and stdout is the module's log)."""
    if config.kind == "stdout":
        return JsonLinesSink(None) if stdout else DiscardSink()
    assert config.path is not None  # the configuration model requires it for files
    try:
        return JsonLinesSink(config.path, rotate_bytes=int(config.rotate_mb * 1024 * 1024), backups=config.backups)
    except OSError as exc:
        # Most often a mounted folder the container's user may not write (uid 10001).
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            [f"sink.path: cannot write {config.path} ({reason}; the module runs as uid {os.getuid()})"]
        ) from None


class SinkSwitch:
    """A Sink that forwards to a replaceable one: a new sink configuration takes effect live."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._lock = threading.Lock()

    @property
    def current(self) -> Sink:
        return self._sink

    def replace(self, sink: Sink) -> None:
        """Messages go to `sink` from now on; the previous one is flushed and closed."""
        with self._lock:
            previous, self._sink = self._sink, sink
            # Under the lock: no publish is still writing to it.
            previous.close()

    def publish(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._sink.publish(message)

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        self._sink.close()
