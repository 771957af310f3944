"""What stands in front of the endpoints: which connections are let in, how long a client may
take to send its request, and who may call what (a bearer token).

aiohttp parses HTTP (header and line limits, Content-Length, chunked bodies); it has no cap on
connections and no deadline for receiving a request, so a few thousand slow clients would hold
the server. Both are here, at the connection level, before any request is parsed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import hmac
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

# Connections from the container itself (the HEALTHCHECK) are let in past the cap, up to this many
# more: a flood from the network must not get the module restarted for failing its health check.
LOOPBACK_RESERVE = 8
# A connection that has waited this long for its request headers may make room for a new one
# (a real client sends them in milliseconds).
EVICTABLE_AFTER_S = 1.0
# An address (not loopback) that sent this many requests without a valid token within
# STRIKE_WINDOW_S is refused at connect until its oldest strike is that old.
STRIKES = 20
STRIKE_WINDOW_S = 10.0
MAX_TRACKED_ADDRESSES = 4096
# Paths anyone may call: liveness and readiness probes (orchestrators send no token).
OPEN_PATHS = frozenset({"/healthz", "/readyz"})

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 40\r\n"
    b"Retry-After: 1\r\nConnection: close\r\n\r\n"
    b'{"error": "too many connections, retry"}'
)


class Admission:
    """The protocol factory the listening socket uses. A connection is let in while the server has
    room (the cap, plus a reserve for loopback: the HEALTHCHECK's own) and its address holds fewer
    than `per_client`; otherwise the oldest connection that has not yet sent its request headers
    (of that address, or any) makes room, and only if there is none is the new one answered 503.
    So slow clients can hold nothing a real client needs. An address (not loopback) that keeps
    sending requests without the token is refused at connect for a while, before any parsing."""

    def __init__(self, server: web.Server, max_connections: int, deadline_s: float, per_client: int = 8) -> None:
        self._server = server
        self.max_connections = max_connections
        self.per_client = per_client
        self.deadline_s = deadline_s
        self.refused = 0
        self.expired = 0
        self.evicted = 0
        self.penalised = 0
        # Handlers still waiting for their request's headers, oldest first (aiohttp's take no
        # weak references; each is held at most `deadline_s`).
        self._waiting: dict[int, tuple[Any, str | None, float]] = {}
        # Requests refused for a missing or wrong token, by address: when (monotonic).
        self._strikes: dict[str, collections.deque[float]] = {}

    def __call__(self) -> asyncio.Protocol:
        return _Gate(self)

    def admit(self, transport: asyncio.Transport) -> asyncio.Protocol | None:
        address = _address(transport)
        loopback = _loopback(address)
        if not loopback and address is not None and self._penalised(address):
            self.penalised += 1
            return None
        mine = sum(1 for c in self._server.connections if _address(getattr(c, "transport", None)) == address)
        if mine >= self.per_client and not self._evict(lambda a: a == address):
            self.refused += 1
            return None
        limit = self.max_connections + (LOOPBACK_RESERVE if loopback else 0)
        if len(self._server.connections) >= limit and not self._evict(lambda a: loopback or not _loopback(a)):
            self.refused += 1
            return None
        handler = self._server()
        self._waiting[id(handler)] = (handler, address, time.monotonic())
        asyncio.get_running_loop().call_later(self.deadline_s, self._expire, id(handler))
        return handler

    def _evict(self, which: Callable[[str | None], bool]) -> bool:
        """Close the oldest connection that has waited EVICTABLE_AFTER_S or more for its headers
        and whose address `which` takes (a client that just connected is about to send them)."""
        old_enough = time.monotonic() - EVICTABLE_AFTER_S
        for key, (handler, address, since) in list(self._waiting.items()):
            if since > old_enough:
                break  # oldest first: the rest are younger still
            transport = getattr(handler, "transport", None)
            if which(address) and transport is not None and not transport.is_closing():
                del self._waiting[key]
                self.evicted += 1
                transport.abort()
                return True
        return False

    def received(self, handler: Any) -> None:
        """The request's headers arrived: the connection no longer expires or makes room."""
        self._waiting.pop(id(handler), None)

    def strike(self, address: str | None) -> None:
        """A request refused for its token (loopback is the container itself: never held back)."""
        if not address or _loopback(address):  # no address: the probe socket, the container's own
            return
        now = time.monotonic()
        if address not in self._strikes and len(self._strikes) >= MAX_TRACKED_ADDRESSES:
            self._strikes.pop(next(iter(self._strikes)))  # the longest known: bounded memory
        strikes = self._strikes.setdefault(address, collections.deque(maxlen=STRIKES))
        strikes.append(now)

    def _penalised(self, address: str) -> bool:
        strikes = self._strikes.get(address)
        return bool(strikes) and len(strikes) == STRIKES and time.monotonic() - strikes[0] < STRIKE_WINDOW_S

    def _expire(self, key: int) -> None:
        entry = self._waiting.pop(key, None)
        if entry is None:
            return
        transport = getattr(entry[0], "transport", None)
        if transport is not None and not transport.is_closing():
            self.expired += 1
            transport.abort()


class _Gate(asyncio.Protocol):
    """Decides at connect time, then hands the transport to aiohttp's own protocol."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        handler = self._admission.admit(transport)
        if handler is None:
            transport.write(_BUSY)
            transport.close()
            return
        transport.set_protocol(handler)
        handler.connection_made(transport)


def _address(transport: asyncio.BaseTransport | None) -> str | None:
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if peer else None


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class TokenCheck:
    """Bearer (or Basic, with the token as the password: browsers and VLC can send that) on every
    path but the probes; `/metrics` too unless it is left open for collectors that send none."""

    def __init__(self, token: str, metrics_open: bool) -> None:
        self._token = token.encode()
        self._open = OPEN_PATHS | ({"/metrics"} if metrics_open else frozenset())

    def required(self, path: str) -> bool:
        return path not in self._open

    def accepts(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            # aiohttp hands over undecodable header bytes as surrogates: compared as they came.
            try:
                offered = value.encode("utf-8", "surrogateescape")
            except UnicodeError:
                return False
        elif scheme.lower() == "basic":
            try:
                offered = base64.b64decode(value, validate=True).partition(b":")[2]
            except (binascii.Error, ValueError):
                return False
        else:
            return False
        return hmac.compare_digest(offered, self._token)


UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="edgevision", Basic realm="edgevision"'}


def guard_middleware(
    admission: Callable[[], Admission | None], tokens: Callable[[], TokenCheck], paths: list[str]
) -> Any:
    """Marks the request as received (its connection no longer expires), checks the token,
    closes the connection after each answer (no idle keep-alive to hold), answers errors as JSON
    and never lets an internal error's text reach the client."""

    @web.middleware
    async def guard(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
        admitted = admission()
        if admitted is not None:
            admitted.received(request.protocol)
        check = tokens()
        if check.required(request.path) and not check.accepts(request.headers.get("Authorization")):
            if admitted is not None:
                admitted.strike(request.remote)
            response: web.StreamResponse = web.json_response(
                {"error": "a bearer token is required (http.token)"}, status=401, headers=UNAUTHORIZED_HEADERS
            )
        else:
            started = time.monotonic()
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                body: dict[str, Any] = {"error": exc.reason}
                if exc.status in (404, 405):
                    body["paths"] = paths
                response = web.json_response(body, status=exc.status)
            except (ConnectionError, asyncio.CancelledError):
                raise
            except Exception:
                log.exception(
                    "HTTP %s %s failed after %.1f s", request.method, request.path, time.monotonic() - started
                )
                response = web.json_response({"error": "internal error (see the module's log)"}, status=500)
        response.force_close()
        return response

    return guard
