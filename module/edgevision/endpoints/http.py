"""The module's HTTP endpoints: /healthz, /readyz, /status, /metrics (Prometheus),
/preview/<camera>.mjpg and POST /score."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edgevision.control import Control, Probe
from edgevision.endpoints.prometheus import registry_for
from edgevision.errors import NotReady

log = logging.getLogger(__name__)

# POST /score takes one image; anything larger is refused before it is read.
MAX_SCORE_BYTES = 16 * 1024 * 1024
PREVIEW_BOUNDARY = "edgevision-frame"
# Preview frames are for eyes, not analysis: a cap keeps a 4K camera's JPEG from hogging a link.
PREVIEW_MAX_BYTES = 400_000


class HttpServer:
    """Serves on its own threads; a failure here never stops the pipeline."""

    def __init__(
        self, control: Control, bind: str, port: int, preview_fps: float = 5.0, preview_viewers: int = 4
    ) -> None:
        self._control = control
        self.preview_interval_s = 1.0 / preview_fps
        # Each viewer encodes its own JPEGs on its own thread; this bounds what watching can cost.
        self._viewers = threading.BoundedSemaphore(preview_viewers) if preview_viewers else None
        self._closing = threading.Event()
        self._registry = registry_for(control)
        handler = _handler_for(self)
        self._server = _Server((bind, port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info(
            "HTTP endpoints on port %d: /healthz /readyz /status /metrics /preview/<camera>.mjpg /score", self.port
        )

    def stop(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def health(self) -> tuple[int, dict[str, Any]]:
        return _probe(self._control.health())

    def readiness(self) -> tuple[int, dict[str, Any]]:
        return _probe(self._control.readiness())

    def status(self) -> tuple[int, dict[str, Any]]:
        try:
            return 200, self._control.status()
        except NotReady as exc:
            return 503, {"error": str(exc)}

    def metrics(self) -> bytes:
        return generate_latest(self._registry)

    def preview(self, camera: str, write: Callable[[bytes | None], None]) -> tuple[int, dict[str, Any]] | None:
        """Stream annotated frames of one camera as MJPEG parts until the viewer leaves.

        Returns an error reply instead when the stream cannot start; None after streaming.
        Nothing is encoded while nobody watches: the pipeline only keeps its newest frame.
        """
        try:
            cameras = self._control.camera_ids()
        except NotReady as exc:
            return 503, {"error": str(exc)}
        if camera not in cameras:
            return 404, {"error": f"no camera {camera!r}", "cameras": sorted(cameras)}
        if self._viewers is None or not self._viewers.acquire(blocking=False):
            return 503, {"error": "preview viewer limit reached (http.preview_viewers)"}
        try:
            write(None)  # headers
            last_seq = None
            while not self._closing.is_set():
                started = time.monotonic()
                snap = self._control.snapshot(camera, PREVIEW_MAX_BYTES)
                if snap is not None and snap.seq != last_seq:
                    last_seq = snap.seq
                    head = (
                        f"--{PREVIEW_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(snap.jpeg)}\r\n"
                        f"X-Camera: {camera}\r\nX-Frame-Seq: {snap.seq}\r\n\r\n"
                    ).encode()
                    write(head + snap.jpeg + b"\r\n")
                self._closing.wait(max(0.0, self.preview_interval_s - (time.monotonic() - started)))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            log.debug("preview viewer of %s left", camera)
        except (KeyError, NotReady):
            log.debug("preview of %s ended: the camera is gone", camera)
        finally:
            self._viewers.release()
        return None

    def score(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """Detections for one JPEG/PNG, through the running engine (the HTTP extension pattern)."""
        if not body:
            return 400, {"error": "empty body: POST a JPEG or PNG image"}
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            return 400, {"error": "the body is not a decodable image (JPEG or PNG expected)"}
        try:
            return 200, self._control.score(image)
        except NotReady as exc:
            return 503, {"error": str(exc)}


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr for any handler error; a client that hung
        # up early (a health probe past its timeout) is routine, and anything else is logged.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            log.debug("http: client %s went away: %s", client_address[0] if client_address else "?", exc)
        else:
            log.error("http: request failed", exc_info=exc)


def _probe(probe: Probe) -> tuple[int, dict[str, Any]]:
    return (200 if probe.ok else 503), probe.body


def _handler_for(server: HttpServer) -> type[BaseHTTPRequestHandler]:
    routes = {"/healthz": server.health, "/readyz": server.readiness, "/status": server.status}
    paths = sorted([*routes, "/metrics", "/preview/<camera>.mjpg", "/score"])

    class Handler(BaseHTTPRequestHandler):
        server_version = "edgevision"

        def do_GET(self) -> None:  # http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                data = server.metrics()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if path.startswith("/preview/") and path.endswith(".mjpg"):
                self._preview(urllib.parse.unquote(path[len("/preview/") : -len(".mjpg")]))
                return
            route = routes.get(path)
            if route is None:
                self._reply(404 if path != "/score" else 405, {"error": f"no GET {path!r}", "paths": paths})
                return
            try:
                status, body = route()
            except Exception as exc:  # an endpoint error must not reach the pipeline
                log.exception("HTTP %s failed", self.path)
                status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
            self._reply(status, body)

        def do_POST(self) -> None:  # http.server's naming
            if self.path.split("?", 1)[0] != "/score":
                self._reply(
                    405 if self.path in routes or self.path == "/metrics" else 404,
                    {"error": f"no POST {self.path!r}", "paths": paths},
                )
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self._reply(400, {"error": "bad Content-Length"})
                return
            if length > MAX_SCORE_BYTES:
                # Read and discard (up to a cap) so the client gets the answer, not a reset.
                remaining = length if length <= 4 * MAX_SCORE_BYTES else 0
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    remaining -= len(chunk)
                self.close_connection = True
                self._reply(413, {"error": f"image over {MAX_SCORE_BYTES} bytes"})
                return
            try:
                status, body = server.score(self.rfile.read(length))
            except Exception as exc:  # an endpoint error must not reach the pipeline
                log.exception("POST /score failed")
                status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
            self._reply(status, body)

        def _preview(self, camera: str) -> None:
            def write(data: bytes | None) -> None:
                if data is None:
                    self.send_response(200)
                    self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={PREVIEW_BOUNDARY}")
                    self.send_header("Cache-Control", "no-cache, private")
                    self.end_headers()
                else:
                    self.wfile.write(data)
                    self.wfile.flush()

            self.close_connection = True
            try:
                error = server.preview(camera, write)
            except Exception:  # a viewer's failure must not reach the pipeline
                log.exception("preview of %s failed", camera)
                return
            if error is not None:
                self._reply(*error)

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("http: " + format, *args)

    return Handler
