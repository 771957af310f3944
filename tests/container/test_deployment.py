"""The deployment users push, run as edgeAgent runs it: the container created from exactly what
`edgevision manifest --gpu cpu` renders for the module (createOptions, env, desired properties),
inside an emulated IoT Edge runtime (workload API on a unix socket, mosquitto with TLS as
edgeHub, an IoT Hub simulator).

Added by the tests, and nothing else:
- what edgeAgent adds to every module it creates: the IOTEDGE_* variables, the workload socket
  mounted at /var/run/iotedge/workload.sock, and the network edgeHub is on (here the host's:
  the local edgeHub listens on 127.0.0.1; on a device it is the azure-iot-edge bridge);
- the model folder mounted read-only at /models (no download here) and a clip folder at /clips,
  with `EDGEVISION_MODEL__VERIFY=warn` (the test model is a re-export whose SHA-256 differs from
  the official manifest's; the image refuses it otherwise);
- in the desired properties, through the manifest command's own flags: the camera (the clip,
  looped), `upstream.results_mode: every_frame` (so every result is a message to count) and
  `upstream.connection_retry_interval_s: 1` (edgeHub comes back within the test's time), and
  `http.token` (the endpoints need one; the test calls /status);
- the host's podman flags (runtime, limits; EDGEVISION_CONTAINER_FLAGS).
"""

from __future__ import annotations

import json
import sqlite3
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.container import Container, Engine, deployment_flags
from tests.support.edgehub import IoTHubSimulator, Mosquitto, WorkloadAPI
from tests.support.processes import run_cli
from tests.support.waits import wait_for

pytestmark = pytest.mark.slow

WORKLOAD_SOCKET = "/var/run/iotedge/workload.sock"
TOKEN = "container-test-token-0123456789"
CLIP = "traffic-360p.mp4"


def _manifest() -> dict[str, Any]:
    done = run_cli(
        "manifest",
        "--gpu",
        "cpu",
        "--registry",
        "localhost",
        "--camera",
        f"clip=/clips/{CLIP}",
        "--set",
        "cameras.clip.loop=true",
        "--set",
        "upstream.results_mode=every_frame",
        "--set",
        "upstream.connection_retry_interval_s=1",
        "--set",
        f"http.token={TOKEN}",
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class Deployment:
    """The module's entry of one rendered manifest, and the container runs made from it."""

    def __init__(
        self, manifest: dict[str, Any], engine: Engine, hub: IoTHubSimulator, workload: WorkloadAPI, mounts: list[str]
    ) -> None:
        self.module = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["edgevision"]
        self.engine = engine
        # The manifest's named volume, by its own name: the tests make it (and remove it) first.
        binds = json.loads(self.module["settings"]["createOptions"])["HostConfig"]["Binds"]
        self.volume_name = next(b.split(":")[0] for b in binds if b.endswith(":/data/state"))
        identity = hub.edge_environment(f"unix://{WORKLOAD_SOCKET}", workload.generation_id)
        # The container's user (uid 10001) must be able to connect, as to aziot-edged's socket.
        workload.socket_path.chmod(0o666)
        self.run_args = [
            *deployment_flags(self.module),
            "--network=host",
            f"--volume={workload.socket_path}:{WORKLOAD_SOCKET}",
            *(f"--env={name}={value}" for name, value in identity.items()),
            *mounts,
        ]

    def start(self) -> Container:
        return self.engine.start(*self.run_args)


@pytest.fixture
def deployment(engine: Engine, hub_factory, workload: WorkloadAPI, model_mount: tuple[str, ...], clips_mount: str):
    made: list[Deployment] = []

    def make() -> tuple[Deployment, IoTHubSimulator, Path]:
        manifest = _manifest()
        hub = hub_factory(manifest["modulesContent"]["edgevision"]["properties.desired"])
        deployment = Deployment(manifest, engine, hub, workload, [*model_mount, clips_mount])
        volume = engine.volume(deployment.volume_name)
        made.append(deployment)
        return deployment, hub, volume

    yield make
    for deployment in made:
        engine.remove_volume(deployment.volume_name)


def _results(hub: IoTHubSimulator) -> list[Any]:
    return [m for m in hub.outputs("results") if m.body.get("camera") == "clip"]


def _reported(hub: IoTHubSimulator, *keys: str) -> Any:
    node: Any = hub.reported_now()
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def test_the_manifest_container_settings_run_the_module(deployment, engine: Engine) -> None:
    setup, hub, volume = deployment()
    container = setup.start()
    try:
        hub.wait_for(lambda: _reported(hub, "config", "applied_version") == 1, 90, "the twin applied")
        hub.wait_for(lambda: len(_results(hub)) >= 10, 60, "results from the clip upstream")
        wait_for(lambda: container.healthcheck()[0] == 0, 60, "the HEALTHCHECK to pass", poll_s=1)
        created = container.inspect()
        assert created["HostConfig"]["ShmSize"] == 268435456
        mounts = {m["Destination"]: m for m in created["Mounts"]}
        assert mounts["/data/state"]["Name"] == setup.volume_name
        assert "EDGEVISION_MODEL_DIR=/models" in created["Config"]["Env"]
        assert _reported(hub, "module", "mode") is not None, "the module should say it runs inside IoT Edge"
        # The state volume holds what must survive the container, written by the module's user.
        last_good = volume / "desired.last-good.json"
        wait_for(last_good.exists, 30, "the last good desired properties on the volume")
        info = last_good.stat()
        assert info.st_uid == 10001 and stat.S_IMODE(info.st_mode) == 0o600
        assert (volume / "outbox.sqlite").exists()
        assert not (volume / "cache" / "Microsoft").exists(), "ONNX Runtime telemetry should be off"
        # The image listens on all interfaces; everything but the probes needs the twin's token.
        assert _http_status("/status") == 401 and _http_status("/healthz") == 200
        assert _http_status("/status", TOKEN) == 200
        elapsed, code = container.stop()
    finally:
        container.remove()
    assert code == 0
    assert elapsed < 10, f"stopping took {elapsed:.1f} s: the engine kills at 10 s"


def _http_status(path: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:9600{path}", headers=headers), timeout=10
        ) as r:
            return r.status
    except urllib.error.HTTPError as error:
        return error.code


def _pending(volume: Path) -> list[str]:
    """Message ids of the results waiting in the outbox on the volume."""
    with sqlite3.connect(f"file:{volume / 'outbox.sqlite'}?mode=ro", uri=True) as db:
        return [mid for (mid,) in db.execute("SELECT message_id FROM outbox WHERE output = 'results' ORDER BY id")]


def test_the_outbox_on_its_volume_survives_a_container_kill(deployment, broker: Mosquitto) -> None:
    setup, hub, volume = deployment()
    first = setup.start()
    try:
        hub.wait_for(lambda: len(_results(hub)) >= 20, 120, "results before the outage")
        broker.stop()
        wait_for(lambda: len(_pending(volume)) >= 50, 60, "results queued in the outbox", poll_s=0.5)
        first.signal("KILL")
        assert first.wait(30) == 137
    finally:
        first.remove()
    pending = _pending(volume)
    first_run = pending[0].split(":")[0]
    second = setup.start()
    try:
        time.sleep(2)  # the new container starts while edgeHub is still away
        broker.start()

        def ids() -> list[str]:
            return [m.properties.get("$.mid", "") for m in hub.outputs("results")]

        hub.wait_for(lambda: set(pending) <= set(ids()), 120, "every queued result of the killed container")
        hub.wait_for(lambda: any(not i.startswith(first_run) for i in ids()), 60, "the new container's results")
        delivered = ids()
        # Sent once, or resent once after the kill (edgeHub de-duplicates nothing; users do by id).
        assert max(delivered.count(mid) for mid in pending) <= 2
        elapsed, code = second.stop()
    finally:
        second.remove()
    assert code == 0 and elapsed < 10
