"""`edgevision run` in a child process, started the way IoT Edge starts a module."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.edgehub.hub import IoTHubSimulator
from tests.support.edgehub.workload import WorkloadAPI

# The local-development pair and edgeAgent's variables: a module gets one or the other.
_EDGE_NAMES = ("EdgeHubConnectionString", "EdgeModuleCACertificateFile")


def _local_sources() -> list[str]:
    assets = Path(os.environ.get("EDGEVISION_ASSETS") or Path(__file__).resolve().parents[3] / "shared" / "assets")
    return ["synthetic:", str(assets.resolve() / "video")]


class ModuleProcess:
    """With `workload`, exactly as edgeAgent starts it: the IOTEDGE_* variables and a workload
    API that signs its tokens; without, the SDK's local-development connection string; with no
    hub, stand-alone (no IoT Edge identity: a container or a Kubernetes pod)."""

    def __init__(
        self,
        hub: IoTHubSimulator | None,
        model_dir: Path,
        *args: str,
        state_dir: Path,
        workload: WorkloadAPI | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        base = {k: v for k, v in os.environ.items() if k not in _EDGE_NAMES and not k.startswith("IOTEDGE_")}
        if hub is None:
            identity = {}
        elif workload is not None:
            identity = hub.edge_environment(workload.uri, workload.generation_id)
        else:
            identity = hub.module_environment()
        environment = {
            **base,
            **identity,
            "EDGEVISION_MODEL_DIR": str(model_dir),
            "EDGEVISION_STATE_DIR": str(state_dir),
            # Several modules may run in one test: the endpoints are not what is tested here.
            "EDGEVISION_HTTP__ENABLED": "false",
            # The device's owner lets the twin name synthetic cameras (test scenes) and the test
            # clips, nothing else local (config/remote.py).
            "EDGEVISION_REMOTE__LOCAL_SOURCES": json.dumps(_local_sources()),
            **(env or {}),
        }
        # A file, not a pipe: a module that logs more than a pipe holds must never block on it.
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgevision", "-v", "run", *args],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            text=True,
        )

    @property
    def stderr(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no flush, no clean shutdown."""
        self.proc.kill()
        self.proc.wait(10)
