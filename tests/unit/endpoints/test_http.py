"""The HTTP endpoints over real sockets on 127.0.0.1, against a stand-in for the control interface."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from edgevision.config.model import HttpConfig
from edgevision.control import PreviewImage
from edgevision.endpoints.http import HttpServer
from edgevision.endpoints.preview import PREVIEW_BOUNDARY
from tests.support.control import StandInControl

TOKEN = "t0ken-for-the-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def control() -> StandInControl:
    return StandInControl()


def serve(control: StandInControl, **settings: object) -> HttpServer:
    config = HttpConfig.model_validate({"port": 0, "preview_fps": 30, "preview_viewers": 1, **settings})
    running = HttpServer(control, config, TOKEN)
    running.start()
    return running


@pytest.fixture
def server(control: StandInControl) -> Iterator[HttpServer]:
    running = serve(control)
    yield running
    running.stop()


def request(
    server: HttpServer, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=AUTH if headers is None else headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def as_json(server: HttpServer, method: str, path: str, body: bytes | None = None, **kw: dict) -> tuple[int, dict]:
    status, data = request(server, method, path, body, **kw)
    return status, json.loads(data)


def test_health_and_readiness_follow_the_control(server: HttpServer, control: StandInControl) -> None:
    assert as_json(server, "GET", "/healthz") == (200, {"status": "ok"})
    assert as_json(server, "GET", "/readyz") == (200, {"ready": True})
    control.ready = False
    assert as_json(server, "GET", "/readyz")[0] == 503
    control.started = False
    assert as_json(server, "GET", "/healthz")[0] == 503
    assert as_json(server, "GET", "/status") == (503, {"error": "starting"})
    # HEAD answers as GET does, without the body.
    assert request(server, "HEAD", "/healthz") == (503, b"")


def test_a_client_that_hangs_up_early_leaves_no_traceback(
    server: HttpServer, control: StandInControl, capfd: pytest.CaptureFixture[str]
) -> None:
    """A health probe past its timeout closes the socket before the answer."""
    control.hold = threading.Event()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        # Reset, not a polite close: the server's write then fails as it does in the field.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(0.2)
    control.hold.set()
    control.hold = None
    assert as_json(server, "GET", "/healthz") == (200, {"status": "ok"})
    time.sleep(0.2)
    assert "Traceback" not in capfd.readouterr().err


def test_status_and_unknown_paths(server: HttpServer) -> None:
    assert as_json(server, "GET", "/status") == (200, {"cameras": {"front": {"state": "streaming"}}})
    status, body = as_json(server, "GET", "/nowhere")
    assert status == 404 and "/status" in body["paths"]
    assert as_json(server, "GET", "/score")[0] == 405
    assert as_json(server, "POST", "/status", b"x")[0] == 405


def test_metrics_in_prometheus_text(server: HttpServer) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    status, data = request(server, "GET", "/metrics", headers={})  # open to collectors by default
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(data.decode())}
    frames = {(s.labels["camera"], s.labels["state"]): s.value for s in families["edgevision_frames"].samples}
    assert frames[("front", "inferred")] == 9
    buckets = {s.labels["le"]: s.value for s in families["edgevision_latency_ms"].samples if s.name.endswith("_bucket")}
    assert buckets == {"10": 3, "25": 9, "+Inf": 9}
    (twin,) = families["edgevision_twin_synced"].samples
    assert twin.labels == {"state": "unreachable"} and twin.value == 0


def test_every_path_but_the_probes_needs_the_token(control: StandInControl) -> None:
    running = serve(control, metrics_auth=True)
    try:
        basic = base64.b64encode(f"viewer:{TOKEN}".encode()).decode()
        for path in ("/status", "/metrics", "/preview/front.mjpg", "/nowhere"):
            for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": "Bearer"}):
                status, body = request(running, "GET", path, headers=headers)
                assert status == 401, (path, headers)
                assert TOKEN.encode() not in body
        assert request(running, "POST", "/score", b"x", headers={})[0] == 401
        assert request(running, "GET", "/status", headers={"Authorization": f"Basic {basic}"})[0] == 200
        assert request(running, "GET", "/metrics")[0] == 200
        for path in ("/healthz", "/readyz"):
            assert request(running, "GET", path, headers={})[0] == 200
        # A new token takes effect at once; the old one stops working.
        running.set_token("another-token-0123456789", metrics_auth=True)
        assert request(running, "GET", "/status")[0] == 401
        assert (
            request(running, "GET", "/status", headers={"Authorization": "Bearer another-token-0123456789"})[0] == 200
        )
    finally:
        running.stop()
    assert control.scored == []


def _frame(seq: int, size: int = 8) -> PreviewImage:
    noise = np.random.default_rng(seq).integers(0, 255, (size, size, 3), dtype=np.uint8)
    jpeg = cv2.imencode(".jpg", noise)[1].tobytes()
    return PreviewImage("front", seq, 0.0, size, size, seq, jpeg)


def test_preview_streams_new_frames_and_bounds_viewers(server: HttpServer, control: StandInControl) -> None:
    control.frames["front"] = [_frame(1), _frame(2), _frame(3)]
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/preview/front.mjpg", headers=AUTH)
    response = connection.getresponse()
    assert response.status == 200 and PREVIEW_BOUNDARY in response.getheader("Content-Type")
    data = b""
    while data.count(b"X-Frame-Seq:") < 3:
        data += response.read1(4096)
    # Each new frame once: the stand-in repeats frame 3, which is not sent again.
    assert [int(line.split(b":")[1]) for line in data.split(b"\r\n") if line.startswith(b"X-Frame-Seq")] == [1, 2, 3]
    # One viewer allowed: a second is refused while the first watches.
    assert as_json(server, "GET", "/preview/front.mjpg")[0] == 503
    connection.close()
    status, body = as_json(server, "GET", "/preview/back.mjpg")
    assert status == 404 and body["cameras"] == ["front"]
