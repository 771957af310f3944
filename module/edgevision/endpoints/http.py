"""The module's HTTP endpoints: /healthz, /readyz, /status, /metrics (Prometheus),
/preview/<camera>.mjpg and POST /score, served by aiohttp on its own thread and event loop.

aiohttp rather than http.server: the standard library's server is documented as unfit for
production (basic security checks only) and costs a thread per connection; aiohttp parses HTTP
in C with header limits, handles HEAD, Content-Length and chunked bodies, and keeps thousands of
slow clients as cheap coroutines. What it lacks (a connection cap, a deadline for receiving a
request, a token) is in guard.py; scoring's limits are in score.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from edgevision.config.model import HttpConfig
from edgevision.control import Control
from edgevision.endpoints.guard import Admission, TokenCheck, guard_middleware
from edgevision.endpoints.preview import PreviewStreams
from edgevision.endpoints.prometheus import registry_for
from edgevision.endpoints.score import Busy, Refusal, ScoreGate, decode, inspect_image
from edgevision.errors import NotReady

log = logging.getLogger(__name__)
# aiohttp logs every malformed request at ERROR with its bytes: whoever sends garbage could fill
# the module's log. They are answered 400 by aiohttp; the log keeps only what is critical.
_PARSER_LOG = log.getChild("parser")
_PARSER_LOG.setLevel(logging.CRITICAL)

# POST /score takes one image; anything larger is refused before it is read.
MAX_SCORE_BYTES = 16 * 1024 * 1024
# How long a 429 waits before it is sent.
BUSY_ANSWER_DELAY_S = 1.0
# /metrics is rendered at most once in this long (scrapers come every 10-60 s).
METRICS_RENDER_S = 1.0
PATHS = ["/healthz", "/metrics", "/preview/<camera>.mjpg", "/readyz", "/score", "/status"]
# Header limits, and how long an unread body is drained after an early answer (aiohttp's 10 s
# would let an endless chunked body hold the connection).
_LIMITS = {"max_line_size": 8190, "max_headers": 64, "max_field_size": 8190, "lingering_time": 1.0}


class HttpServer:
    """Serves on its own thread; a failure here never stops the pipeline. The listening socket
    is opened by the constructor, so a taken port fails there (OSError)."""

    def __init__(self, control: Control, settings: HttpConfig, token: str, probe_socket: Path | None = None) -> None:
        """`probe_socket`: the same endpoints on a unix socket readable by the module's user only,
        for its own HEALTHCHECK (`edgevision health`): no network client can crowd it out."""
        self._control = control
        self._probe_path = probe_socket
        self._probe: asyncio.AbstractServer | None = None
        self.settings = settings
        self._tokens = TokenCheck(token, metrics_open=not settings.metrics_auth)
        self._sock = socket.create_server((settings.bind, settings.port), backlog=settings.backlog)
        self.port: int = self._sock.getsockname()[1]
        self._registry = registry_for(control)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)
        # Control calls that take locks or encode run here, off the event loop.
        self._calls = ThreadPoolExecutor(max_workers=2 + settings.preview_viewers, thread_name_prefix="http-call")
        self._scoring = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-score")
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.AbstractServer | None = None
        self.admission: Admission | None = None
        self.gate: ScoreGate | None = None
        self._reading: asyncio.Semaphore | None = None
        # When /metrics was last rendered, and that render; how many renders there were.
        self._rendered: tuple[float, asyncio.Future[bytes]] | None = None
        self.renders = 0
        self.previews = PreviewStreams(control, settings.preview_fps, settings.preview_viewers, self._calls)

    def set_token(self, token: str, metrics_auth: bool) -> None:
        """A new token takes effect for the next request."""
        self._tokens = TokenCheck(token, metrics_open=not metrics_auth)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the HTTP server did not start")
        log.info("HTTP endpoints on %s:%d: %s", self.settings.bind, self.port, " ".join(PATHS))

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._sock.close()
        self._calls.shutdown(wait=False, cancel_futures=True)
        self._scoring.shutdown(wait=False, cancel_futures=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._open())
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    async def _open(self) -> None:
        app = web.Application(
            client_max_size=MAX_SCORE_BYTES,
            middlewares=[guard_middleware(lambda: self.admission, lambda: self._tokens, PATHS)],
        )
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/readyz", self._readiness)
        app.router.add_get("/status", self._status)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/preview/{camera}.mjpg", self._preview)
        app.router.add_post("/score", self._score)
        # No transparent decompression: a gzip body would be a bomb behind the size check.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, auto_decompress=False, logger=_PARSER_LOG, **_LIMITS
        )
        await self._runner.setup()
        settings = self.settings
        self.admission = Admission(
            self._runner.server,
            settings.max_connections,
            settings.request_timeout_s,
            settings.max_connections_per_client,
        )
        self.gate = ScoreGate(settings.score_queue, settings.score_share)
        # Bodies are read before a place in the scoring queue is taken, a few at a time.
        self._reading = asyncio.Semaphore(max(2 * settings.score_queue, 2))
        # asyncio listens again on the socket it is given, with its own backlog unless told.
        self._listener = await self._loop.create_server(self.admission, sock=self._sock, backlog=settings.backlog)
        if self._probe_path is not None:
            try:
                self._probe_path.unlink(missing_ok=True)
                self._probe = await self._loop.create_unix_server(self._runner.server, path=str(self._probe_path))
                self._probe_path.chmod(0o600)
            except OSError as exc:
                log.warning("no probe socket at %s (%s): the HEALTHCHECK falls back to TCP", self._probe_path, exc)
                self._probe = None

    async def _close(self) -> None:
        self.previews.close()
        if self._listener is not None:
            self._listener.close()
        if self._probe is not None:
            self._probe.close()
            if self._probe_path is not None:
                self._probe_path.unlink(missing_ok=True)
        if self._runner is not None:
            await self._runner.cleanup()
        # Connections still draining or streaming end here, not with the loop.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _call(self, function: Any, *args: Any) -> Any:
        return await self._loop.run_in_executor(self._calls, function, *args)

    # -- routes ------------------------------------------------------------------------------

    async def _health(self, _request: web.Request) -> web.Response:
        probe = self._control.health()
        return web.json_response(probe.body, status=200 if probe.ok else 503)

    async def _readiness(self, _request: web.Request) -> web.Response:
        probe = self._control.readiness()
        return web.json_response(probe.body, status=200 if probe.ok else 503)

    async def _status(self, _request: web.Request) -> web.Response:
        try:
            return web.json_response(await self._call(self._control.status))
        except NotReady as exc:
            return web.json_response({"error": str(exc)}, status=503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        """Rendered at most once every METRICS_RENDER_S: requests meanwhile share the last render
        (or the one under way), so scrapers, however many, cost one render a second."""
        now = time.monotonic()
        if self._rendered is None or now - self._rendered[0] >= METRICS_RENDER_S:
            render = self._loop.run_in_executor(self._calls, generate_latest, self._registry)
            self._rendered = (now, asyncio.ensure_future(render))
            self.renders += 1
        data = await asyncio.shield(self._rendered[1])
        return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _preview(self, request: web.Request) -> web.StreamResponse:
        return await self.previews.stream(request, request.match_info["camera"])

    async def _score(self, request: web.Request) -> web.Response:
        """Detections for one JPEG or PNG, through the running engine (the `detect` document)."""
        if request.headers.get("Transfer-Encoding") or request.content_length is None:
            return _error(411, "send the image with a Content-Length (no chunked bodies)")
        if request.content_length > MAX_SCORE_BYTES:
            return _error(413, f"image over {MAX_SCORE_BYTES} bytes")
        if request.headers.get("Content-Encoding", "identity").lower() != "identity":
            return _error(415, "send the image as it is, without a Content-Encoding")
        assert self.gate is not None
        try:
            # The body first, within the deadline and outside the queue: a client that declares a
            # body and holds it back keeps a reading slot at most request_timeout_s, never the gate.
            if self._reading.locked():
                raise Busy
            async with self._reading:
                body = await asyncio.wait_for(request.read(), self.settings.request_timeout_s)
            _kind, width, height = inspect_image(body, self.settings.score_max_pixels)
            async with self.gate.place() as ticket, self.gate.turn(ticket, self.settings.request_timeout_s):
                result = await self._loop.run_in_executor(self._scoring, self._decode_and_score, body, width, height)
        except Busy:
            # Answered late on purpose: a client that ignores Retry-After and asks again at once
            # would otherwise cost the cameras a parse and an answer per request, thousands a
            # second. Waiting here costs nothing but the connection it already holds.
            await asyncio.sleep(BUSY_ANSWER_DELAY_S)
            return _error(429, "scoring is busy; retry later", headers={"Retry-After": "1"})
        except Refusal as refusal:
            return _error(refusal.status, refusal.message)
        except TimeoutError:
            return _error(408, f"the image did not arrive within {self.settings.request_timeout_s:g} s")
        except NotReady as exc:
            return _error(503, str(exc))
        return web.json_response(result)

    def _decode_and_score(self, body: bytes, width: int, height: int) -> dict[str, Any]:
        return self._control.score(decode(body, width, height))


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)
