"""The module's two upstream links behind one face, so a test of what both promise (every
result delivered, nothing lost over an outage or a kill -9, the methods answered, the 256 KB
guard) runs against each: IoT Hub through the local edgeHub (the twin configures the module,
direct methods) and MQTT v5 to the same broker (a configuration file, commands on a topic)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tests.support.edgehub import IoTHubSimulator, LocalPKI, Mosquitto
from tests.support.edgehub.broker import PORT
from tests.support.module_process import ModuleProcess
from tests.support.mqtt_subscriber import Subscriber
from tests.support.waits import wait_for


@dataclass(frozen=True)
class Sent:
    """One message the module sent, as its consumer received it. `properties` under the same
    names for both links: type, camera, schema, content_type, message_id."""

    body: Any
    properties: dict[str, str]
    size: int


class Link(Protocol):
    name: str
    broker: Mosquitto

    def listen(self, desired: dict[str, Any]) -> None: ...
    def start(
        self, desired: dict[str, Any], *, state_dir: Path | None = None, env: dict[str, str] | None = None
    ) -> ModuleProcess: ...
    def sent(self, output: str) -> list[Sent]: ...
    def invoke(self, method: str, payload: Any = None, timeout: float = 30.0) -> tuple[int, Any]: ...
    def reconfigure(self, patch: dict[str, Any], timeout: float = 30.0) -> None: ...
    def client(self) -> Any: ...


def results(link: Link, camera: str | None = None) -> list[dict[str, Any]]:
    return [m.body for m in link.sent("results") if camera is None or m.body.get("camera") == camera]


_HUB_NAMES = {"$.ct": "content_type", "$.mid": "message_id"}


class HubLink:
    """IoT Hub: one simulated hub (its twin holds `desired`) for every start of the test."""

    name = "iothub"

    def __init__(self, hub_factory: Callable[[dict[str, Any]], IoTHubSimulator], run_module: Any, broker: Mosquitto):
        self._factory, self._run, self.broker = hub_factory, run_module, broker
        self.hub: IoTHubSimulator | None = None

    def listen(self, desired: dict[str, Any]) -> None:
        """The hub up, its twin holding `desired` (once: later starts find the same hub)."""
        if self.hub is None:
            self.hub = self._factory(desired)

    def start(
        self, desired: dict[str, Any], *, state_dir: Path | None = None, env: dict[str, str] | None = None
    ) -> ModuleProcess:
        self.listen(desired)
        return self._run(self.hub, state_dir=state_dir, env=env)

    def sent(self, output: str) -> list[Sent]:
        assert self.hub is not None
        return [
            Sent(m.body, {_HUB_NAMES.get(k, k): v for k, v in m.properties.items()}, m.size)
            for m in self.hub.outputs(output)
        ]

    def invoke(self, method: str, payload: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        assert self.hub is not None
        return self.hub.invoke(method, payload, timeout)

    def reconfigure(self, patch: dict[str, Any], timeout: float = 30.0) -> None:
        """A desired-properties patch, applied and reported."""
        assert self.hub is not None
        hub, version = self.hub, self.hub.patch_desired(patch)
        wait_for(lambda: hub.reported.get("config", {}).get("applied_version") == version, timeout, "patch applied")

    @contextmanager
    def client(self) -> Iterator[Any]:
        """An SDK module client on the edgeHub, connected."""
        from azure.iot.device import IoTHubModuleClient

        assert self.hub is not None
        environment = self.hub.module_environment()
        client = IoTHubModuleClient.create_from_connection_string(
            environment["EdgeHubConnectionString"],
            server_verification_cert=Path(environment["EdgeModuleCACertificateFile"]).read_text(),
        )
        client.connect()
        try:
            yield client
        finally:
            client.shutdown()


class MqttLink:
    """MQTT v5: the module stand-alone, configured by a file, publishing to the broker; commands
    on `COMMANDS/<method>` answered on the request's response topic."""

    name = "mqtt"
    COMMANDS = "edgevision/test/commands"

    def __init__(self, broker: Mosquitto, pki: LocalPKI, model_dir: Path, folder: Path) -> None:
        self.broker, self._pki, self._model_dir, self._folder = broker, pki, model_dir, folder
        self._subscriber: Subscriber | None = None
        self._requester: Any = None
        self._requests = itertools.count()
        self._started: list[ModuleProcess] = []

    def _settings(self) -> dict[str, Any]:
        return {"enabled": True, "host": "localhost", "port": PORT, "ca_file": str(self._pki.ca_cert)}

    def listen(self, desired: dict[str, Any]) -> None:
        """The consumer subscribed (before the module starts: it sees the first message too)."""
        if not self.broker.running:
            self.broker.start()
        if self._subscriber is None:
            self._subscriber = Subscriber(self._pki.ca_cert, "#")

    def start(
        self, desired: dict[str, Any], *, state_dir: Path | None = None, env: dict[str, str] | None = None
    ) -> ModuleProcess:
        self.listen(desired)
        config = self._folder / f"config-{len(self._started)}.json"
        config.write_text(json.dumps({**desired, "mqtt": {**self._settings(), "commands": self.COMMANDS}}))
        module = ModuleProcess(
            None, self._model_dir, "--config", str(config), state_dir=state_dir or self._folder / "state", env=env
        )
        self._started.append(module)
        return module

    def sent(self, output: str) -> list[Sent]:
        assert self._subscriber is not None
        return [
            Sent(m.body, m.properties, m.size)
            for m in self._subscriber.messages
            if m.topic.startswith("edgevision/") and m.topic.rsplit("/", 1)[-1] == output
        ]

    def invoke(self, method: str, payload: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        import paho.mqtt.client as paho
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        assert self._subscriber is not None
        if self._requester is None:
            self._requester = paho.Client(client_id=f"requester-{time.monotonic_ns()}", protocol=paho.MQTTv5)
            self._requester.tls_set(ca_certs=str(self._pki.ca_cert))
            self._requester.reconnect_delay_set(0.1, 1.0)  # back soon after a broker restart
            self._requester.connect("localhost", PORT)
            self._requester.loop_start()
        requester = self._requester
        wait_for(requester.is_connected, timeout, "the requester's connection")
        number = next(self._requests)
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = f"replies/{number}"
        properties.CorrelationData = str(number).encode()
        self._requester.publish(f"{self.COMMANDS}/{method}", json.dumps(payload), qos=1, properties=properties)
        subscriber = self._subscriber
        try:
            wait_for(lambda: subscriber.on(properties.ResponseTopic), timeout, f"the answer to {method}")
        except AssertionError:
            raise TimeoutError(f"no answer to {method}") from None
        answer = subscriber.on(properties.ResponseTopic)[0].body
        return answer["status"], answer["payload"]

    def reconfigure(self, patch: dict[str, Any], timeout: float = 30.0) -> None:
        """What a twin patch is to the IoT Hub link: here the applyConfig command."""
        status, answer = self.invoke("applyConfig", patch, timeout)
        assert status == 200, answer

    @contextmanager
    def client(self) -> Iterator[Any]:
        """The module's MQTT output on the broker, connected."""
        from edgevision.config.model import MqttConfig
        from edgevision.upstream.mqtt import MqttOutput

        output = MqttOutput(MqttConfig(**self._settings()), f"client-{time.monotonic_ns()}")
        output.start()
        try:
            assert output.connected.wait(10), output.last_error
            yield output
        finally:
            output.close()

    def close(self) -> None:
        for module in self._started:
            module.stop()
        if self._requester is not None:
            self._requester.disconnect()
            self._requester.loop_stop()
        if self._subscriber is not None:
            self._subscriber.close()
