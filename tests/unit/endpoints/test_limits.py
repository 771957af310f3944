"""The HTTP endpoints under attack, over real sockets: decompression bombs, lying Content-Length,
slow and idle clients, viewers that never read, a flood of /score requests."""

from __future__ import annotations

import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from edgevision.endpoints.guard import LOOPBACK_RESERVE
from edgevision.endpoints.http import MAX_SCORE_BYTES, HttpServer
from tests.support.control import StandInControl
from tests.support.waits import wait_for
from tests.unit.endpoints.test_http import TOKEN, _frame, as_json, request, serve


@pytest.fixture
def control() -> StandInControl:
    return StandInControl()


@pytest.fixture
def server(control: StandInControl) -> Iterator[HttpServer]:
    running = serve(control, max_connections=4, request_timeout_s=1.0, score_queue=1)
    yield running
    running.stop()


def _raw(server: HttpServer, data: bytes, timeout: float = 10) -> bytes:
    """Send bytes as they are; the answer, up to the end of its headers (or the close)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as client:
        try:
            client.sendall(data)
        except OSError:
            pass  # answered and closed before the rest was taken: what is read below says so
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := client.recv(65536)):
            answer += chunk
        return answer


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def _jpeg_declaring(width: int, height: int) -> bytes:
    """A tiny real JPEG whose frame header is rewritten to claim a huge size."""
    jpeg = bytearray(cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    sof = jpeg.index(b"\xff\xc0")
    struct.pack_into(">HH", jpeg, sof + 5, height, width)
    return bytes(jpeg)


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4)  # a few rows: the header is what counts
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_from_their_header(server: HttpServer, control: StandInControl) -> None:
    for bomb in (_jpeg_declaring(30000, 30000), _png_declaring(30000, 30000), _jpeg_declaring(65000, 65000)):
        status, body = as_json(server, "POST", "/score", bomb)
        assert status == 413, body
        assert "pixels" in body["error"] and "cv2" not in body["error"] and "error:" not in body["error"]
    assert control.scored == []
    # Within the limit, the same kinds of image are scored.
    ok = cv2.imencode(".png", np.zeros((30, 40, 3), np.uint8))[1].tobytes()
    assert as_json(server, "POST", "/score", ok)[0] == 200


def test_only_jpeg_and_png_are_decoded(server: HttpServer, control: StandInControl) -> None:
    for kind in (".bmp", ".tiff", ".webp"):
        other = cv2.imencode(kind, np.zeros((30, 40, 3), np.uint8))[1].tobytes()
        assert as_json(server, "POST", "/score", other)[0] == 415
    assert as_json(server, "POST", "/score", b"\xff\xd8\xff garbage")[0] == 415
    assert as_json(server, "POST", "/score", b"")[0] == 400
    assert control.scored == []


ENDLESS = b"x" * 65536


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ("Content-Length: -1\r\n", ENDLESS, 400),
        ("Content-Length: -5\r\n", ENDLESS, 400),
        ("Content-Length: ten\r\n", ENDLESS, 400),
        ("", b"", 411),  # no length, no body (what follows would be the next request)
        ("Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n" * 5000, 411),
        (f"Content-Length: {MAX_SCORE_BYTES + 1}\r\n", ENDLESS, 413),
        ("Content-Length: 10\r\nContent-Encoding: gzip\r\n", b"0123456789", 415),
    ],
)
def test_a_lying_or_missing_length_is_never_read(server: HttpServer, headers: str, body: bytes, expected: int) -> None:
    head = f"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n{headers}\r\n".encode()
    # The answer comes without the body being read (it may be far longer than what is sent).
    assert _status(_raw(server, head + body)) == expected


def test_a_body_shorter_than_its_length_times_out(server: HttpServer) -> None:
    head = f"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n"
    started = time.monotonic()
    assert _status(_raw(server, head.encode() + b"0123456789")) == 408
    assert time.monotonic() - started < 5


def test_idle_connections_give_way_and_expire(control: StandInControl) -> None:
    """Connections that send nothing fill the cap and the loopback reserve (the HEALTHCHECK's
    own): once they have waited a second, a real request still gets in, the oldest idle one
    making room; the rest expire. A burst of new ones finds no room and is told so (503)."""
    server = serve(control, max_connections=4, request_timeout_s=4.0, max_connections_per_client=64)
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4 + LOOPBACK_RESERVE)]
    try:
        time.sleep(0.2)
        refused = _raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(refused) == 503 and server.admission.evicted == 0  # too young to give way
        time.sleep(1.0)
        assert as_json(server, "GET", "/healthz")[0] == 200
        assert server.admission.evicted == 1
        # None of the others sent a request within request_timeout_s: the server drops them.
        for client in idle:
            client.settimeout(8)
            assert client.recv(100) == b""
        assert server.admission.expired + server.admission.evicted == len(idle)
    finally:
        for client in idle:
            client.close()
        server.stop()


def test_connections_with_requests_under_way_are_capped_per_client(control: StandInControl) -> None:
    running = serve(control, max_connections=64, max_connections_per_client=3, score_share=1.0)
    control.score_hold = threading.Event()  # scoring answers only once released
    answers: list[int] = []
    try:
        posts = [_post_in_background(running, answers) for _ in range(3)]
        wait_for(lambda: running.gate is not None and running.gate._waiting == 2, 5, "three scores under way")
        refused = _raw(running, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(refused) == 503 and b"too many connections" in refused
        control.score_hold.set()
        for post in posts:
            post.join(10)
        assert answers == [200, 200, 200]
    finally:
        control.score_hold.set()
        running.stop()


def test_a_slow_client_cannot_trickle_its_headers_forever(server: HttpServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        started = time.monotonic()
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            try:
                client.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.05)
            if time.monotonic() - started > 4:
                break
        if not closed:
            client.settimeout(5)
            assert client.recv(100) == b""
        assert time.monotonic() - started < 5


def test_a_viewer_that_never_reads_is_let_go(control: StandInControl) -> None:
    running = serve(control, preview_viewers=1)
    running.previews.write_timeout_s = 0.5
    big = [_frame(seq, size=600) for seq in range(1, 400)]
    control.frames["front"] = big
    try:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", running.port))
        stalled.sendall(
            f"GET /preview/front.mjpg HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
        )
        wait_for(lambda: running.previews.viewers == 1, 5, "the stalled viewer")
        # It reads nothing; once its link is full the server gives its slot to the next viewer.
        wait_for(lambda: running.previews.viewers == 0, 15, "the stalled viewer to be let go", poll_s=0.1)
        assert running.previews.dropped_slow == 1
        control.frames["front"] = [_frame(1)]
        status, _ = request(running, "GET", "/preview/back.mjpg")
        assert status == 404  # the slot is free again; an unknown camera says so
        stalled.close()
    finally:
        running.stop()


def _post_in_background(server: HttpServer, answers: list[int]) -> threading.Thread:
    png = cv2.imencode(".png", np.zeros((30, 40, 3), np.uint8))[1].tobytes()
    thread = threading.Thread(target=lambda: answers.append(request(server, "POST", "/score", png)[0]))
    thread.start()
    return thread


def test_score_requests_beyond_the_queue_get_429(control: StandInControl) -> None:
    running = serve(control, score_queue=1, score_share=1.0, request_timeout_s=8)
    control.score_hold = threading.Event()
    answers: list[int] = []
    try:
        first = _post_in_background(running, answers)
        wait_for(lambda: running.gate is not None and running.gate._turn.locked(), 5, "the first score to run")
        assert running.gate._waiting == 0  # the one scoring holds no place in the queue
        second = _post_in_background(running, answers)
        wait_for(lambda: running.gate._waiting == 1, 5, "the second score to queue")
        png = cv2.imencode(".png", np.zeros((30, 40, 3), np.uint8))[1].tobytes()
        status, body = as_json(running, "POST", "/score", png)
        assert status == 429 and "busy" in body["error"] and running.gate.refused == 1
        control.score_hold.set()
        first.join(10)
        second.join(10)
        assert sorted(answers) == [200, 200]
    finally:
        running.stop()


def test_a_queued_score_is_not_kept_past_its_deadline(control: StandInControl) -> None:
    """After a long scoring, the share keeps the scorer idle for a while; a request that would
    wait past its deadline is told to come back instead of hanging."""
    running = serve(control, score_queue=2, score_share=0.05, request_timeout_s=2)
    control.score_hold = threading.Event()
    answers: list[int] = []
    try:
        first = _post_in_background(running, answers)
        wait_for(lambda: running.gate is not None and running.gate._turn.locked(), 5, "the first score to run")
        time.sleep(0.5)
        control.score_hold.set()  # it took 0.5 s: the next may start ~10 s later
        first.join(10)
        started = time.monotonic()
        second = _post_in_background(running, answers)
        second.join(10)
        assert answers == [200, 429] and time.monotonic() - started < 5
    finally:
        running.stop()
