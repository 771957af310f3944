"""An MQTT v5 subscriber on the tests' broker (TLS, the tests' CA) that keeps every message the
module publishes, with its properties; its session outlives a broker restart."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.support.edgehub.broker import PORT


class Received(NamedTuple):
    topic: str
    body: dict[str, Any]
    properties: dict[str, str]
    size: int


class Subscriber:
    """An MQTT v5 client on the test broker that keeps every message with its properties. Its
    session outlives a broker restart (mosquitto persists it), so what was published while it
    was away is delivered when it is back: it sees everything the broker accepted."""

    def __init__(self, ca_cert: Path, topic: str) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._client = paho.Client(client_id=f"subscriber-{time.monotonic_ns()}", protocol=paho.MQTTv5)
        self._client.tls_set(ca_certs=str(ca_cert))
        self._client.reconnect_delay_set(0.1, 1.0)
        self._subscribed = threading.Event()
        self._client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        session = Properties(PacketTypes.CONNECT)
        session.SessionExpiryInterval = 3600
        self._client.connect("localhost", PORT, clean_start=False, properties=session)
        self._client.loop_start()
        assert self._subscribed.wait(10), "subscriber could not subscribe"

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        props = dict(getattr(message.properties, "UserProperty", []) or [])
        props["content_type"] = getattr(message.properties, "ContentType", "")
        correlation = getattr(message.properties, "CorrelationData", None)
        if correlation is not None:
            props["correlation"] = correlation.decode(errors="replace")
        try:
            body = json.loads(message.payload)
        except (ValueError, RecursionError):
            return  # not the module's (a request this subscriber sees on "#")
        with self._lock:
            self.messages.append(Received(message.topic, body, props, len(message.payload)))

    def of(self, kind: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if isinstance(m.body, dict) and m.body.get("type") == kind]

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
