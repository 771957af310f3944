"""The IoT Hub sink: results, metrics and events to the module's outputs through edgeHub."""

from __future__ import annotations

import threading
from typing import Any

from edgevision.publish.fit import fit_encoded
from edgevision.publish.results_modes import ResultsReducer
from edgevision.publish.sinks import Sink
from edgevision.upstream.sender import MessageSender

# Output per message type; deployment routes refer to these names.
OUTPUTS = {"result": "results", "summary": "results", "counts": "results", "metrics": "metrics", "event": "events"}


class IoTHubSink:
    """Implements the pipeline's Sink; never blocks on the network (the sender queues)."""

    def __init__(self, sender: MessageSender, reducer: ResultsReducer, local: Sink | None = None) -> None:
        self.sender = sender
        self.reducer = reducer
        self.local = local
        self._lock = threading.Lock()

    def set_reducer(self, reducer: ResultsReducer) -> None:
        with self._lock:
            for message in self.reducer.flush():
                self._send(message)
            self.reducer = reducer

    def publish(self, message: dict[str, Any]) -> None:
        if self.local is not None:
            self.local.publish(message)
        with self._lock:
            outgoing = self.reducer.offer(message) if message["type"] == "result" else [message]
            outgoing += self.reducer.due()
            for item in outgoing:
                self._send(item)

    def _send(self, message: dict[str, Any]) -> None:
        # Stamped before sizing, so each part is measured and encoded as it will be sent.
        for part, data in fit_encoded({**message, "run_id": self.sender.run_id}):
            self.sender.enqueue(OUTPUTS[part["type"]], part, data)

    def flush(self) -> None:
        if self.local is not None:
            self.local.flush()

    def close(self, flush_s: float = 5.0) -> None:
        with self._lock:
            for message in self.reducer.flush():
                self._send(message)
        self.sender.flush(timeout=flush_s)
        if self.local is not None:
            self.local.close()
