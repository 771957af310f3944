"""The rendered manifest drives the module in the emulated IoT Edge runtime, for each runtime it
targets (1.6 LTS, the default, and 1.5 LTS, past its support but still on devices): the system
modules' images name the runtime, and the module started with the manifest's environment and
desired properties runs its cameras and reports to the twin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgevision.deployment import join_create_options, render_file
from tests.support.module_process import ModuleProcess


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["1.6", "1.5"])
def test_the_manifest_for_each_runtime_runs_the_module(
    runtime: str, hub_factory, workload, model_path: Path, tmp_path: Path
) -> None:
    desired = {
        "cameras": {"yard": {"uri": "synthetic:320x240@10", "max_frames": 20}},
        "upstream": {"results_mode": "every_frame", "report_min_interval_s": 0.2},
    }
    variables = {"CONTAINER_REGISTRY_ADDRESS": "myacr.azurecr.io", "IMAGE_NAME": "edgevision", "IMAGE_TAG": "test"}
    document = render_file(None, gpu="cpu", variables=variables, desired=desired, runtime=runtime)
    agent = document["modulesContent"]["$edgeAgent"]["properties.desired"]
    images = {name: entry["settings"]["image"] for name, entry in agent["systemModules"].items()}
    assert images == {
        "edgeAgent": f"mcr.microsoft.com/azureiotedge-agent:{runtime}",
        "edgeHub": f"mcr.microsoft.com/azureiotedge-hub:{runtime}",
    }
    options = join_create_options(agent["modules"]["edgevision"]["settings"])
    manifest_env = dict(item.split("=", 1) for item in options.get("Env", []))
    twin = document["modulesContent"]["edgevision"]["properties.desired"]
    hub = hub_factory(twin)
    # The module gets what edgeAgent would give it: the manifest's environment, the workload API.
    module = ModuleProcess(hub, model_path.parent, state_dir=tmp_path / "state", workload=workload, env=manifest_env)
    try:
        hub.wait_for(lambda: len(hub.outputs("results")) >= 20, 90, "the camera's results")
        hub.wait_for(lambda: "config" in hub.reported, 30, "reported configuration")
        assert {m.body["camera"] for m in hub.outputs("results")} == {"yard"}
    finally:
        assert module.stop() == 0, module.stderr
    assert json.dumps(document).count("${") == 0
