"""Downloads of pinned files (models, the sample clip): HTTPS only unless allowed, never more bytes
than the pin says, within a total deadline, into a part file beside the target that is checked
against its SHA-256 before it is renamed into place. Parts left by a killed download are removed
by the next one (under a lock, so two downloads of one file never race)."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

log = logging.getLogger(__name__)

BASE_URL_ENV = "EDGEVISION_DOWNLOAD_BASE_URL"
ALLOW_HTTP_ENV = "EDGEVISION_DOWNLOAD_ALLOW_HTTP"
DEADLINE_ENV = "EDGEVISION_DOWNLOAD_TIMEOUT_S"
DEFAULT_DEADLINE_S = 900.0
# With no size in the pin, nothing larger is taken.
DEFAULT_MAX_BYTES = 2 * 2**30
# A connection that sends nothing for this long is given up (each read; the deadline bounds the whole).
STALL_S = 30.0
_CHUNK = 1 << 20


class DownloadError(Exception):
    """The file could not be downloaded; says why (the caller adds what to do instead)."""


class IntegrityError(DownloadError):
    """What arrived is not the pinned file (its SHA-256 or its size)."""


@dataclass(frozen=True)
class Pinned:
    """A file to download and what it must be."""

    file: str
    url: str | None
    sha256: str | None
    size_bytes: int | None = None


@dataclass(frozen=True)
class DownloadSettings:
    # Replaces the directory part of every pinned URL (mirrors, air-gapped sites, local tests).
    base_url: str | None = None
    allow_http: bool = False
    deadline_s: float = DEFAULT_DEADLINE_S

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> DownloadSettings:
        env = os.environ if environ is None else environ
        try:
            deadline = float(env.get(DEADLINE_ENV) or DEFAULT_DEADLINE_S)
        except ValueError:
            raise DownloadError(f"{DEADLINE_ENV}={env[DEADLINE_ENV]!r}: seconds expected") from None
        return cls(
            base_url=env.get(BASE_URL_ENV) or None,
            allow_http=env.get(ALLOW_HTTP_ENV, "").lower() in ("1", "true", "yes"),
            deadline_s=deadline,
        )


def source_url(pinned: Pinned, settings: DownloadSettings) -> str:
    if settings.base_url:
        return settings.base_url.rstrip("/") + "/" + urllib.parse.quote(pinned.file)
    if not pinned.url:
        raise DownloadError("no download URL")
    return pinned.url


def download(
    pinned: Pinned, directory: Path, *, settings: DownloadSettings | None = None, progress: bool = True
) -> Path:
    """The pinned file in `directory`, downloaded now; DownloadError (nothing left behind) if not."""
    settings = settings or DownloadSettings.from_environment()
    url = source_url(pinned, settings)
    _check_scheme(url, settings)
    target = directory / pinned.file
    lock_path = directory / f".{pinned.file}.lock"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = _lock(lock_path)
    except OSError as exc:
        raise DownloadError(f"cannot write to {directory}: {exc.strerror}") from exc
    with lock:
        try:
            return _download_locked(pinned, url, target, settings, progress)
        finally:
            # Nothing is left behind, the lock file included: it goes while still held, and a
            # process waiting on it sees that it no longer locks the file on disk (_lock).
            lock_path.unlink(missing_ok=True)


def _lock(path: Path) -> Any:
    """`path` opened and exclusively locked, and still the file at `path` once locked (a holder
    that finished may have removed it meanwhile: then open and wait again)."""
    while True:
        handle = path.open("a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()


def _download_locked(pinned: Pinned, url: str, target: Path, settings: DownloadSettings, progress: bool) -> Path:
    """The download itself, under the lock: one at a time per file."""
    directory = target.parent
    for stale in directory.glob(f".{pinned.file}.*.part"):
        stale.unlink(missing_ok=True)  # a download that was killed: only one runs under the lock
    if target.is_file() and pinned.sha256 and _sha256(target) == pinned.sha256:
        return target  # another process finished it while this one waited
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=f".{pinned.file}.", suffix=".part", delete=False)  # noqa: SIM115
    part = Path(handle.name)
    try:
        with handle:
            digest = _fetch(url, pinned, settings, handle, progress)
        if pinned.sha256 and digest != pinned.sha256:
            raise IntegrityError(f"{url} has SHA-256 {digest}, expected {pinned.sha256}; the file was discarded")
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    log.info("saved %s to %s", pinned.file, target)
    return target


def _fetch(url: str, pinned: Pinned, settings: DownloadSettings, out: Any, progress: bool) -> str:
    cap = pinned.size_bytes or DEFAULT_MAX_BYTES
    deadline = time.monotonic() + settings.deadline_s
    opener = urllib.request.build_opener(_Redirects(settings))
    digest = hashlib.sha256()
    received = 0
    log.info("downloading %s from %s", pinned.file, url)
    try:
        with opener.open(url, timeout=STALL_S) as response:
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > cap:
                raise IntegrityError(f"{url} offers {declared} bytes; {pinned.file} is {cap}")
            with tqdm(total=declared or pinned.size_bytes, unit="B", unit_scale=True, desc=pinned.file,
                      disable=not progress or None, leave=False) as bar:  # fmt: skip
                while chunk := response.read1(_CHUNK):
                    received += len(chunk)
                    if received > cap:
                        raise IntegrityError(f"{url} sent more than the {cap} bytes {pinned.file} has")
                    if time.monotonic() > deadline:
                        raise DownloadError(f"took longer than {settings.deadline_s:g} s ({DEADLINE_ENV})")
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise DownloadError(f"download from {url} failed: {reason}") from exc
    if pinned.size_bytes and received != pinned.size_bytes:
        raise IntegrityError(f"{url} sent {received} bytes; {pinned.file} has {pinned.size_bytes}")
    return digest.hexdigest()


def _check_scheme(url: str, settings: DownloadSettings) -> None:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and settings.allow_http):
        return
    if scheme == "http":
        raise DownloadError(f"{url}: plain HTTP refused (set {ALLOW_HTTP_ENV}=1 to allow it)")
    raise DownloadError(f"{url}: only https:// downloads")


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Redirects are followed (release downloads redirect to a storage host) only to HTTPS."""

    def __init__(self, settings: DownloadSettings) -> None:
        self._settings = settings

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        _check_scheme(newurl, self._settings)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
