"""The Kubernetes manifests (deploy/kubernetes): each overlay rendered by kustomize (`kubectl
kustomize`) and validated offline against the Kubernetes API schemas (`kubernetes-validate`),
strictly (no unknown field); and what they must say: probes, a non-root read-only container, a
state volume per replica, the configuration the module accepts, the GPU only where asked."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from edgevision.config.load import from_environment, merge, validate
from tests.support.processes import REPO

OVERLAYS = REPO / "deploy" / "kubernetes" / "overlays"
# The oldest Kubernetes the manifests promise, and the newest the validator knows.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


def _render(overlay: str) -> dict[str, dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is needed to render the manifests (apt-get install kubernetes-client; .ci/run does)")
    done = subprocess.run(
        [kubectl, "kustomize", str(OVERLAYS / overlay)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return {d["kind"]: d for d in yaml.safe_load_all(done.stdout) if d}


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_each_overlay_renders_to_valid_kubernetes_objects(overlay: str) -> None:
    objects = _render(overlay)
    assert set(objects) == {"StatefulSet", "Service", "ConfigMap"}
    for document in objects.values():
        for version in VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)
    # The check is real: a misspelt field fails it.
    stateful = objects["StatefulSet"]
    misspelt = {**stateful, "spec": {**stateful["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, VERSIONS[0], strict=True)


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_the_workload_is_probed_locked_down_and_keeps_its_state(overlay: str) -> None:
    objects = _render(overlay)
    stateful = objects["StatefulSet"]
    pod = stateful["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["state"] == "/data" and [t["metadata"]["name"] for t in stateful["spec"]["volumeClaimTemplates"]] == [
        "state"
    ]
    assert pod["volumes"][0]["configMap"]["name"] == objects["ConfigMap"]["metadata"]["name"]
    annotations = stateful["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == "9600"
    # The ConfigMap and the container's environment make a configuration the module accepts,
    # with as many replicas sharing the cameras as the StatefulSet runs.
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    document = merge(yaml.safe_load(objects["ConfigMap"]["data"]["config.yaml"]), from_environment(env))
    config = validate(document)
    assert config.replicas.count == stateful["spec"]["replicas"]
    limits = container["resources"]["limits"]
    if overlay == "gpu":
        assert limits["nvidia.com/gpu"] == 1 and pod["runtimeClassName"] == "nvidia"
        assert config.inference.provider == "auto"
    else:
        assert "nvidia.com/gpu" not in limits and "runtimeClassName" not in pod
        assert config.inference.provider == "cpu"
