"""Deployment: rendered manifests for DDA, GPU-PV and CPU, schema-valid; Dockerfile lint and contents."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from edgevision.config import load as configuration
from edgevision.deployment import (
    DeploymentError,
    deployment_schema,
    join_create_options,
    render,
    split_create_options,
    template_path,
)
from edgevision.upstream.iothub import OUTPUTS
from tests.support.processes import REPO, run_cli

VARIABLES = {"CONTAINER_REGISTRY_ADDRESS": "myacr.azurecr.io", "IMAGE_NAME": "edgevision", "IMAGE_TAG": "1.2.3"}


@pytest.fixture(scope="module")
def template() -> dict:
    return json.loads(template_path().read_text())


def _module(document: dict) -> dict:
    return document["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["edgevision"]


@pytest.mark.parametrize("gpu", ["dda", "gpu-pv", "cpu"])
def test_each_mode_renders_a_valid_manifest(template: dict, gpu: str) -> None:
    desired = {"cameras": {"front": {"uri": "rtsp://10.0.0.5/stream1", "target_fps": 5}}}
    document = render(template, gpu=gpu, variables=VARIABLES, desired=desired)
    jsonschema.Draft202012Validator(deployment_schema()).validate(document)
    assert "$edgevision" not in document and "${" not in json.dumps(document)
    module = _module(document)
    assert module["settings"]["image"] == "myacr.azurecr.io/edgevision:1.2.3"
    options = join_create_options(module["settings"])
    host = options["HostConfig"]
    if gpu == "dda":
        # The nested [["gpu"]] is required; a flat ["gpu"] fails in edgeAgent.
        assert host["DeviceRequests"] == [{"Count": -1, "Capabilities": [["gpu"]]}]
        assert "Devices" not in host
    elif gpu == "gpu-pv":
        assert {"PathOnHost": "/dev/dxg", "PathInContainer": "/dev/dxg", "CgroupPermissions": "rwm"} in host["Devices"]
        assert "/usr/lib/wsl:/usr/lib/wsl:ro" in host["Binds"]
        env = dict(item.split("=", 1) for item in options["Env"])
        assert "/usr/lib/wsl/lib" in env["LD_LIBRARY_PATH"].split(":") and env["NVIDIA_DISABLE_REQUIRE"] == "1"
        assert "DeviceRequests" not in host
    else:
        assert "DeviceRequests" not in host and "Devices" not in host
    desired_out = document["modulesContent"]["edgevision"]["properties.desired"]
    config = configuration.validate(desired_out)  # the module's own configuration model
    assert config.camera("front").target_fps == 5
    assert config.inference.provider == ("cpu" if gpu == "cpu" else "auto")
    # No registry credentials given: no empty credentials block.
    assert (
        "registryCredentials"
        not in document["modulesContent"]["$edgeAgent"]["properties.desired"]["runtime"]["settings"]
    )


def test_routes_name_real_outputs_of_the_module(template: dict) -> None:
    document = render(template, gpu="dda", variables=VARIABLES)
    routes = document["modulesContent"]["$edgeHub"]["properties.desired"]["routes"]
    outputs = {re.match(r"FROM /messages/modules/edgevision/outputs/(\w+) INTO", r).group(1) for r in routes.values()}
    assert outputs == set(OUTPUTS.values())


def test_registry_credentials_are_filled_in(template: dict) -> None:
    document = render(
        template,
        gpu="dda",
        variables={**VARIABLES, "CONTAINER_REGISTRY_USERNAME": "pull", "CONTAINER_REGISTRY_PASSWORD": "secret"},
    )
    credentials = document["modulesContent"]["$edgeAgent"]["properties.desired"]["runtime"]["settings"]
    assert credentials["registryCredentials"]["registry"] == {
        "username": "pull",
        "password": "secret",
        "address": "myacr.azurecr.io",
    }


def test_create_options_split_and_join_round_trip() -> None:
    options = {"HostConfig": {"Binds": [f"/data/camera-{i}:/mnt/camera-{i}:ro" for i in range(60)]}}
    chunks = split_create_options(options)
    assert list(chunks) == ["createOptions"] + [f"createOptions{i:02d}" for i in range(1, len(chunks))]
    assert 1 < len(chunks) <= 8 and all(len(c) <= 512 for c in chunks.values())
    assert join_create_options(chunks) == options
    with pytest.raises(DeploymentError, match="at most"):
        split_create_options({"HostConfig": {"Binds": [f"/d/{i}:/m/{i}" for i in range(400)]}})


def test_long_create_options_are_split_in_the_manifest(template: dict) -> None:
    long_template = json.loads(json.dumps(template))
    binds = [f"/srv/recordings/camera-{i}:/recordings/{i}:ro" for i in range(30)]
    long_template["$edgevision"]["gpu"]["gpu-pv"]["HostConfig"]["Binds"] += binds
    document = render(long_template, gpu="gpu-pv", variables=VARIABLES)
    settings = _module(document)["settings"]
    assert "createOptions01" in settings
    assert join_create_options(settings)["HostConfig"]["Binds"][-1] == binds[-1]


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda t: t["modulesContent"]["$edgeHub"]["properties.desired"].update(extra="${UNKNOWN_THING}"),
            r"\$\{UNKNOWN_THING\} has no value",
        ),
        (lambda t: t["$edgevision"]["gpu"].pop("gpu-pv"), "describes"),
    ],
)
def test_template_problems_are_refused(template: dict, change, message: str) -> None:
    broken = json.loads(json.dumps(template))
    change(broken)
    with pytest.raises(DeploymentError, match=message):
        render(broken, gpu="gpu-pv", variables=VARIABLES)


def test_unused_variables_and_invalid_desired_properties_are_refused(template: dict) -> None:
    with pytest.raises(DeploymentError, match="no placeholder in the template for: REGISTRY_TYPO"):
        render(template, gpu="dda", variables={**VARIABLES, "REGISTRY_TYPO": "x"})
    with pytest.raises(DeploymentError, match=r"model\.score_threshold"):
        render(template, gpu="dda", variables=VARIABLES, desired={"model": {"score_threshold": 7}})
    with pytest.raises(DeploymentError, match="arrays"):
        render(template, gpu="dda", variables=VARIABLES, desired={"cameras": [{"id": "a", "uri": "0"}]})


def test_manifest_command(tmp_path: Path) -> None:
    out = tmp_path / "deployment.gpu-pv.json"
    proc = run_cli(
        "manifest",
        "--gpu",
        "gpu-pv",
        "--registry",
        "myacr.azurecr.io",
        "--tag",
        "2.0.0",
        "--camera",
        "dock=rtsp://10.1.1.9/live",
        "--set",
        "model.score_threshold=0.55",
        "--set",
        "upstream.results_mode=summary",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    document = json.loads(out.read_text())
    jsonschema.Draft202012Validator(deployment_schema()).validate(document)
    desired = document["modulesContent"]["edgevision"]["properties.desired"]
    assert desired["cameras"] == {"dock": {"uri": "rtsp://10.1.1.9/live"}}
    assert desired["model"]["score_threshold"] == 0.55 and desired["upstream"]["results_mode"] == "summary"
    assert _module(document)["settings"]["image"] == "myacr.azurecr.io/edgevision:2.0.0"


def test_a_manifest_holding_secrets_is_written_for_its_owner_only(tmp_path: Path) -> None:
    out = tmp_path / "deployment.json"
    out.write_text("{}")
    out.chmod(0o644)  # an older, world-readable render: narrowed before the secrets land
    proc = run_cli(
        "manifest",
        "--gpu",
        "cpu",
        "--registry",
        "myacr.azurecr.io",
        "--registry-username",
        "pull",
        "--registry-password",
        "registry-s3cret",
        "--camera",
        "dock=rtsp://admin:cam-s3cret@10.1.1.9/live",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_mode & 0o777 == 0o600 and "cam-s3cret" in out.read_text()
    assert "0600" in proc.stderr and "credentials: env:NAME" in proc.stderr
    assert "s3cret" not in proc.stderr
    # Without secrets the file is an ordinary one.
    plain = tmp_path / "plain.json"
    assert run_cli("manifest", "--gpu", "cpu", "--registry", "r", "--out", str(plain)).returncode == 0
    assert plain.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gpu", "tpu", "--registry", "r"], "invalid choice"),
        (["--gpu", "dda"], "--registry"),
        (["--gpu", "dda", "--registry", "r", "--set", "model.score_threshold=2"], "model.score_threshold"),
        (["--gpu", "dda", "--registry", "r", "--camera", "rtsp://no-id"], "ID=URI"),
        (["--gpu", "dda", "--registry", "r", "--camera", "x=ftp://cam"], "cameras.x.uri"),
        (["--gpu", "dda", "--registry", "r", "--registry-username", "u"], "--registry-password"),
    ],
)
def test_manifest_command_rejects_bad_input_in_one_line(args: list[str], message: str) -> None:
    proc = run_cli("manifest", *args)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    proc = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_file_the_dockerfile_copies_exists_and_is_not_ignored() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()}
    sources = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            sources += parts[1:-1]
    assert sources, "no COPY found"
    for source in sources:
        assert (REPO / source).exists(), source
        assert source not in ignored, f"{source} is in .dockerignore"
    text = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["edgevision"]' in text and 'CMD ["run"]' in text and "/usr/lib/wsl/lib" in text
    assert 'CMD ["edgevision", "health"]' in text and "USER 10001" in text


def test_the_manifest_allows_in_the_modules_environment_exactly_what_its_twin_names(template: dict) -> None:
    desired = {
        "cameras": {
            "clip": {"uri": "/clips/traffic.mp4"},
            "front": {"uri": "rtsp://10.0.0.5/s", "credentials": "env:FRONT"},
            "plain": {"uri": "rtsp://10.0.0.6/s"},
        }
    }
    module = _module(render(template, gpu="cpu", variables=VARIABLES, desired=desired))
    options = join_create_options(module["settings"])
    env = [e for e in options["Env"] if e.startswith("EDGEVISION_REMOTE__")]
    assert env == [
        'EDGEVISION_REMOTE__LOCAL_SOURCES=["/clips/traffic.mp4"]',
        'EDGEVISION_REMOTE__CREDENTIAL_HOSTS=["10.0.0.5"]',
    ]
    # What the module then reads from its environment lets exactly those through from its twin.
    local = configuration.from_environment(dict(e.split("=", 1) for e in env))
    assert local == {"remote": {"local_sources": ["/clips/traffic.mp4"], "credential_hosts": ["10.0.0.5"]}}
    with pytest.raises(DeploymentError, match="remote: set only by the module's local configuration"):
        render(template, gpu="cpu", variables=VARIABLES, desired={"remote": {"local_sources": ["/"]}})


def test_the_manifest_targets_iot_edge_1_6_and_1_5_on_request(template: dict) -> None:
    def images(document: dict) -> set[str]:
        agent = document["modulesContent"]["$edgeAgent"]["properties.desired"]
        return {entry["settings"]["image"] for entry in agent["systemModules"].values()}

    assert images(render(template, gpu="cpu", variables=VARIABLES)) == {
        "mcr.microsoft.com/azureiotedge-agent:1.6",
        "mcr.microsoft.com/azureiotedge-hub:1.6",
    }
    assert images(render(template, gpu="cpu", variables=VARIABLES, runtime="1.5")) == {
        "mcr.microsoft.com/azureiotedge-agent:1.5",
        "mcr.microsoft.com/azureiotedge-hub:1.5",
    }
    with pytest.raises(DeploymentError, match=re.escape("--runtime '1.4'")):
        render(template, gpu="cpu", variables=VARIABLES, runtime="1.4")
    foreign = copy.deepcopy(template)
    agent = foreign["modulesContent"]["$edgeAgent"]["properties.desired"]
    agent["systemModules"]["edgeHub"]["settings"]["image"] = "evil.example/hub:latest"
    with pytest.raises(DeploymentError, match="not an IoT Edge image"):
        render(foreign, gpu="cpu", variables=VARIABLES)
