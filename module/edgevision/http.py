"""The module's HTTP endpoints: /healthz (liveness), /readyz (readiness), /status."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgevision.module import Module

log = logging.getLogger(__name__)

# The supervisor ticks every half second; this long without one means the loop is stuck.
LIVENESS_S = 10.0
# A camera counts as producing frames if one arrived this recently.
FRAME_RECENT_S = 10.0


class HttpServer:
    """Serves on its own threads; a failure here never stops the pipeline."""

    def __init__(self, module: Module, bind: str, port: int) -> None:
        self._module = module
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer((bind, port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("HTTP endpoints on port %d: /healthz /readyz /status", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def health(self) -> tuple[int, dict[str, Any]]:
        pipeline = self._module.pipeline
        if pipeline is None or pipeline.done:
            return 503, {"status": "stopped"}
        age = time.monotonic() - pipeline.last_tick
        if age > LIVENESS_S:
            return 503, {"status": "stuck", "seconds_since_supervisor_tick": round(age, 1)}
        return 200, {"status": "ok"}

    def readiness(self) -> tuple[int, dict[str, Any]]:
        pipeline = self._module.pipeline
        reasons = []
        if pipeline is None or pipeline.model is None:
            reasons.append("model not loaded")
        now = time.monotonic()
        cameras = list(pipeline.metrics.cameras.values()) if pipeline is not None else []
        producing = [c.camera for c in cameras if c.last_frame_mono is not None and now - c.last_frame_mono < FRAME_RECENT_S]
        if not producing:
            reasons.append("no camera produced a frame in the last %d s" % FRAME_RECENT_S)
        if reasons:
            return 503, {"ready": False, "reasons": reasons}
        return 200, {"ready": True, "cameras_producing": sorted(producing)}

    def status(self) -> tuple[int, dict[str, Any]]:
        if self._module.pipeline is None:
            return 503, {"error": "starting"}
        return 200, self._module.status()


def _handler_for(server: HttpServer) -> type[BaseHTTPRequestHandler]:
    routes = {"/healthz": server.health, "/readyz": server.readiness, "/status": server.status}

    class Handler(BaseHTTPRequestHandler):
        server_version = "edgevision"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            route = routes.get(self.path.split("?", 1)[0])
            if route is None:
                self._reply(404, {"error": f"no such path {self.path!r}", "paths": sorted(routes)})
                return
            try:
                status, body = route()
            except Exception as exc:  # noqa: BLE001 - an endpoint error must not reach the pipeline
                log.exception("HTTP %s failed", self.path)
                status, body = 500, {"error": f"{type(exc).__name__}: {exc}"}
            self._reply(status, body)

        def do_POST(self) -> None:  # noqa: N802
            self._reply(405, {"error": "method not allowed", "paths": sorted(routes)})

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
