"""Azurite's blob service on 127.0.0.1 (`make azurite` installs it from npm at the pinned
version): stopped and started again on the same port and folder, it keeps its blobs."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

# Azurite's one account and its documented development key (not a secret: every Azurite has it).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _binary() -> Path:
    named = os.environ.get("AZURITE_BIN")
    path = (
        Path(named) if named else Path(__file__).resolve().parents[3] / ".cache/azurite/node_modules/.bin/azurite-blob"
    )
    if not path.exists():
        raise RuntimeError(f"Azurite is not installed at {path} (make azurite)")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Azurite:
    def __init__(self, folder: Path) -> None:
        self.binary = _binary()
        self.folder = folder
        self.port = _free_port()
        self.log = folder / "azurite.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def connection_string(self, key: str = KEY) -> str:
        return f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};BlobEndpoint={self.endpoint};"

    def start(self, timeout: float = 30.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = self.log.open("ab")
        self._proc = subprocess.Popen(
            [
                str(self.binary),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.port),
                "--location",
                str(self.folder / "data"),
                "--skipApiVersionCheck",
                "--silent",
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self._proc.poll() is not None:
                    raise RuntimeError(f"Azurite exited: {self.log.read_text()[-2000:]}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError("Azurite did not open its port") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def container(self, name: str):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string()).get_container_client(name)
