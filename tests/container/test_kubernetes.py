"""The built image from the Kubernetes manifests (the CPU overlay), played by `podman kube play`:
the pod comes up non-root on a read-only root file system, answers its probes, runs its camera
from the ConfigMap, writes its results to its own state volume and publishes them over MQTT v5
(TLS) to the broker on the host. (tests/support/kube_play.py
says what is changed to play it without a cluster or a registry; the GPU overlay is validated in
the unit tier, not played.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.support.container import Engine
from tests.support.kube_play import containers_conf, playable, runtime
from tests.support.mqtt_subscriber import Subscriber
from tests.support.processes import REPO

PORT = 19631


def _status(path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}{path}", timeout=3) as answer:
            return answer.status
    except OSError:
        return 0


def test_the_cpu_overlay_plays_answers_its_probes_and_publishes_over_mqtt(
    engine: Engine, model_path: Path, tmp_path: Path, broker, pki
) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl renders the manifests (apt-get install kubernetes-client)"
    rendered = subprocess.run(
        [kubectl, "kustomize", str(REPO / "deploy" / "kubernetes" / "overlays" / "cpu")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    config = (
        "cameras:\n  yard: {uri: 'synthetic:320x240@5'}\nsink: {kind: jsonl, path: /data/state/results.jsonl}\n"
        "mqtt: {enabled: true, host: localhost, port: 8883, "
        f"ca_file: /etc/edgevision/broker-ca/{pki.ca_cert.name}}}\n"
    )
    play = tmp_path / "play.yaml"
    ca = {"/etc/edgevision/broker-ca": str(pki.ca_cert.parent)}
    play.write_text(
        playable(rendered, image=engine.image, models=str(model_path.parent), port=PORT, config_yaml=config, mounts=ca)
    )
    subscriber = Subscriber(pki.ca_cert, "edgevision/#")
    conf = tmp_path / "containers.conf"
    conf.write_text(containers_conf(engine.flags))
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    podman = [engine.binary, *runtime(engine.flags)]

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*podman, *args], capture_output=True, text=True, env=env, timeout=180, check=check)

    run("kube", "down", str(play), check=False)
    run("volume", "rm", "--force", "state-edgevision-0", "edgevision-config", check=False)
    try:
        done = run("kube", "play", "--network", "host", str(play), check=False)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _status("/readyz") != 200:
            time.sleep(1)
        assert _status("/healthz") == 200 and _status("/readyz") == 200, run(
            "logs", "edgevision-pod-0-edgevision"
        ).stderr
        container = json.loads(run("inspect", "edgevision-pod-0-edgevision").stdout)[0]
        assert container["Config"]["User"] in ("10001", "10001:10001") and container["HostConfig"]["ReadonlyRootfs"]
        volume = Path(json.loads(run("volume", "inspect", "state-edgevision-0").stdout)[0]["Mountpoint"])
        results = volume / "state" / "results.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (results.exists() and '"camera":"yard"' in results.read_text()):
            time.sleep(1)
        assert '"type":"result"' in results.read_text()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not subscriber.of("result"):
            time.sleep(1)
        topic, body, props, _size = subscriber.of("result")[0]
        assert topic == "edgevision/yard/results" and body["camera"] == "yard" and props["type"] == "result"
    finally:
        subscriber.close()
        logs = run("logs", "edgevision-pod-0-edgevision", check=False).stderr
        run("kube", "down", str(play), check=False)
        run("volume", "rm", "--force", "state-edgevision-0", "edgevision-config", check=False)
    assert "Traceback" not in logs, logs
