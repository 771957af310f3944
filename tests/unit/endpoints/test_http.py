"""The HTTP endpoints over real sockets on 127.0.0.1, against a stand-in for the control interface."""

from __future__ import annotations

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

from edgevision.control import PreviewImage
from edgevision.endpoints.http import MAX_SCORE_BYTES, PREVIEW_BOUNDARY, HttpServer
from tests.support.control import StandInControl


@pytest.fixture
def control() -> StandInControl:
    return StandInControl()


@pytest.fixture
def server(control: StandInControl) -> Iterator[HttpServer]:
    running = HttpServer(control, "127.0.0.1", 0, preview_fps=50, preview_viewers=1)
    running.start()
    yield running
    running.stop()


def _request(server: HttpServer, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _json(server: HttpServer, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    status, data = _request(server, method, path, body)
    return status, json.loads(data)


def test_health_and_readiness_follow_the_control(server: HttpServer, control: StandInControl) -> None:
    assert _json(server, "GET", "/healthz") == (200, {"status": "ok"})
    assert _json(server, "GET", "/readyz") == (200, {"ready": True})
    control.ready = False
    assert _json(server, "GET", "/readyz")[0] == 503
    control.started = False
    assert _json(server, "GET", "/healthz")[0] == 503
    assert _json(server, "GET", "/status") == (503, {"error": "starting"})


def test_a_client_that_hangs_up_early_leaves_no_traceback(
    server: HttpServer, control: StandInControl, capfd: pytest.CaptureFixture[str]
) -> None:
    """A health probe past its timeout closes the socket before the answer; socketserver's
    default is a traceback on stderr for each (seen in the container's log)."""
    control.hold = threading.Event()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        # Reset, not a polite close: the server's write then fails as it does in the field.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(0.2)
    control.hold.set()
    control.hold = None
    assert _json(server, "GET", "/healthz") == (200, {"status": "ok"})
    time.sleep(0.2)
    assert "Traceback" not in capfd.readouterr().err


def test_status_and_unknown_paths(server: HttpServer) -> None:
    assert _json(server, "GET", "/status") == (200, {"cameras": {"front": {"state": "streaming"}}})
    status, body = _json(server, "GET", "/nowhere")
    assert status == 404 and "/status" in body["paths"]
    assert _json(server, "GET", "/score")[0] == 405
    assert _json(server, "POST", "/status", b"x")[0] == 405


def test_metrics_in_prometheus_text(server: HttpServer) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    status, data = _request(server, "GET", "/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(data.decode())}
    frames = {(s.labels["camera"], s.labels["state"]): s.value for s in families["edgevision_frames"].samples}
    assert frames[("front", "inferred")] == 9
    buckets = {s.labels["le"]: s.value for s in families["edgevision_latency_ms"].samples if s.name.endswith("_bucket")}
    assert buckets == {"10": 3, "25": 9, "+Inf": 9}
    (twin,) = families["edgevision_twin_synced"].samples
    assert twin.labels == {"state": "unreachable"} and twin.value == 0


def test_score_decodes_the_image_and_asks_the_control(server: HttpServer, control: StandInControl) -> None:
    image = np.full((30, 40, 3), 200, np.uint8)
    png = cv2.imencode(".png", image)[1].tobytes()
    assert _json(server, "POST", "/score", png) == (200, {"width": 40, "height": 30, "detections": []})
    np.testing.assert_array_equal(control.scored[0], image)
    assert _json(server, "POST", "/score", b"not an image")[0] == 400
    assert _json(server, "POST", "/score", b"")[0] == 400
    control.started = False
    assert _json(server, "POST", "/score", png)[0] == 503


def test_an_image_over_the_limit_is_refused_before_it_is_read(server: HttpServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest("POST", "/score")
    # Far over the limit: refused without reading (up to 4x the limit is read and discarded).
    connection.putheader("Content-Length", str(4 * MAX_SCORE_BYTES + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    connection.close()


def _frame(seq: int) -> PreviewImage:
    jpeg = cv2.imencode(".jpg", np.full((8, 8, 3), seq, np.uint8))[1].tobytes()
    return PreviewImage("front", seq, 0.0, 8, 8, seq, jpeg)


def test_preview_streams_new_frames_and_bounds_viewers(server: HttpServer, control: StandInControl) -> None:
    control.frames["front"] = [_frame(1), _frame(2), _frame(3)]
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/preview/front.mjpg")
    response = connection.getresponse()
    assert response.status == 200 and PREVIEW_BOUNDARY in response.getheader("Content-Type")
    data = b""
    while data.count(b"X-Frame-Seq:") < 3:
        data += response.read1(4096)
    # Each new frame once: the stand-in repeats frame 3, which is not sent again.
    assert [int(line.split(b":")[1]) for line in data.split(b"\r\n") if line.startswith(b"X-Frame-Seq")] == [1, 2, 3]
    # One viewer allowed: a second is refused while the first watches.
    assert _json(server, "GET", "/preview/front.mjpg")[0] == 503
    connection.close()
    status, body = _json(server, "GET", "/preview/back.mjpg")
    assert status == 404 and body["cameras"] == ["front"]
