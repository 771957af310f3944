"""A sink that keeps every message, for assertions on what the pipeline published."""

from __future__ import annotations

import threading
from typing import Any


class CollectingSink:
    """Keeps every message in memory; the pipeline sees an ordinary sink."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def publish(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.messages.append(message)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages if m["type"] == kind]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.of_type("event") if m["event"] == name]
