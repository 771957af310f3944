"""What an engine runs on and why: its errors, and the status /status and doctor report."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import asdict, dataclass, field
from typing import Any

from edgevision.errors import BuildError


class EngineError(BuildError):
    """The model cannot be loaded or run."""


class ProviderUnavailableError(EngineError):
    """A provider was required (strict mode) but ONNX Runtime could not use it."""


@dataclass
class EngineStatus:
    requested: list[str]
    in_use: list[str]
    provider: str
    dropped: dict[str, str] = field(default_factory=dict)
    io_binding: bool = False
    precision: str = "fp32"
    cuda_graph: bool = False
    # Options asked for but not in effect, with the reason (fp16 on the CPU, a graph not captured).
    declined: dict[str, str] = field(default_factory=dict)
    # On a GPU provider each input shape has its own session (a CUDA session re-plans whenever its
    # input shape changes); on the CPU one session runs every shape.
    one_shape_per_session: bool = False
    sessions: int = 1

    @property
    def fell_back(self) -> bool:
        return bool(self.dropped)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Once:
    """What has been said already: a model's fallback reason is warned once, however many engines
    it takes (the layout for the CPU after a GPU that did not start, a rescue engine, a GPU tried
    again after a failover)."""

    def __init__(self) -> None:
        self._said: set[Hashable] = set()
        self._lock = threading.Lock()

    def first(self, key: Hashable) -> bool:
        with self._lock:
            if key in self._said:
                return False
            self._said.add(key)
            return True
