"""What the pipeline tells the world besides results: lifecycle events and metrics messages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from edgevision.metrics import PipelineMetrics
from edgevision.publish.messages import event_message, metrics_message
from edgevision.publish.sinks import Sink

log = logging.getLogger(__name__)


class EventLog:
    """Events and metrics to the sink (the `events` and `metrics` outputs upstream) and the log."""

    def __init__(
        self, sink: Sink, metrics: PipelineMetrics, on_event: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        self._sink = sink
        self._metrics = metrics
        self._on_event = on_event
        self._camera_states: dict[str, str] = {}

    def event(self, name: str, **details: Any) -> None:
        self.publish(name, details)

    def publish(self, name: str, details: dict[str, Any], level: int = logging.INFO) -> None:
        """An event to the sink and the log (analytics events, frequent, at DEBUG)."""
        document = event_message(name, details)
        log.log(level, "event %s %s", name, details)
        try:
            self._sink.publish(document)
        except Exception as exc:  # noqa: BLE001 - a failing sink must not stop the pipeline
            log.error("cannot publish event %s: %s", name, exc)
        if self._on_event is not None:
            self._on_event(document)

    def metrics(self, snapshot: dict[str, Any]) -> None:
        try:
            self._sink.publish(metrics_message(snapshot))
            self._sink.flush()
        except Exception as exc:  # noqa: BLE001
            log.error("cannot publish metrics: %s", exc)

    def flush(self) -> None:
        try:
            self._sink.flush()
        except Exception:  # a failing sink must not stop the shutdown
            log.exception("flushing the sink failed")

    def camera_changes(self) -> None:
        """A `camera_state` event for each camera's first state and every change since: a camera
        that fails from its first second shows on the events output too."""
        for camera_id, stats in list(self._metrics.cameras.items()):
            state = stats.state
            previous = self._camera_states.get(camera_id)
            if state != previous:
                self._camera_states[camera_id] = state
                self.event("camera_state", camera=camera_id, state=state, previous=previous, error=stats.last_error)
