"""GPU failure at run time: run on the CPU, say so, and try the GPU again with capped backoff."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FailoverPolicy:
    retry_initial_s: float = 30.0
    retry_max_s: float = 900.0
    # A run this long is taken for a hung driver (a lost GPU-PV device, a CUDA graph gone wrong).
    inference_timeout_s: float = 60.0


class Failover:
    """State of the fallback: why the CPU runs, when the GPU is tried next, how often it switched.

    The backoff doubles with every failure after a retry and resets once the GPU has run for
    `retry_max_s` without one.
    """

    def __init__(self, policy: FailoverPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self.backoff_s = policy.retry_initial_s
        self.reason: str | None = None
        self.retry_at: float | None = None
        self.gpu_since: float | None = None
        self.switches = 0
        self.restores = 0
        self.last_failure: str | None = None

    @property
    def on_fallback(self) -> bool:
        return self.retry_at is not None

    def failed(self, reason: str) -> float:
        """The GPU failed; returns the seconds until it is tried again."""
        now = self._clock()
        if self.gpu_since is not None and now - self.gpu_since >= self.policy.retry_max_s:
            self.backoff_s = self.policy.retry_initial_s
        wait = self.backoff_s
        self.backoff_s = min(self.backoff_s * 2, self.policy.retry_max_s)
        self.reason = self.last_failure = reason
        self.retry_at = now + wait
        self.gpu_since = None
        self.switches += 1
        return wait

    def retry_due(self) -> bool:
        return self.retry_at is not None and self._clock() >= self.retry_at

    def postpone(self) -> float:
        """The retry could not bring the GPU back (it did not load); wait as long again."""
        assert self.retry_at is not None
        self.retry_at = self._clock() + self.backoff_s
        return self.backoff_s

    def restored(self) -> None:
        self.reason = None
        self.retry_at = None
        self.gpu_since = self._clock()
        self.restores += 1

    def to_dict(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "on_fallback": self.on_fallback,
            "reason": self.reason,
            "retry_in_s": round(max(0.0, self.retry_at - now), 1) if self.retry_at is not None else None,
            "switches": self.switches,
            "restores": self.restores,
            "last_failure": self.last_failure,
        }
