"""Sends messages to module outputs from the on-disk outbox, so the pipeline never waits on the network."""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from azure.iot.device import Message

from edgevision.publish.messages import encode
from edgevision.upstream.outbox import Outbox, Stored
from edgevision.upstream.sdk import call_with_timeout, classify

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "utf-8"


class OutputClient(Protocol):
    def send_message_to_output(self, message: Message, output_name: str) -> None: ...


def properties(body: dict[str, Any]) -> dict[str, str]:
    """Properties routes can filter on without reading the body."""
    props = {"type": str(body.get("type", ""))}
    # `event` too: a route can take line crossings alone (WHERE event = 'line_cross').
    for key in ("schema", "camera", "event"):
        if body.get(key):
            props[key] = str(body[key])
    return props


def to_message(data: bytes, props: dict[str, str], message_id: str | None = None) -> Message:
    """JSON with the content type and encoding that body-based routing needs."""
    message = Message(data, message_id=message_id, content_encoding=CONTENT_ENCODING, content_type=CONTENT_TYPE)
    message.custom_properties.update(props)
    return message


class MessageSender:
    """A thread that sends the outbox's messages in order, deleting each once acknowledged.

    Every message carries `run_id` in its body and a message id users can de-duplicate on:
    run:camera:seq[:part] for results, run:type:n for the rest.
    """

    def __init__(
        self,
        client: Callable[[], OutputClient],
        outbox: Outbox,
        run_id: str,
        retry_s: float = 1.0,
        call_timeout_s: float = 30.0,
        on_timeout: Callable[[str], None] | None = None,
    ) -> None:
        self._client = client
        self.outbox = outbox
        self.run_id = run_id
        self.call_timeout_s = call_timeout_s
        self._on_timeout = on_timeout
        self._retry_s = retry_s
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._counter = itertools.count()
        self.sent: collections.Counter[str] = collections.Counter()
        self.refused: collections.Counter[str] = collections.Counter()
        # Messages that arrived while sends were failing: the outage backlog.
        self.held: collections.Counter[str] = collections.Counter()
        self._link_down = False
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="upstream-send", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def message_id(self, body: dict[str, Any]) -> str:
        if body.get("type") == "result" and "seq" in body:
            part = body.get("part")
            suffix = f":{part['index']}" if isinstance(part, dict) else ""
            return f"{self.run_id}:{body.get('camera')}:{body['seq']}{suffix}"
        return f"{self.run_id}:{body.get('type')}:{next(self._counter)}"

    def enqueue(self, output: str, body: dict[str, Any], data: bytes | None = None) -> None:
        """Queue `body`; `data` is its JSON when the caller already has it (it then carries run_id)."""
        if data is None:
            body = {**body, "run_id": self.run_id}
            data = encode(body).encode("utf-8")
        self.outbox.put(output, data, properties(body), self.message_id(body))
        if self._link_down:
            self.held[output] += 1
        with self._wake:
            self._wake.notify()

    def flush(self, timeout: float) -> bool:
        """Wait until the outbox is empty; False on timeout (what is left stays on disk)."""
        deadline = time.monotonic() + timeout
        while len(self.outbox):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, join_s: float | None = None) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        self._thread.join(timeout=self.call_timeout_s + 1 if join_s is None else join_s)

    def stats(self) -> dict[str, Any]:
        outbox = self.outbox.stats()
        return {
            "queued": outbox["queued"],
            "sent": dict(self.sent),
            "refused": dict(self.refused),
            "held_during_outages": dict(self.held),
            "send_failures": self.failures,
            "outbox": outbox,
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.outbox.report_problems()
                item = self.outbox.oldest()
                if item is None:
                    with self._wake:
                        self._wake.wait(0.5)
                    continue
                self._send(item)
            except Exception:
                log.exception("upstream sender failed; retrying")
                self._stop.wait(self._retry_s)

    def _send(self, item: Stored) -> None:
        message = to_message(item.body, item.properties, item.message_id)
        failed = False
        while not self._stop.is_set():
            try:
                call_with_timeout(
                    lambda: self._client().send_message_to_output(message, item.output), self.call_timeout_s
                )
                self.outbox.ack(item, retried=failed)
                self.sent[item.output] += 1
                self._link_down = False
                return
            except Exception as exc:  # noqa: BLE001 - classified: refused messages are dropped, the rest retried
                error = classify(exc, f"sending to {item.output}")
                if not error.transient:
                    # The SDK's own size check; fit() should make this impossible.
                    log.error("message refused by the SDK: %s", error)
                    self.outbox.drop(item, "refused")
                    self.refused[item.output] += 1
                    return
                self.failures += 1
                self._link_down = True
                if not failed:
                    failed = True
                    self.outbox.attempted(item)
                if isinstance(exc, TimeoutError) and self._on_timeout is not None:
                    self._on_timeout(f"sending to {item.output}: {exc}")
                if self.failures == 1 or self.failures % 100 == 0:
                    log.warning("%s (%d failures so far)", error, self.failures)
                self._stop.wait(self._retry_s)
