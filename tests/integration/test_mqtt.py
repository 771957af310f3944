"""Upstream over MQTT v5 with a real broker (mosquitto, TLS, the tests' CA): results, events and
metrics on the topics configured, with their properties; a broker stopped and started again
loses nothing (the outbox holds it); and with Kubernetes service-account-token authentication
the CONNECT carries `K8S-SAT` and the token, read again at each connection."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgevision.config.model import MqttConfig
from edgevision.upstream.mqtt import SAT_METHOD, MqttOutput
from tests.support.edgehub.broker import PORT
from tests.support.mqtt_subscriber import Subscriber


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _module(tmp_path: Path, pki, model_path: Path, frames: int, target_fps: float) -> subprocess.Popen[str]:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "cameras": {
                    "yard": {
                        "uri": f"synthetic:64x48@{target_fps}",
                        "max_frames": frames,
                        "detection": {"mode": "every_frame"},
                    }
                },
                "upstream": {"results_mode": "every_frame"},
                "mqtt": {"enabled": True, "host": "localhost", "port": PORT, "ca_file": str(pki.ca_cert)},
                "metrics_interval_s": 1,
                "http": {"enabled": False},
                "sink": {"kind": "jsonl", "path": str(tmp_path / "local.jsonl")},
            }
        )
    )
    env = {
        **os.environ,
        "EDGEVISION_MODEL_DIR": str(model_path.parent),
        "EDGEVISION_STATE_DIR": str(tmp_path / "state"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "edgevision", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_results_events_and_metrics_reach_their_topics_and_an_outage_loses_nothing(
    broker, pki, model_path: Path, tmp_path: Path
) -> None:
    subscriber = Subscriber(pki.ca_cert, "edgevision/#")
    frames = 60
    module = _module(tmp_path, pki, model_path, frames, 10)
    try:
        _wait(lambda: len(subscriber.of("result")) >= 5, 60, "the first results")
        # The broker goes away for a while and comes back: the module keeps its results meanwhile.
        broker.stop()
        time.sleep(2.5)
        broker.start()
        _, stderr = module.communicate(timeout=120)
        assert module.returncode == 0, stderr
        # Every result, each at least once (QoS 1), none lost to the outage.
        _wait(lambda: {m[1]["seq"] for m in subscriber.of("result")} == set(range(frames)), 30, "every result")
        _wait(lambda: any(m[1].get("event") == "stopped" for m in subscriber.of("event")), 10, "the stopped event")
    finally:
        if module.poll() is None:
            module.kill()
        subscriber.close()
    topic, body, props = subscriber.of("result")[-1]
    assert topic == "edgevision/yard/results" and body["camera"] == "yard"
    assert props["content_type"] == "application/json" and props["type"] == "result" and props["camera"] == "yard"
    assert props["message_id"].endswith(f":yard:{body['seq']}")
    assert {m[0] for m in subscriber.of("metrics")} == {"edgevision/metrics"}
    # An event of the module itself (no camera) drops the topic's camera level.
    assert {m[0] for m in subscriber.of("event") if m[1].get("event") == "stopped"} == {"edgevision/events"}


def _connect_packet(listener: socket.socket) -> bytes:
    """The first MQTT packet a client sends to `listener` (its CONNECT), whole."""
    connection, _ = listener.accept()
    with connection:
        connection.settimeout(10)
        header = connection.recv(1)
        length, multiplier = 0, 1
        while True:
            byte = connection.recv(1)[0]
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            if not byte & 0x80:
                break
        body = b""
        while len(body) < length:
            body += connection.recv(length - len(body))
        return header + body


def test_service_account_token_authentication_goes_in_the_connect_and_is_read_again(tmp_path: Path) -> None:
    """Azure IoT Operations' broker: `K8S-SAT` and the token in the CONNECT's properties. paho
    1.6.1 sends no AUTH packets, so a rotated token is sent by connecting again: each CONNECT
    carries the file's content of that moment."""
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.first.signature\n")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2)
    port = listener.getsockname()[1]
    config = MqttConfig(enabled=True, host="127.0.0.1", port=port, tls=False, sat_token_file=token, sat_refresh_s=10)
    output = MqttOutput(config, "edgevision-0")
    output.start()
    try:
        first = _connect_packet(listener)
        token.write_text("eyJhbGciOiJSUzI1NiJ9.rotated.signature\n")
        second = _connect_packet(listener)  # the fake broker sent no CONNACK: the client tries again
    finally:
        output.close()
        listener.close()
    for packet, expected in ((first, b"first"), (second, b"rotated")):
        assert packet[0] >> 4 == PacketTypes.CONNECT
        assert b"MQTT\x05" in packet  # protocol name and level 5
        assert SAT_METHOD.encode() in packet and expected in packet
        assert b"edgevision-0" in packet


def test_a_missing_token_file_is_said_clearly_and_retried(tmp_path: Path, caplog) -> None:
    config = MqttConfig(enabled=True, host="127.0.0.1", port=1, tls=False, sat_token_file=tmp_path / "absent")
    output = MqttOutput(config, "edgevision-0")
    output.start()
    try:
        _wait(lambda: output.last_error is not None and "sat_token_file" in output.last_error, 10, "the error")
        with pytest.raises(ConnectionError, match="sat_token_file"):
            output.send_message_to_output(None, "results")
    finally:
        output.close()
    assert any("sat_token_file" in r.getMessage() and "No such file" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_commands_are_answered_on_their_response_topic_with_their_correlation(
    broker, pki, model_path: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "cameras": {"yard": {"uri": "synthetic:64x48@5"}},
                "mqtt": {
                    "enabled": True,
                    "host": "localhost",
                    "port": PORT,
                    "ca_file": str(pki.ca_cert),
                    "commands": "edgevision/edgevision-0/commands",
                },
                "http": {"enabled": False},
                "sink": {"kind": "jsonl", "path": str(tmp_path / "local.jsonl")},
            }
        )
    )
    env = {**os.environ, "EDGEVISION_MODEL_DIR": str(model_path.parent), "EDGEVISION_STATE_DIR": str(tmp_path / "s")}
    module = subprocess.Popen(
        [sys.executable, "-m", "edgevision", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    answers = Subscriber(pki.ca_cert, "#")
    requester = paho.Client(client_id="requester", protocol=paho.MQTTv5)
    requester.tls_set(ca_certs=str(pki.ca_cert))
    requester.connect("localhost", PORT)
    requester.loop_start()

    def ask(method: str, payload: bytes, correlation: bytes) -> tuple[dict[str, Any], dict[str, str]]:
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = f"replies/{correlation.decode()}"
        properties.CorrelationData = correlation
        requester.publish(f"edgevision/edgevision-0/commands/{method}", payload, qos=1, properties=properties)
        _wait(lambda: any(m[0] == properties.ResponseTopic for m in answers.messages), 30, f"the answer to {method}")
        _, body, props = next(m for m in answers.messages if m[0] == properties.ResponseTopic)
        return body, props

    try:
        # Its results arrive: it is connected (and subscribed to its commands when it connected).
        _wait(lambda: answers.of("result"), 60, "the module's first result")
        time.sleep(0.5)
        body, props = ask("getStatus", b"", b"c1")
        assert body["status"] == 200 and props["status"] == "200"
        assert "yard" in json.dumps(body["payload"]["cameras"]) and "replica" in body["payload"]
        body, _ = ask("applyConfig", json.dumps({"cameras": {"yard": {"target_fps": -3}}}).encode(), b"c2")
        assert body["status"] == 400 and any("target_fps" in e for e in body["payload"]["errors"])
        body, _ = ask("applyConfig", b"[" * 100_000, b"c3")
        assert body["status"] == 400
        body, _ = ask("getStatus", b"x" * (300 * 1024), b"c4")
        assert body["status"] == 413
    finally:
        requester.disconnect()
        requester.loop_stop()
        answers.close()
        module.terminate()
        _, stderr = module.communicate(timeout=30)
    assert module.returncode == 0, stderr


@pytest.mark.slow
def test_kill_9_during_a_broker_outage_loses_nothing_the_outbox_held(
    broker, pki, model_path: Path, tmp_path: Path
) -> None:
    """The IoT Hub link's guarantee, over MQTT: results held while the broker is down survive a
    kill -9 and go out, first, when the next run finds the broker."""
    import sqlite3

    subscriber = Subscriber(pki.ca_cert, "edgevision/#")
    first = _module(tmp_path, pki, model_path, 100_000, 20)
    try:
        _wait(lambda: len(subscriber.of("result")) >= 10, 60, "results before the outage")
        broker.stop()
        time.sleep(4)
        first.kill()
        first.wait(10)
        with sqlite3.connect(tmp_path / "state" / "outbox.sqlite") as db:
            pending = [m for (m,) in db.execute("SELECT message_id FROM outbox WHERE output = 'results' ORDER BY id")]
        assert len(pending) >= 30, "the outage should have left results in the outbox"
        run1 = pending[0].split(":")[0]
        broker.start()
        second = _module(tmp_path, pki, model_path, 20, 20)
        try:

            def delivered() -> list[str]:
                return [m[2].get("message_id", "") for m in subscriber.of("result")]

            _wait(lambda: set(pending) <= set(delivered()), 90, "the first run's held results")
            _wait(lambda: any(not mid.startswith(run1) for mid in delivered()), 60, "the second run's own results")
            ids = delivered()
            first_new = next(i for i, mid in enumerate(ids) if not mid.startswith(run1))
            assert set(pending) <= set(ids[:first_new])  # the held ones went out first
            _, stderr = second.communicate(timeout=120)
            assert second.returncode == 0, stderr
        finally:
            if second.poll() is None:
                second.kill()
    finally:
        if first.poll() is None:
            first.kill()
        subscriber.close()


def test_a_broker_that_refuses_the_connect_is_said_and_nothing_is_sent(tmp_path: Path, caplog) -> None:
    """A CONNACK with reason 0x87 (not authorized: a wrong or expired token): the reason is
    logged once, sends fail (the outbox keeps the messages), and the client tries again."""
    token = tmp_path / "token"
    token.write_text("expired.token.value")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    attempts = []

    def refuse() -> None:
        while len(attempts) < 2:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                attempts.append(connection.recv(65536))
                connection.sendall(b"\x20\x03\x00\x87\x00")  # CONNACK v5: not authorized
                time.sleep(0.2)

    server = threading.Thread(target=refuse, daemon=True)
    server.start()
    config = MqttConfig(enabled=True, host="127.0.0.1", port=port, tls=False, sat_token_file=token)
    output = MqttOutput(config, "edgevision-0")
    output.start()
    try:
        _wait(lambda: len(attempts) >= 2, 20, "a second attempt after the refusal")
        assert output.last_error is not None and "refused" in output.last_error
        with pytest.raises(ConnectionError, match="refused"):
            output.send_message_to_output(None, "results")
    finally:
        output.close()
        listener.close()
    said = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(said) == 1, said
