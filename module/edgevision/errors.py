"""The one root of the module's own errors, each kind with the exit status the CLI gives it."""

from __future__ import annotations

from edgevision.redaction import redact_text

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class EdgevisionError(Exception):
    """Anything the module reports in one line rather than a traceback."""

    exit_code = EXIT_FAILED


class UsageError(EdgevisionError):
    """Bad command-line input."""

    exit_code = EXIT_USAGE


class ConfigError(EdgevisionError, ValueError):
    """Invalid configuration; the message names each bad field and why."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[str]) -> None:
        # Problems quote what was given, camera URIs included: never their passwords.
        self.problems = [redact_text(p) for p in problems]
        super().__init__("invalid configuration: " + "; ".join(self.problems))


class BuildError(EdgevisionError):
    """A valid configuration asks for something that cannot be built here: a model that cannot
    be found, downloaded or loaded, an engine, a derived copy of a graph."""


class NotReady(EdgevisionError):
    """The module cannot answer yet (starting, no model loaded)."""


class UpstreamError(EdgevisionError):
    """A failure talking to edgeHub. Transient ones (a dropped link, a timeout) are retried;
    fatal ones (a refused message, bad credentials) are not."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def first_line(exc: BaseException) -> str:
    """An exception's first line of text (or its type), for one-line reports."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
