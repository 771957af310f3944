"""Camera addresses carry secrets: a user part (`rtsp://admin:pw@host/...`), query values
(`?pwd=...`, a signed URL's `X-Amz-Signature=...`, `sig=...`, a file URI's `?token=...`) and
fragments. Everything the module says (logs, messages, status, reported properties, errors)
passes through here first.

Redaction goes by structure, not by secret-looking names: every user part, every query value
whose name is not on a short list of harmless ones, and every fragment. Passwords are often
written unencoded, with `@`, `/`, `?`, `#`, spaces or quotes in them: the user part ends at the
last `@` that a host follows, and in free text (where a URI's end cannot be told) a query or user
part runs to the end of its line.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from typing import Any

HIDDEN = "***"
# Query parameters whose values are kept: stream selection and format, never a credential.
HARMLESS_PARAMETERS = frozenset(
    {"loop", "channel", "ch", "subtype", "stream", "profile", "res", "resolution", "fps", "width", "height",
     "codec", "transport", "quality", "format", "camera"}
)  # fmt: skip
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{1,15}://")
_FILE = re.compile(r"(?<![A-Za-z0-9+.\-])file:(?!//)")
# A host as it may follow a user part: name or address, an IPv6 literal, a port; then the end of
# the authority.
_HOST = re.compile(r"(?:[A-Za-z0-9._~%\-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?(?=$|[/?#\s'\"<>`]|\Z)")
_URI_END = re.compile(r"[\s'\"<>`]")
# Where the next URI in a line begins: a scheme right after a separator (one inside a password,
# after its `:`, does not count).
_NEXT_URI = re.compile(r"(?<=[\s'\"<>`(\[,;])(?:[A-Za-z][A-Za-z0-9+.\-]{1,15}://|file:)")


def redact_uri(uri: str) -> str:
    """A URI (the whole string) with its user part, query values and fragment replaced by ***."""
    scheme = _SCHEME.match(uri)
    if scheme is None:
        return _redact_tail(uri) if uri.lower().startswith("file:") else uri
    index, head = scheme.end(), uri[: scheme.end()]
    at = _user_part_end(uri[index:])
    if at is not None and _ambiguous(uri[index : index + at]):
        return head + HIDDEN
    if at is not None:
        head += f"{HIDDEN}@"
        index += at + 1
    host = _HOST.match(uri, index)
    if host is not None:
        head += host.group(0)
        index = host.end()
    return head + _redact_tail(uri[index:])


def _user_part_end(rest: str) -> int | None:
    """Where the user part ends (its last `@` that a host follows; in free text, on the rest of the
    line), or None if there is none."""
    at = rest.rfind("@")
    while at >= 0:
        if _HOST.match(rest, at + 1):
            return at
        at = rest.rfind("@", 0, at)
    return None


def _ambiguous(user_part: str) -> bool:
    """A `?` or `#` before the `@`: a query value holding `@` and a password holding `?` look the
    same, so neither the host nor anything after it can be shown."""
    return "?" in user_part or "#" in user_part


def _redact_tail(tail: str) -> str:
    """Path kept; query values hidden but for harmless ones; a fragment hidden (whatever it holds,
    a `?` included: the first of `?` and `#` decides)."""
    cut = min((i for i in (tail.find("?"), tail.find("#")) if i >= 0), default=-1)
    if cut < 0:
        return tail
    path, rest = tail[:cut], tail[cut:]
    if rest[0] == "#":
        return f"{path}#{HIDDEN}"
    query, hash_, _fragment = rest[1:].partition("#")
    return f"{path}?{_redact_query(query)}" + (f"#{HIDDEN}" if hash_ else "")


def _redact_query(query: str) -> str:
    parts = []
    for part in re.split(r"([&;])", query):
        if part in ("&", ";", ""):
            parts.append(part)
            continue
        name, eq, _value = part.partition("=")
        key = urllib.parse.unquote_plus(name).strip().lower()
        if eq and key in HARMLESS_PARAMETERS:
            parts.append(part)
        else:
            parts.append(f"{name}={HIDDEN}" if eq and _plain_name(name) else HIDDEN)
    return "".join(parts)


def _plain_name(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]{1,64}", name))


def redact_text(text: str) -> str:
    """Free text with every URI in it redacted. A URI's user part is everything up to the last
    `@` on its line that a host follows; a query or fragment that is not wholly harmless hides
    the rest of its line (where a value with spaces in it ends cannot be told)."""
    if "://" not in text and "file:" not in text.lower():
        return text
    return "\n".join(_redact_line(line) for line in text.split("\n"))


def _redact_line(line: str) -> str:
    out: list[str] = []
    position = 0
    while (found := _next_uri(line, position)) is not None:
        start, index = found
        out.append(line[position:index])
        if line[start:index].endswith("://"):
            following = _NEXT_URI.search(line, index)
            at = _user_part_end(line[index : following.start() if following else len(line)])
            if at is None and following is not None:
                # What looked like the next URI may be inside a password: hiding too much is safe.
                at = _user_part_end(line[index:])
            if at is not None and _ambiguous(line[index : index + at]):
                out.append(HIDDEN)
                return "".join(out)
            if at is not None:
                out.append(f"{HIDDEN}@")
                index += at + 1
            host = _HOST.match(line, index)
            if host is not None:
                out.append(host.group(0))
                index = host.end()
        end = _URI_END.search(line, index)
        stop = end.start() if end else len(line)
        tail = line[index:stop]
        cut = min((i for i in (tail.find("?"), tail.find("#")) if i >= 0), default=len(tail))
        kept = tail[:cut]
        redacted = _redact_tail(tail)
        if HIDDEN in redacted[len(kept) :]:
            # A value that is not harmless may go on past a space: the rest of the line goes too.
            out.append(f"{kept}{redacted[len(kept)]}{HIDDEN}")
            return "".join(out)
        out.append(redacted)
        position = stop
    out.append(line[position:])
    return "".join(out)


def _next_uri(line: str, position: int) -> tuple[int, int] | None:
    """The start of the next URI in the line and where its scheme (`x://` or `file:`) ends."""
    candidates = [m for m in (_SCHEME.search(line, position), _FILE.search(line, position)) if m is not None]
    if not candidates:
        return None
    first = min(candidates, key=lambda m: m.start())
    return first.start(), first.end()


def redact_document(value: Any) -> Any:
    """A JSON-like document with every string in it redacted (keys are left as they are); a string
    that is a URI as a whole is redacted as one, spaces and all."""
    if isinstance(value, str):
        if _SCHEME.match(value) or value.lower().startswith("file:"):
            return redact_uri(value)
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact_document(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_document(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """On a handler: every record it writes is redacted, whoever logged it (the SDK, OpenCV
    messages passed through, the module)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, ()
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return True


class RepeatFilter(logging.Filter):
    """On a noisy library's logger (the IoT SDK logs "Exception caught in background thread"
    every retry, every 10 s of an outage): a message that repeats the one before it is dropped, so
    the log has one line per change of state."""

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        first_line = record.getMessage().split("\n", 1)[0]
        if self._last.get(record.name) == first_line:
            return False
        self._last[record.name] = first_line
        return True
