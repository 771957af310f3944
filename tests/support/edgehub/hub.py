"""Plays IoT Hub on the broker: twin GET and reported patches, desired patches, direct methods,
and a collector of what the module sends on its outputs."""

from __future__ import annotations

import base64
import copy
import itertools
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from tests.support.edgehub.broker import PORT


@dataclass(frozen=True)
class OutputMessage:
    device: str
    module: str
    output: str | None
    properties: dict[str, str]
    body: Any
    size: int


_instances = itertools.count()
_TOPICS = (
    "$iothub/twin/GET/#",
    "$iothub/twin/PATCH/properties/reported/#",
    "$iothub/methods/res/#",
    "devices/+/modules/+/messages/events/#",
)


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


class IoTHubSimulator:
    """One device's module twin and outputs, as IoT Hub would serve them through edgeHub."""

    def __init__(
        self,
        ca_cert: Path,
        device_id: str = "edge-device",
        module_id: str = "edgevision",
        desired: dict[str, Any] | None = None,
    ) -> None:
        self.ca_cert = ca_cert
        self.device_id = device_id
        self.module_id = module_id
        self.desired: dict[str, Any] = {**copy.deepcopy(desired or {}), "$version": 1}
        self.reported: dict[str, Any] = {"$version": 1}
        self.reported_patches: list[dict[str, Any]] = []
        self.messages: list[OutputMessage] = []
        self.twin_requests = 0
        self._lock = threading.Condition()
        self._method_responses: dict[str, tuple[int, Any]] = {}
        self._rids = itertools.count(1)
        # A persistent session: what the module sends while the simulator reconnects waits for it.
        self._client = mqtt.Client(
            client_id=f"iothub-simulator-{os.getpid()}-{next(_instances)}", clean_session=False, protocol=mqtt.MQTTv311
        )
        self._client.tls_set(ca_certs=str(ca_cert))
        self._client.reconnect_delay_set(min_delay=0.05, max_delay=0.5)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._connected = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        self._client.connect_async("127.0.0.1", PORT)
        self._client.loop_start()
        if not self._connected.wait(timeout):
            raise RuntimeError("simulator could not connect to the broker")

    def stop(self) -> None:
        # Leave no persistent session behind that the broker would keep queueing messages for.
        self._client.unsubscribe(list(_TOPICS))
        time.sleep(0.1)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, rc: int) -> None:
        if rc != 0:
            return
        # Re-subscribed after every reconnect (the broker keeps no session here).
        client.subscribe([(topic, 1) for topic in _TOPICS])
        self._connected.set()

    def edge_environment(self, workload_uri: str, generation_id: str) -> dict[str, str]:
        """What edgeAgent gives a module: the IOTEDGE_* variables (tokens signed by the workload API)."""
        return {
            "IOTEDGE_IOTHUBHOSTNAME": "test-hub.azure-devices.net",
            "IOTEDGE_DEVICEID": self.device_id,
            "IOTEDGE_MODULEID": self.module_id,
            "IOTEDGE_GATEWAYHOSTNAME": "127.0.0.1",
            "IOTEDGE_MODULEGENERATIONID": generation_id,
            "IOTEDGE_WORKLOADURI": workload_uri,
            "IOTEDGE_APIVERSION": "2019-01-30",
            "IOTEDGE_AUTHSCHEME": "sasToken",
        }

    def module_environment(self) -> dict[str, str]:
        """What the module needs to connect: the SDK's local-development variables."""
        key = base64.b64encode(b"edgevision-test-key-0123456789ab").decode()
        return {
            "EdgeHubConnectionString": (
                f"HostName=test-hub.azure-devices.net;DeviceId={self.device_id};ModuleId={self.module_id};"
                f"SharedAccessKey={key};GatewayHostName=127.0.0.1"
            ),
            "EdgeModuleCACertificateFile": str(self.ca_cert),
        }

    # -- what the module asks ----------------------------------------------------------------

    def _on_message(self, client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        if topic.startswith("$iothub/twin/GET/"):
            rid = _query(topic)["$rid"]
            with self._lock:
                self.twin_requests += 1
                twin = {"desired": copy.deepcopy(self.desired), "reported": copy.deepcopy(self.reported)}
            client.publish(f"$iothub/twin/res/200/?$rid={rid}", json.dumps(twin), qos=1)
        elif topic.startswith("$iothub/twin/PATCH/properties/reported/"):
            rid = _query(topic)["$rid"]
            patch = json.loads(msg.payload)
            with self._lock:
                _merge(self.reported, patch)
                self.reported["$version"] += 1
                version = self.reported["$version"]
                self.reported_patches.append(patch)
                self._lock.notify_all()
            client.publish(f"$iothub/twin/res/204/?$rid={rid}&$version={version}", b"", qos=1)
        elif topic.startswith("$iothub/methods/res/"):
            status = int(topic.split("/")[3])
            rid = _query(topic)["$rid"]
            with self._lock:
                self._method_responses[rid] = (status, json.loads(msg.payload) if msg.payload else None)
                self._lock.notify_all()
        elif topic.startswith("devices/"):
            parts = topic.split("/", 6)
            properties = dict(urllib.parse.parse_qsl(parts[6])) if len(parts) > 6 else {}
            message = OutputMessage(
                parts[1], parts[3], properties.get("$.on"), properties, json.loads(msg.payload), len(msg.payload)
            )
            with self._lock:
                self.messages.append(message)
                self._lock.notify_all()

    # -- what the test (the operator) does -----------------------------------------------------

    def patch_desired(self, patch: dict[str, Any]) -> int:
        with self._lock:
            _merge(self.desired, patch)
            self.desired["$version"] += 1
            version = self.desired["$version"]
        self._client.publish(
            f"$iothub/twin/PATCH/properties/desired/?$version={version}",
            json.dumps({**patch, "$version": version}),
            qos=1,
        )
        return version

    def set_desired(self, patch: dict[str, Any]) -> int:
        """Change the desired properties without telling the module (an operator's change made
        while the device was away): only a twin read shows it."""
        with self._lock:
            _merge(self.desired, patch)
            self.desired["$version"] += 1
            return self.desired["$version"]

    def invoke(self, method: str, payload: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        rid = str(next(self._rids))
        self._client.publish(f"$iothub/methods/POST/{method}/?$rid={rid}", json.dumps(payload), qos=1)
        with self._lock:
            if not self._lock.wait_for(lambda: rid in self._method_responses, timeout):
                raise TimeoutError(f"no answer to {method}")
            return self._method_responses.pop(rid)

    def outputs(self, output: str | None = None) -> list[OutputMessage]:
        with self._lock:
            return [m for m in self.messages if output is None or m.output == output]

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {what}")
                self._lock.wait(min(remaining, 0.2))

    def reported_now(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.reported)


def _query(topic: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(topic.split("?", 1)[1])) if "?" in topic else {}
