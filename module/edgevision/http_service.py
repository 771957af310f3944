"""The module's HTTP endpoints as a service: started from the `http` section, replaced or given a
new token when it changes, and their bearer token: the configured one (http.token), else one the
module makes and keeps in its state folder, so the endpoints are never open by default."""

from __future__ import annotations

import logging
import secrets
import string
from pathlib import Path

from edgevision.config.model import HttpConfig
from edgevision.control import Control
from edgevision.endpoints.http import HttpServer
from edgevision.state import move_aside, private_folder, write_private

log = logging.getLogger(__name__)

TOKEN_FILE = "http-token"
# The endpoints on a unix socket in the state folder, for the module's own HEALTHCHECK.
PROBE_SOCKET = "http.sock"
_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")


def resolve_token(settings: HttpConfig, state: Path) -> tuple[str, str]:
    """The token and where it comes from (for the log; never the token itself)."""
    if settings.token_file is not None:
        return _token_from_file(settings.token_file)
    configured = settings.secret()
    path = state / TOKEN_FILE
    if configured is not None:
        # A token made earlier no longer opens anything: it must not lie there as if it did.
        if path.is_file():
            try:
                path.unlink()
                log.warning("http.token is set: the token the module made earlier (%s) is removed", path)
            except OSError as exc:
                log.warning("http.token is set, but the earlier token file %s stays: %s", path, exc.strerror)
        return configured, "http.token"
    try:
        kept = path.read_text(encoding="ascii").strip() if path.is_file() else None
    except (OSError, UnicodeDecodeError):
        kept = ""
    if kept is not None:
        if 16 <= len(kept) <= 512 and set(kept) <= _ALPHABET:
            return kept, f"the file {path}"
        move_aside(path, "not a token")
    token = secrets.token_urlsafe(32)
    try:
        write_private(path, token.encode("ascii"))
    except OSError as exc:
        # Still guarded: a token nobody knows keeps the endpoints closed until http.token is set.
        log.error("cannot keep an HTTP token in %s (%s): set http.token to use the endpoints", state, exc.strerror)
        return token, "nowhere (set http.token)"
    return token, f"the file {path} (made now)"


def _token_from_file(path: Path) -> tuple[str, str]:
    """http.token_file: its first line, 16 to 512 printable characters without spaces. Anything
    else keeps the guarded paths closed (a random token nobody knows) and says why once."""
    try:
        with path.open("rb") as handle:
            text = handle.read(4096).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        log.error("http.token_file %s: %s; the guarded endpoints stay closed", path, reason)
        return secrets.token_urlsafe(32), "nowhere (http.token_file unreadable)"
    if not 16 <= len(text) <= 512 or not text.isprintable() or any(c.isspace() for c in text):
        log.error(
            "http.token_file %s: not a token (16-512 printable characters); the guarded endpoints stay closed", path
        )
        return secrets.token_urlsafe(32), "nowhere (http.token_file not a token)"
    return text, f"http.token_file {path}"


class HttpService:
    def __init__(self, control: Control, state: Path) -> None:
        self._control = control
        self._state = state
        self.server: HttpServer | None = None

    def start(self, settings: HttpConfig) -> None:
        if not settings.enabled:
            return
        token, origin = resolve_token(settings, self._state)
        if settings.token is None and settings.token_file is None:
            opened = "/healthz, /readyz and /metrics are" if not settings.metrics_auth else "/healthz and /readyz are"
            log.warning(
                "HTTP endpoints on %s:%d: %s open; every other path needs a bearer token, which is in %s "
                "(set http.token to choose it)",
                settings.bind,
                settings.port,
                opened,
                origin,
            )
        try:
            private_folder(self._state)
            self.server = HttpServer(self._control, settings, token, probe_socket=self._state / PROBE_SOCKET)
        except OSError as exc:
            log.error("HTTP endpoints unavailable (%s:%d): %s", settings.bind, settings.port, exc.strerror)
            return
        self.server.start()

    def apply(self, settings: HttpConfig) -> None:
        """A new token is taken live; a new address, port or limit replaces the server."""
        running = self.server
        if running is not None and running.settings == settings:
            return
        if running is not None and _same_but_token(running.settings, settings):
            running.set_token(resolve_token(settings, self._state)[0], settings.metrics_auth)
            running.settings = settings
            return
        self.stop()
        self.start(settings)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def _same_but_token(old: HttpConfig, new: HttpConfig) -> bool:
    return old.model_copy(update={"token": new.token, "metrics_auth": new.metrics_auth}) == new
