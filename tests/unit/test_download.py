"""Downloads against a real host on 127.0.0.1: HTTPS only unless allowed, never more than the pin,
within a deadline, nothing left behind, and a base URL for mirrors."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgevision.download import DownloadError, DownloadSettings, IntegrityError, Pinned, download
from tests.support.download_server import DownloadServer, serve_files

BODY = bytes(range(256)) * 64
PIN = Pinned("clip.mp4", None, hashlib.sha256(BODY).hexdigest(), len(BODY))


@pytest.fixture
def host(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[DownloadServer]:
    server = serve_files({"clip.mp4": BODY}, tmp_path_factory.mktemp("pki"))
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_cert))
    yield server
    server.close()


def _pin(host: DownloadServer) -> Pinned:
    return Pinned(PIN.file, host.url("clip.mp4"), PIN.sha256, PIN.size_bytes)


def _left(directory: Path) -> list[str]:
    """Every file a download left, its lock file included."""
    return sorted(p.name for p in directory.iterdir())


def test_https_download_is_checked_and_renamed_into_place(host: DownloadServer, tmp_path: Path) -> None:
    path = download(_pin(host), tmp_path, progress=False)
    assert path.read_bytes() == BODY and _left(tmp_path) == ["clip.mp4"]


def test_plain_http_only_when_allowed(tmp_path: Path) -> None:
    plain = serve_files({"clip.mp4": BODY}, tmp_path, https=False)
    try:
        pin = Pinned(PIN.file, plain.url("clip.mp4"), PIN.sha256, PIN.size_bytes)
        with pytest.raises(DownloadError, match="plain HTTP refused"):
            download(pin, tmp_path / "a", progress=False)
        assert plain.requests == []
        assert download(pin, tmp_path / "b", settings=DownloadSettings(allow_http=True), progress=False).is_file()
    finally:
        plain.close()


def test_a_redirect_to_plain_http_is_refused(host: DownloadServer, tmp_path: Path) -> None:
    host.behaviour = "redirect-to-http"
    with pytest.raises(DownloadError, match="plain HTTP refused"):
        download(_pin(host), tmp_path, progress=False)
    assert _left(tmp_path) == []


def test_an_endless_response_stops_at_the_pinned_size(host: DownloadServer, tmp_path: Path) -> None:
    host.behaviour = "endless"
    with pytest.raises(IntegrityError, match="more than"):
        download(_pin(host), tmp_path, progress=False)
    assert _left(tmp_path) == []


def test_a_trickling_host_meets_the_total_deadline(host: DownloadServer, tmp_path: Path) -> None:
    host.behaviour = "trickle"  # a byte every 0.5 s: each read succeeds, the whole never ends
    started = time.monotonic()
    with pytest.raises(DownloadError, match="took longer than 2 s"):
        download(_pin(host), tmp_path, settings=DownloadSettings(deadline_s=2), progress=False)
    assert time.monotonic() - started < 10 and _left(tmp_path) == []


def test_a_killed_downloads_part_file_is_removed_by_the_next(host: DownloadServer, tmp_path: Path) -> None:
    stale = tmp_path / ".clip.mp4.abc123.part"
    stale.write_bytes(b"half a file")
    download(_pin(host), tmp_path, progress=False)
    assert not stale.exists() and _left(tmp_path) == ["clip.mp4"]


def test_a_base_url_points_every_download_at_a_mirror(host: DownloadServer, tmp_path: Path) -> None:
    unreachable = Pinned(PIN.file, "https://github.invalid/releases/clip.mp4", PIN.sha256, PIN.size_bytes)
    path = download(unreachable, tmp_path, settings=DownloadSettings(base_url=host.base_url), progress=False)
    assert path.read_bytes() == BODY and host.requests == ["/files/clip.mp4"]


def test_downloads_of_one_file_at_once_run_one_after_another_and_leave_only_the_file(
    host: DownloadServer, tmp_path: Path
) -> None:
    got: list[bytes] = []

    def fetch() -> None:
        got.append(download(_pin(host), tmp_path, progress=False).read_bytes())

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # One download; the others found it done under the lock. No lock file, no part left.
    assert got == [BODY] * 4 and host.requests == ["/files/clip.mp4"]
    assert _left(tmp_path) == ["clip.mp4"]


def test_a_failed_download_leaves_nothing(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = Pinned(PIN.file, f"https://127.0.0.1:{port}/clip.mp4", PIN.sha256, PIN.size_bytes)
    with pytest.raises(DownloadError):
        download(refused, tmp_path / "models", progress=False)
    assert _left(tmp_path / "models") == []
