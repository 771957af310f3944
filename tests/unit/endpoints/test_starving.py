"""The endpoints cannot starve the cameras: a body held back frees the scoring gate, /metrics is
rendered at most once a second however many scrape it, an address that keeps calling without the
token is refused at connect, the configured backlog is the one listened with, and a header that
is not UTF-8 is a 401 (mechanisms; the cameras' fps under each attack: benchmarks/score_load.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from edgevision.cli import health
from edgevision.config.model import HttpConfig
from edgevision.endpoints.guard import STRIKES
from edgevision.endpoints.http import HttpServer
from tests.support.control import StandInControl
from tests.unit.endpoints.test_http import TOKEN, request, serve
from tests.unit.endpoints.test_limits import _raw, _status


def _non_loopback_address() -> str | None:
    """This machine's own address on its network (an edge network's client is not loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("203.0.113.1", 1))  # no packet is sent: only the route is asked
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_clients_holding_back_their_bodies_do_not_block_scoring() -> None:
    control = StandInControl()
    running = serve(control, score_queue=4, score_share=1.0, request_timeout_s=8)
    holders = []
    try:
        head = f"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 500000\r\n\r\n"
        for _ in range(4):
            client = socket.create_connection(("127.0.0.1", running.port), timeout=10)
            client.sendall(head.encode() + b"\xff\xd8")  # a declared body that never comes
            holders.append(client)
        time.sleep(0.3)
        png = cv2.imencode(".png", np.zeros((30, 40, 3), np.uint8))[1].tobytes()
        started = time.monotonic()
        status, _ = request(running, "POST", "/score", png)
        assert status == 200 and time.monotonic() - started < 2
    finally:
        for client in holders:
            client.close()
        running.stop()


def test_metrics_are_rendered_at_most_once_a_second_for_any_number_of_scrapers() -> None:
    # 30 scrapers at once from one address: more than a client may hold by default.
    running = serve(StandInControl(), max_connections_per_client=64)
    answers: list[int] = []
    try:
        scrapers = [
            threading.Thread(target=lambda: answers.append(request(running, "GET", "/metrics", headers={})[0]))
            for _ in range(30)
        ]
        for scraper in scrapers:
            scraper.start()
        for scraper in scrapers:
            scraper.join(10)
        assert answers == [200] * 30 and running.renders <= 2
        time.sleep(1.1)
        assert request(running, "GET", "/metrics", headers={})[0] == 200 and running.renders <= 3
    finally:
        running.stop()


def test_an_address_calling_without_the_token_is_refused_before_any_work() -> None:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("no network address here but loopback")
    running = serve(StandInControl(), bind="0.0.0.0")
    try:
        for _ in range(STRIKES):
            with socket.create_connection((address, running.port), timeout=5) as client:
                client.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
                assert client.recv(100).startswith(b"HTTP/1.1 401")
        with socket.create_connection((address, running.port), timeout=5) as client:
            client.sendall(f"GET /status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
            assert b"too many connections" in client.recv(200)
        assert running.admission.penalised == 1
        # Loopback (the container itself: its HEALTHCHECK) is never held back.
        assert request(running, "GET", "/status")[0] == 200
    finally:
        running.stop()


def test_the_configured_backlog_is_the_one_listened_with() -> None:
    running = serve(StandInControl(), backlog=37)
    try:
        listening = subprocess.run(
            ["ss", "-ltnH", f"sport = :{running.port}"], capture_output=True, text=True, check=True
        ).stdout.split()
        assert listening[2] == "37", listening  # Send-Q of a listening socket: its backlog
    finally:
        running.stop()


def test_an_authorization_header_that_is_not_utf8_is_a_401() -> None:
    running = serve(StandInControl())
    try:
        answer = _raw(running, b"GET /status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\x80token\r\n\r\n")
        assert _status(answer) == 401
    finally:
        running.stop()


def test_the_healthcheck_has_a_channel_no_network_client_can_crowd_out(tmp_path) -> None:
    """Loopback attackers (a process in the container) hold every TCP connection the module lets
    in; `edgevision health`, the image's HEALTHCHECK, asks over the state folder's unix socket."""
    probe = tmp_path / "http.sock"
    control = StandInControl()
    config = HttpConfig.model_validate({"port": 0, "max_connections": 2, "max_connections_per_client": 2})
    running = HttpServer(control, config, TOKEN, probe_socket=probe)
    running.start()
    held = []
    try:
        assert probe.stat().st_mode & 0o777 == 0o600
        for _ in range(2 + 8):
            held.append(socket.create_connection(("127.0.0.1", running.port)))
        assert _status(_raw(running, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")) == 503
        done = subprocess.run(
            [sys.executable, "-m", "edgevision", "health", "--socket", str(probe)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        # Only the probes are open there: the rest still needs the token.
        assert health.ask("/status", probe, 0, 4) == 401
        control.started = False
        done = subprocess.run(
            [sys.executable, "-m", "edgevision", "health", "--socket", str(probe)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 1 and "/healthz answered 503" in done.stderr
    finally:
        for client in held:
            client.close()
        running.stop()
    assert not probe.exists()
