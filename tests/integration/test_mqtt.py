"""What only the MQTT v5 link does (what both links promise runs over each in test_upstream.py):
commands answered on their request's response topic, with its correlation data, and hostile
requests refused; Kubernetes service-account-token authentication (the CONNECT carries
`K8S-SAT` and the token, read again at each connection); a missing token file and a broker that
refuses the CONNECT said clearly."""

from __future__ import annotations

import json
import socket
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
from tests.support.links import MqttLink, results
from tests.support.mqtt_subscriber import Subscriber
from tests.support.waits import wait_for


def _listener() -> tuple[socket.socket, int]:
    """A fake broker's listening socket on loopback, and its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    return listener, listener.getsockname()[1]


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
    listener, port = _listener()
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
        wait_for(lambda: output.last_error is not None and "sat_token_file" in output.last_error, 10, "the error")
        with pytest.raises(ConnectionError, match="sat_token_file"):
            output.send_message_to_output(None, "results")
    finally:
        output.close()
    assert any("sat_token_file" in r.getMessage() and "No such file" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_commands_are_answered_on_their_response_topic_with_their_correlation(
    broker, pki, model_path: Path, tmp_path: Path
) -> None:
    answers = Subscriber(pki.ca_cert, "#")
    link = MqttLink(broker, pki, model_path.parent, tmp_path)
    module = link.start({"cameras": {"yard": {"uri": "synthetic:64x48@5"}}})
    requester = paho.Client(client_id="requester", protocol=paho.MQTTv5)
    requester.tls_set(ca_certs=str(pki.ca_cert))
    requester.connect("localhost", PORT)
    requester.loop_start()

    def ask(method: str, payload: bytes, correlation: bytes) -> tuple[dict[str, Any], dict[str, str]]:
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = f"replies/{correlation.decode()}"
        properties.CorrelationData = correlation
        requester.publish(f"{MqttLink.COMMANDS}/{method}", payload, qos=1, properties=properties)
        wait_for(lambda: answers.on(properties.ResponseTopic), 30, f"the answer to {method}")
        (answer,) = answers.on(properties.ResponseTopic)
        return answer.body, answer.properties

    try:
        # Its results arrive: it is connected (and subscribed to its commands when it connected).
        wait_for(lambda: answers.of("result"), 60, "the module's first result")
        time.sleep(0.5)
        body, props = ask("getStatus", b"", b"c1")
        assert body["status"] == 200 and props["status"] == "200" and props["correlation"] == "c1"
        assert "yard" in json.dumps(body["payload"]["cameras"]) and "replica" in body["payload"]
        body, _ = ask("applyConfig", json.dumps({"cameras": {"yard": {"target_fps": -3}}}).encode(), b"c2")
        assert body["status"] == 400 and any("target_fps" in e for e in body["payload"]["errors"])
        body, _ = ask("applyConfig", b"[" * 100_000, b"c3")
        assert body["status"] == 400
        body, props = ask("getStatus", b"x" * (300 * 1024), b"c4")
        assert body["status"] == 413 and props["correlation"] == "c4"
    finally:
        requester.disconnect()
        requester.loop_stop()
        answers.close()
        code = module.stop()
        link.close()
    assert code == 0, module.stderr


def test_a_broker_that_refuses_the_connect_is_said_and_nothing_is_sent(tmp_path: Path, caplog) -> None:
    """A CONNACK with reason 0x87 (not authorized: a wrong or expired token): the reason is
    logged once, sends fail (the outbox keeps the messages), and the client tries again."""
    token = tmp_path / "token"
    token.write_text("expired.token.value")
    listener, port = _listener()
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
        wait_for(lambda: len(attempts) >= 2, 20, "a second attempt after the refusal")
        assert output.last_error is not None and "refused" in output.last_error
        with pytest.raises(ConnectionError, match="refused"):
            output.send_message_to_output(None, "results")
    finally:
        output.close()
        listener.close()
    said = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(said) == 1, said


@pytest.mark.slow
def test_commands_answered_while_results_flow_share_one_writer(broker, pki, model_path: Path, tmp_path: Path) -> None:
    """Results at 30 a second while 40 commands (half of them 200 KB) are answered: the sender,
    the command answers and the acknowledgements all write to one TLS socket. paho 1.6.1 writes
    a publish from the thread that makes it unless told otherwise; concurrent writes corrupted
    the stream (the broker dropped the connection, answers were lost). All answered, one
    connection."""
    link = MqttLink(broker, pki, model_path.parent, tmp_path)
    module = link.start(
        {
            "cameras": {"syn": {"uri": "synthetic:320x240@30", "detection": {"mode": "every_frame"}}},
            "upstream": {"results_mode": "every_frame"},
            "metrics_interval_s": 0.2,
        }
    )
    try:
        wait_for(lambda: len(results(link)) > 5, 60, "results flowing")
        for index in range(40):
            status, _ = link.invoke("getStatus", {"padding": "y" * 200_000} if index % 2 else None, timeout=15)
            assert status == 200
        status, document = link.invoke("getStatus")
        assert document["upstream"]["connects"] == 1 and document["upstream"]["disconnects"] == 0
    finally:
        code = module.stop()
        link.close()
    assert code == 0, module.stderr
