"""Upstream over MQTT v5 (Azure IoT Operations' broker, or any): the client, and the link that
feeds it from the same on-disk outbox and sender as the IoT Hub link.

paho-mqtt 1.6.1 (the version azure-iot-device pins) speaks MQTT v5 but sends no AUTH packets, so
Kubernetes service-account-token authentication (`K8S-SAT`) goes in the CONNECT: the token file
is read again at every connection, and the client reconnects every `sat_refresh_s`, before a
rotated token's predecessor expires. Each message is published with QoS 1 and counted sent only
once the broker's PUBACK arrives; until then it stays in the outbox.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgevision.config.model import AppConfig, MqttConfig
from edgevision.publish.sinks import Sink
from edgevision.upstream.iothub import IoTHubSink
from edgevision.upstream.link import outbox_limits, outbox_path, reducer_for
from edgevision.upstream.outbox import Outbox
from edgevision.upstream.sender import CONTENT_TYPE, MessageSender

log = logging.getLogger(__name__)

SAT_METHOD = "K8S-SAT"
# A service-account token is a JWT of a few KB; a larger file is not one.
_MAX_TOKEN_BYTES = 64 * 1024
_PUBACK_TIMEOUT_S = 10.0


class MqttError(ConnectionError):
    """The broker cannot be reached or refused us (transient: retried, nothing lost)."""


def read_token(path: Path) -> bytes:
    """The service-account token, bounded; a clear error when it is missing or empty."""
    try:
        with path.open("rb") as handle:
            token = handle.read(_MAX_TOKEN_BYTES + 1)
    except OSError as exc:
        raise MqttError(f"mqtt.sat_token_file {path}: {exc.strerror or exc}") from None
    token = token.strip()
    if not token or len(token) > _MAX_TOKEN_BYTES:
        raise MqttError(f"mqtt.sat_token_file {path}: not a token ({len(token)} bytes)")
    return token


def connect_properties(config: MqttConfig) -> Properties | None:
    if config.sat_token_file is None:
        return None
    properties = Properties(PacketTypes.CONNECT)
    properties.AuthenticationMethod = SAT_METHOD
    properties.AuthenticationData = read_token(config.sat_token_file)
    return properties


# A command's payload, at most (a configuration document fits; a method response may be larger).
MAX_COMMAND_BYTES = 256 * 1024
_COMMAND_QUEUE = 16
# (method, payload) -> (status, payload): the module's Methods.
Handler = Callable[[str, Any], tuple[int, Any]]


def decode_command(data: bytes) -> tuple[Any, tuple[int, Any] | None]:
    """A command's JSON payload, or the answer that refuses it (too big, not JSON, too deep)."""
    if len(data) > MAX_COMMAND_BYTES:
        return None, (413, {"error": f"payload over {MAX_COMMAND_BYTES} bytes"})
    if not data.strip():
        return None, None
    try:
        return json.loads(data), None
    except (ValueError, RecursionError) as exc:
        return None, (400, {"error": f"payload is not JSON: {type(exc).__name__}"})


class MqttOutput:
    """What MessageSender sends through: `send_message_to_output` publishes to the output's
    topic and returns once the broker acknowledged it (raises otherwise: the sender retries)."""

    def __init__(self, config: MqttConfig, client_id: str, retry_max_s: float = 10.0) -> None:
        self.config = config
        # Attempts back off from 1 s, doubling, to this (upstream.connection_retry_interval_s).
        self.retry_max_s = retry_max_s
        self._client = paho.Client(client_id=client_id, protocol=paho.MQTTv5)
        if config.tls:
            context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
            if config.cert_file is not None and config.key_file is not None:
                context.load_cert_chain(str(config.cert_file), str(config.key_file))
            self._client.tls_set_context(context)
        if config.username is not None:
            self._client.username_pw_set(config.username, config.secret())
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        # Every write on the network thread (`_keep_connected`): without an event loop named,
        # paho 1.6.1 writes a publish from the thread that makes it, so the sender, the command
        # answers and the network thread's acknowledgements would write to one TLS socket at
        # once (OpenSSL objects are not for concurrent use; a partial write interleaves packets).
        # Named, a publish is queued and wakes the network thread's select().
        self._client.on_socket_register_write = lambda *_: None
        self.connected = threading.Event()
        self.last_error: str | None = "not connected yet"
        # What this connection attempt's CONNACK said (None: nothing yet). last_error keeps the
        # previous failure until a CONNACK accepts: a retry does not hide why the last one failed.
        self._refusal: str | None = None
        self.connects = 0
        self.disconnects = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep_connected, name="mqtt-connect", daemon=True)
        # Commands: taken by the network thread, run one at a time by their own thread.
        self._handler: Handler | None = None
        self._commands: queue.Queue[Any] = queue.Queue(maxsize=_COMMAND_QUEUE)
        self._client.on_message = self._on_message
        self.commands_answered = 0

    def serve(self, handler: Handler) -> None:
        """Answer requests on `<commands>/<method>` with `handler` (before start)."""
        if self.config.commands is None:
            return
        self._handler = handler
        threading.Thread(target=self._run_commands, name="mqtt-commands", daemon=True).start()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        try:
            self._commands.put_nowait(message)
        except queue.Full:
            self._respond(message, 503, {"error": "busy: too many commands waiting"})

    def _run_commands(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._commands.get(timeout=0.5)
            except queue.Empty:
                continue
            method = message.topic.rsplit("/", 1)[-1]
            payload, refusal = decode_command(message.payload)
            status, answer = refusal if refusal is not None else self._handler(method, payload)  # type: ignore[misc]
            log.info("MQTT command %s -> %d", method, status)
            self._respond(message, status, answer)

    def _respond(self, request: Any, status: int, payload: Any) -> None:
        properties = getattr(request, "properties", None)
        topic = getattr(properties, "ResponseTopic", None)
        if not topic or "#" in topic or "+" in topic:
            log.warning("MQTT command on %s has no response topic: not answered", request.topic)
            return
        response = Properties(PacketTypes.PUBLISH)
        response.ContentType = CONTENT_TYPE
        response.UserProperty = [("status", str(status))]
        correlation = getattr(properties, "CorrelationData", None)
        if correlation is not None:
            response.CorrelationData = correlation
        body = json.dumps({"status": status, "payload": payload}, default=str).encode()
        self._client.publish(topic, body, qos=1, properties=response)
        self.commands_answered += 1

    def start(self) -> None:
        self._thread.start()

    def _on_connect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _properties: Any = None) -> None:
        if getattr(reason, "value", reason) == 0:
            self.connects += 1
            self.last_error = None
            if self._handler is not None and self.config.commands is not None:
                self._client.subscribe(f"{self.config.commands}/+", qos=1)
            self.connected.set()
            log.info("MQTT broker %s:%d connected", self.config.host, self.config.port)
        else:
            self._refusal = self.last_error = f"the broker refused the connection: {reason}"

    def _on_disconnect(self, _client: Any, _userdata: Any, reason: Any, _properties: Any = None) -> None:
        if self.connected.is_set():
            self.disconnects += 1
        self.connected.clear()
        # A refusal's reason (said by the CONNACK) is kept: the disconnect after it says less.
        if not self._stop.is_set() and getattr(reason, "value", reason) != 0:
            self.last_error = self._refusal or f"disconnected: {reason}"

    def _keep_connected(self) -> None:
        """The client's one network thread: connect (again) with backoff, the token read afresh
        each time, run the client's loop, and with a SAT reconnect every sat_refresh_s. The first
        failure of each kind is logged, not every retry."""
        backoff, said, connected_at, up = 1.0, None, 0.0, False
        refresh_s = self.config.sat_refresh_s if self.config.sat_token_file is not None else None
        while not self._stop.is_set():
            if not up:
                try:
                    self._refusal = None
                    self._client.connect(
                        self.config.host or "",
                        self.config.port,
                        keepalive=30,
                        properties=connect_properties(self.config),
                    )
                    up, connected_at = True, time.monotonic()
                except (OSError, ValueError, MqttError) as exc:
                    self.last_error = str(exc) or type(exc).__name__
            if up:
                rc = self._client.loop(timeout=0.5)
                if rc != paho.MQTT_ERR_SUCCESS:
                    up = False
                    self.connected.clear()
                    self.last_error = self._refusal or f"connection lost: {paho.error_string(rc)}"
                elif self.connected.is_set():
                    backoff, said = 1.0, None
                    if refresh_s is not None and time.monotonic() - connected_at >= refresh_s:
                        log.info("MQTT: reconnecting with the service-account token read again")
                        self._client.disconnect()
                        self._client.loop(timeout=0.5)
                        self.connected.clear()
                        up = False
                    continue
                elif time.monotonic() - connected_at < 10.0 and self._refusal is None:
                    continue  # waiting for the CONNACK
                else:
                    up = False
                    self.last_error = self._refusal or "no CONNACK within 10 s"
                    self._client.disconnect()
            if self.last_error and said != self.last_error:
                log.error("MQTT broker %s:%d: %s; retrying", self.config.host, self.config.port, self.last_error)
                said = self.last_error
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.retry_max_s)

    def send_message_to_output(self, message: Any, output_name: str) -> None:
        if not self.connected.is_set():
            raise MqttError(self.last_error or "not connected")
        properties = Properties(PacketTypes.PUBLISH)
        properties.ContentType = CONTENT_TYPE
        properties.UserProperty = [(k, str(v)) for k, v in message.custom_properties.items()]
        if message.message_id:
            properties.UserProperty.append(("message_id", str(message.message_id)))
        camera = message.custom_properties.get("camera", "")
        template = self.config.topics[output_name]
        # The module's own messages (no camera) drop the camera's level: edgevision/events.
        topic = (
            template.replace("{camera}", camera)
            if camera
            else template.replace("/{camera}", "").replace("{camera}", "")
        )
        data = message.data if isinstance(message.data, bytes) else str(message.data).encode()
        info = self._client.publish(topic, data, qos=self.config.qos, properties=properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise MqttError(f"publish to {topic}: {paho.error_string(info.rc)}")
        if self.config.qos > 0:
            info.wait_for_publish(_PUBACK_TIMEOUT_S)
            if not info.is_published():
                raise TimeoutError(f"no PUBACK for {topic} within {_PUBACK_TIMEOUT_S:g} s")

    def stats(self) -> dict[str, Any]:
        return {
            "connected": self.connected.is_set(),
            "connects": self.connects,
            "disconnects": self.disconnects,
            "last_error": self.last_error,
            "commands_answered": self.commands_answered,
        }

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        # Never connected, or already gone: disconnect() says so in its return code, not by raising.
        self._client.disconnect()
        if not self._thread.is_alive():
            self._client.loop_write()  # the network thread is gone: the DISCONNECT goes from here


class MqttLink:
    """The module's upstream where there is no IoT Edge runtime: outbox, sender, MQTT client."""

    def __init__(self, config: AppConfig, environ: Mapping[str, str], run_id: str) -> None:
        self._environ = environ
        self.run_id = run_id
        client_id = config.mqtt.client_id or f"edgevision-{environ.get('HOSTNAME') or socket.gethostname()}"
        self.output = MqttOutput(config.mqtt, client_id, config.upstream.connection_retry_interval_s)
        self.outbox: Outbox | None = None
        self.sender: MessageSender | None = None
        self.iot_sink: IoTHubSink | None = None

    def serve(self, handler: Handler) -> None:
        self.output.serve(handler)

    def sink(self, config: AppConfig, local: Sink | None) -> IoTHubSink:
        self.outbox = Outbox(outbox_path(config.upstream, self._environ), outbox_limits(config))
        output = self.output
        self.sender = MessageSender(lambda: output, self.outbox, self.run_id, call_timeout_s=_PUBACK_TIMEOUT_S + 5)
        self.sender.start()
        self.output.start()
        self.iot_sink = IoTHubSink(self.sender, reducer_for(config), local)
        return self.iot_sink

    def stats(self) -> dict[str, Any]:
        # The IoT Hub link's shape (connected, connects, disconnects, the sender's counts), so a
        # status reader need not know which link is in use; `link` says which.
        return {"link": "mqtt", **self.output.stats(), **(self.sender.stats() if self.sender else {})}

    def retune(self, config: AppConfig) -> None:
        """A new upstream section: the results mode, the outbox's limits, the retry interval."""
        self.output.retry_max_s = config.upstream.connection_retry_interval_s
        if self.iot_sink is not None:
            self.iot_sink.set_reducer(reducer_for(config))
        if self.outbox is not None:
            self.outbox.set_limits(outbox_limits(config))

    def outbox_counts(self) -> dict[str, Any]:
        return self.outbox.counts() if self.outbox is not None else {}

    def close(self, deadline: float) -> None:
        def left(at_most: float) -> float:
            return max(0.0, min(at_most, deadline - time.monotonic()))

        if self.iot_sink is not None:
            self.iot_sink.close(flush_s=left(5.0) * 0.5)
        if self.sender is not None:
            self.sender.stop(join_s=left(self.sender.call_timeout_s + 1))
        if self.outbox is not None:
            self.outbox.close()
        self.output.close()
