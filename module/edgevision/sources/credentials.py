"""Camera credentials kept out of the configuration: `credentials: env:NAME` or `file:/path`
names where `user:password` is, and it is put into the address only when the camera opens
(so it is in no twin, status, log or message, and a rotated password is read at the next open)."""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from edgevision.config.source_uri import SourceSpec

# A credentials file is a line, not a document.
MAX_FILE_BYTES = 4096


class CredentialsError(Exception):
    """Where the credentials should be, they are not; says where, never what."""


def read_credentials(reference: str, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """`user:password` from an environment variable or a file, split at its first colon."""
    kind, _, where = reference.partition(":")
    if kind == "env":
        value = (os.environ if environ is None else environ).get(where)
        if value is None:
            raise CredentialsError(f"credentials {reference}: the variable is not set")
    elif kind == "file":
        try:
            with Path(where).open("rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise CredentialsError(f"credentials {reference}: {exc.strerror or 'cannot read'}") from None
        if len(raw) > MAX_FILE_BYTES:
            raise CredentialsError(f"credentials {reference}: over {MAX_FILE_BYTES} bytes")
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CredentialsError(f"credentials {reference}: not UTF-8 text") from None
    else:
        raise CredentialsError(f"credentials {reference!r}: use env:NAME or file:/path")
    value = value.strip()
    user, colon, password = value.partition(":")
    if not colon or not user:
        raise CredentialsError(f"credentials {reference}: expected user:password")
    return user, password


def with_credentials(spec: SourceSpec, reference: str | None, environ: Mapping[str, str] | None = None) -> SourceSpec:
    """The spec to open: its address with the credentials in it (percent-encoded; FFmpeg decodes
    them), or the spec itself when the camera names none."""
    if reference is None:
        return spec
    user, password = read_credentials(reference, environ)
    scheme, _, rest = spec.target.partition("://")
    userinfo = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
    return dataclasses.replace(spec, target=f"{scheme}://{userinfo}@{rest}")
