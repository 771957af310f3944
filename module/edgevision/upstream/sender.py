"""Sends messages to module outputs from a bounded queue, so the pipeline never waits on the network."""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from azure.iot.device import Message

from edgevision.publish.sink import encode
from edgevision.upstream.twin import call_with_timeout

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"


class OutputClient(Protocol):
    def send_message_to_output(self, message: Message, output_name: str) -> None: ...


@dataclass
class Outgoing:
    output: str
    body: dict[str, Any]


def to_message(body: dict[str, Any]) -> Message:
    """JSON with the content type and encoding that body-based routing needs, and properties
    routes can filter on without reading the body."""
    message = Message(encode(body), content_encoding=CONTENT_ENCODING, content_type=CONTENT_TYPE)
    message.custom_properties["type"] = str(body.get("type", ""))
    if body.get("schema"):
        message.custom_properties["schema"] = str(body["schema"])
    if body.get("camera"):
        message.custom_properties["camera"] = str(body["camera"])
    return message


class MessageSender:
    """A thread that sends queued messages; when the queue is full the oldest is dropped and counted."""

    def __init__(self, client: Callable[[], OutputClient], maxsize: int, retry_s: float = 1.0,
                 call_timeout_s: float = 30.0, on_timeout: Callable[[str], None] | None = None) -> None:
        self._client = client
        self.maxsize = maxsize
        self.call_timeout_s = call_timeout_s
        self._on_timeout = on_timeout
        self._retry_s = retry_s
        self._queue: collections.deque[Outgoing] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._busy = False
        self.sent: collections.Counter[str] = collections.Counter()
        self.dropped: collections.Counter[str] = collections.Counter()
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="upstream-send", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def enqueue(self, output: str, body: dict[str, Any]) -> None:
        with self._cond:
            if len(self._queue) >= self.maxsize:
                oldest = self._queue.popleft()
                self.dropped[oldest.output] += 1
            self._queue.append(Outgoing(output, body))
            self._cond.notify()

    def depth(self) -> int:
        return len(self._queue)

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued has been sent; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.1))
        return True

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def stats(self) -> dict[str, Any]:
        return {"queued": len(self._queue), "sent": dict(self.sent), "dropped": dict(self.dropped),
                "send_failures": self.failures}

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while not self._queue and not self._stop.is_set():
                    self._cond.wait(0.5)
                if self._stop.is_set():
                    return
                item = self._queue.popleft()
                self._busy = True
            try:
                self._send(item)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _send(self, item: Outgoing) -> None:
        message = to_message(item.body)
        while not self._stop.is_set():
            try:
                call_with_timeout(lambda: self._client().send_message_to_output(message, item.output),
                                  self.call_timeout_s)
                self.sent[item.output] += 1
                return
            except ValueError as exc:  # the SDK's own size check; fit() should make this impossible
                log.error("message to %s refused by the SDK: %s", item.output, exc)
                self.dropped[item.output] += 1
                return
            except Exception as exc:  # noqa: BLE001 - connection errors: keep the message, retry
                self.failures += 1
                if isinstance(exc, TimeoutError) and self._on_timeout is not None:
                    self._on_timeout(f"sending to {item.output}: {exc}")
                if self.failures == 1 or self.failures % 100 == 0:
                    log.warning("sending to %s failed (%d failures so far): %s", item.output, self.failures, exc)
                self._stop.wait(self._retry_s)
