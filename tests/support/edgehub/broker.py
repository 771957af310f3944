"""Debian's mosquitto, TLS on 127.0.0.1:8883 (the port the SDK always uses), anonymous on loopback."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.edgehub.certs import LocalPKI

PORT = 8883


class Mosquitto:
    def __init__(self, directory: Path, pki: LocalPKI) -> None:
        binary = shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), None
        )
        if binary is None:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto; .ci/run does it)")
        self.binary = binary
        self.directory = directory
        directory.chmod(0o755)
        self.config = directory / "mosquitto.conf"
        # Sessions persist across restarts, as edgeHub keeps its clients' subscriptions and the
        # messages waiting for them; `stop(forget_sessions=True)` models an edgeHub that lost
        # them (Azure/iotedge#4050).
        self.store = directory / "store"
        self.store.mkdir(exist_ok=True)
        self.store.chmod(0o777)  # written by mosquitto after it drops root
        self.config.write_text(
            f"listener {PORT} 127.0.0.1\n"
            f"cafile {pki.ca_cert}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
            "allow_anonymous true\n"
            f"persistence true\npersistence_location {self.store}/\nmax_queued_messages 100000\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n"
        )
        self.log = directory / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        if _port_open():
            raise RuntimeError(f"127.0.0.1:{PORT} is already in use")
        log = self.log.open("ab")
        self._proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while not _port_open():
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto did not open its port")
            time.sleep(0.05)

    def stop(self, forget_sessions: bool = False) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        deadline = time.monotonic() + 5
        while _port_open() and time.monotonic() < deadline:
            time.sleep(0.05)
        if forget_sessions:
            for stored in self.store.iterdir():
                stored.unlink()

    def freeze(self) -> None:
        """SIGSTOP: the port stays open, nothing is answered (a hung edgeHub)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


def _port_open() -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", PORT)) == 0
