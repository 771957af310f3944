"""Camera addresses carry passwords: in the user part (`rtsp://admin:pw@host/...`) or in the
query (`?user=admin&pwd=...`). Everything the module says (logs, messages, status, reported
properties, errors) passes through here first."""

from __future__ import annotations

import logging
import re
import urllib.parse
from typing import Any

HIDDEN = "***"
# Query parameters whose value is a credential, by name (compared without case or separators).
_SECRET_NAMES = frozenset(
    {
        "user", "username", "usr", "login", "pass", "passwd", "password", "pwd", "pw", "token",
        "accesstoken", "auth", "authorization", "key", "apikey", "secret", "clientsecret", "sig",
        "signature", "credential", "credentials", "cred", "session", "sessionid", "sid",
    }
)  # fmt: skip
# A URI inside free text (an error message, a log line): a scheme, then anything but spaces and quotes.
_URI_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{1,15}://[^\s'\"<>`]+")
_HOST = re.compile(r"^[A-Za-z0-9._~%\-]*(\[[0-9A-Fa-f:.]+\])?(:[0-9]*)?$")


def redact_uri(uri: str) -> str:
    """The URI with its user part and secret query values replaced by ***."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    before_query, qmark, query = rest.partition("?")
    # The user part ends at the LAST @ before the host (passwords hold @ and / unencoded).
    at = before_query.rfind("@")
    if at >= 0 and _HOST.match(before_query[at + 1 :].split("/", 1)[0]):
        before_query = f"{HIDDEN}@{before_query[at + 1 :]}"
    if qmark:
        query = _redact_query(query)
    return f"{scheme}://{before_query}{qmark}{query}"


def _redact_query(query: str) -> str:
    fragment = ""
    if "#" in query:
        query, fragment = query.split("#", 1)
        fragment = "#" + fragment
    parts = []
    for part in re.split(r"([&;])", query):
        name, eq, _value = part.partition("=")
        key = re.sub(r"[^a-z]", "", urllib.parse.unquote_plus(name).lower())
        parts.append(f"{name}={HIDDEN}" if eq and key in _SECRET_NAMES else part)
    return "".join(parts) + fragment


def redact_text(text: str) -> str:
    """Free text with every URI in it redacted."""
    if "://" not in text:
        return text
    return _URI_IN_TEXT.sub(lambda m: redact_uri(m.group(0)), text)


def redact_document(value: Any) -> Any:
    """A JSON-like document with every string in it redacted (keys are left as they are)."""
    if isinstance(value, str):
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
