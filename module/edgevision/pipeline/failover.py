"""GPU failure at run time: run on the CPU, say so, and try the GPU again with capped backoff."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgevision.config.model import AppConfig
from edgevision.errors import first_line
from edgevision.metrics import PipelineMetrics
from edgevision.pipeline.stages import InferenceStages

log = logging.getLogger(__name__)


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


def failover_policy(config: AppConfig) -> FailoverPolicy:
    inference = config.inference
    return FailoverPolicy(inference.gpu_retry_initial_s, inference.gpu_retry_max_s, inference.inference_timeout_s)


def with_inference(config: AppConfig, **changes: Any) -> AppConfig:
    return config.model_copy(update={"inference": config.inference.model_copy(update=changes)})


class FailoverController:
    """Watches the running stages and switches them: to the CPU (or, first, off CUDA graphs) when
    the GPU fails or hangs, and back to the GPU when its retry is due.

    It builds stages with `build`, puts them in with `swap`, and says what happened with `event`.
    """

    def __init__(
        self,
        config: Callable[[], AppConfig],
        build: Callable[[AppConfig], InferenceStages],
        swap: Callable[[InferenceStages, float], None],
        event: Callable[..., None],
        metrics: PipelineMetrics,
    ) -> None:
        self._config = config
        self._build = build
        self._swap = swap
        self._event = event
        self._metrics = metrics
        self.state = Failover(failover_policy(config()))
        # Why CUDA graphs were switched off at run time; they stay off for this process.
        self.cuda_graph_off: str | None = None

    def update_policy(self, config: AppConfig) -> None:
        self.state.policy = failover_policy(config)

    def check(self, stages: InferenceStages) -> None:
        """Fail over from a GPU that raised or hung; bring it back when its retry is due."""
        stalled = stages.stalled_for()
        hung = stalled > self.state.policy.inference_timeout_s
        failure = stages.failure or (f"an inference run has not returned for {stalled:.0f} s" if hung else None)
        if failure and stages.engine.on_gpu:
            self._fall_back(stages, failure, hung)
        elif self.state.retry_due():
            self._retry_gpu()

    def _fall_back(self, stages: InferenceStages, reason: str, hung: bool) -> None:
        previous = stages.engine.provider
        graph = stages.engine.status.cuda_graph
        config = self._config()
        try:
            # CUDA graphs are the likelier culprit; without them the GPU may still serve.
            replacement = self._build(
                with_inference(config, **({"cuda_graph": False} if graph else {"provider": "cpu"}))
            )
        except Exception as exc:  # noqa: BLE001 - keep the failing stages rescuing batches on the CPU
            log.error("cannot build fallback inference stages: %s", exc)
            return
        retry_in = None if graph else self.state.failed(reason)
        if graph:
            self.cuda_graph_off = reason
        # A hung run may never return: its batch is given up, the queued ones run on the CPU.
        abandoned = stages.abandon_hung(reason) if hung else 0
        self._swap(replacement, 1.0 if hung else 30.0)
        self._metrics.provider_switches += 1
        self._event(
            "provider_switched",
            previous=previous,
            provider=replacement.engine.provider,
            reason=reason,
            cuda_graph_disabled=graph,
            retry_gpu_in_s=retry_in,
            frames_abandoned=abandoned,
        )

    def _retry_gpu(self) -> None:
        config = self._config()
        try:
            stages = self._build(config if self.cuda_graph_off is None else with_inference(config, cuda_graph=False))
        except Exception as exc:  # noqa: BLE001
            stages, error = None, first_line(exc)
        else:
            error = (
                None
                if stages.engine.on_gpu
                else "the GPU provider did not load: "
                + "; ".join(f"{p}: {r}" for p, r in stages.engine.status.dropped.items())
            )
        if error is not None:
            wait = self.state.postpone()
            self._event("gpu_retry_failed", reason=error, retry_gpu_in_s=wait)
            return
        assert stages is not None
        self.state.restored()
        self._swap(stages, 30.0)
        self._metrics.provider_switches += 1
        self._event("provider_restored", provider=stages.engine.provider)

    def to_dict(self) -> dict[str, Any]:
        return {**self.state.to_dict(), "cuda_graph_disabled": self.cuda_graph_off}
