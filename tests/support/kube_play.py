"""The Kubernetes manifests made playable by `podman kube play` on a machine with no cluster and
no registry: what podman cannot play is turned into what it can, and nothing else changes.

- StatefulSet -> Deployment, its volumeClaimTemplates -> a PersistentVolumeClaim (podman plays
  Pods, Deployments, ConfigMaps, Secrets and claims, not StatefulSets);
- host networking (the tests reach the module and a broker on the host): no port mappings, the
  probes by port number, the module on `port`;
- the test image and model (a read-only hostPath), and the pod name a StatefulSet would give.
"""

from __future__ import annotations

from typing import Any

import yaml


def playable(
    rendered: str, *, image: str, models: str, port: int, config_yaml: str, mounts: dict[str, str] | None = None
) -> str:
    """`mounts`: more host folders, read-only, by the path they get in the container."""
    objects = {d["kind"]: d for d in yaml.safe_load_all(rendered) if d}
    stateful = objects["StatefulSet"]
    spec = stateful["spec"]
    claim = spec.pop("volumeClaimTemplates")[0]
    pod = spec["template"]["spec"]
    pod.pop("runtimeClassName", None)
    (container,) = pod["containers"]
    container["image"] = image
    container.pop("ports", None)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        container[probe]["httpGet"]["port"] = port
    container["env"] = [e for e in container["env"] if "valueFrom" not in e] + [
        {"name": "EDGEVISION_HTTP__PORT", "value": str(port)},
        {"name": "EDGEVISION_MODEL__VERIFY", "value": "warn"},
        {"name": "HOSTNAME", "value": f"{stateful['metadata']['name']}-0"},
    ]
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] != "secrets"]
    container["volumeMounts"].append({"name": "models", "mountPath": "/models", "readOnly": True})
    extra = sorted((mounts or {}).items())
    for index, (inside, _) in enumerate(extra):
        container["volumeMounts"].append({"name": f"extra-{index}", "mountPath": inside, "readOnly": True})
    claim_name = f"{claim['metadata']['name']}-{stateful['metadata']['name']}-0"
    pod["volumes"] = [v for v in pod["volumes"] if "secret" not in v] + [
        {"name": "models", "hostPath": {"path": models, "type": "Directory"}},
        {"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}},
    ]
    pod["volumes"] += [
        {"name": f"extra-{index}", "hostPath": {"path": host, "type": "Directory"}}
        for index, (_, host) in enumerate(extra)
    ]
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": stateful["metadata"],
        "spec": {"replicas": 1, "selector": spec["selector"], "template": spec["template"]},
    }
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim_name},
        "spec": claim["spec"],
    }
    config_map = objects["ConfigMap"]
    config_map["data"]["config.yaml"] = config_yaml
    return yaml.safe_dump_all([config_map, volume, deployment])


def containers_conf(flags: list[str]) -> str:
    """The run flags this host needs (`--ulimit`), as podman's configuration: kube play takes no
    run flags."""
    limits = [flags[i + 1] for i, flag in enumerate(flags[:-1]) if flag == "--ulimit"]
    limits += [flag.split("=", 1)[1] for flag in flags if flag.startswith("--ulimit=")]
    return "[containers]\ndefault_ulimits = [" + ", ".join(f'"{u}"' for u in limits) + "]\n"


def runtime(flags: list[str]) -> list[str]:
    """`--runtime X` of the run flags, as podman's global option."""
    for i, flag in enumerate(flags[:-1]):
        if flag == "--runtime":
            return ["--runtime", flags[i + 1]]
    return [f for f in flags if f.startswith("--runtime=")]
