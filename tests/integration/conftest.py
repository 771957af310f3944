"""Fixtures of the integration tier: the module started as IoT Edge starts it (the local edgeHub,
IoT Hub simulator and workload API fixtures are in tests/support/edgehub/fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.edgehub import IoTHubSimulator, LocalPKI, Mosquitto
from tests.support.links import HubLink, Link, MqttLink
from tests.support.module_process import ModuleProcess


@pytest.fixture
def run_module(model_path: Path, tmp_path: Path) -> Iterator[Any]:
    started: list[ModuleProcess] = []

    def start(hub: IoTHubSimulator, *args: str, state_dir: Path | None = None, **kwargs: Any) -> ModuleProcess:
        module = ModuleProcess(hub, model_path.parent, *args, state_dir=state_dir or tmp_path / "state", **kwargs)
        started.append(module)
        return module

    yield start
    for module in started:
        module.stop()


@pytest.fixture(params=["iothub", "mqtt"])
def link(
    request: pytest.FixtureRequest,
    hub_factory,
    run_module,
    broker: Mosquitto,
    pki: LocalPKI,
    model_path: Path,
    tmp_path: Path,
) -> Iterator[Link]:
    """Each upstream link in turn, for the tests of what both promise (tests/support/links.py)."""
    if request.param == "iothub":
        yield HubLink(hub_factory, run_module, broker)
        return
    mqtt = MqttLink(broker, pki, model_path.parent, tmp_path)
    yield mqtt
    if not broker.running:
        broker.start()
    mqtt.close()


@pytest.fixture(scope="session")
def family_models(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every detector family's test model (YOLOX-Nano's weights by graph surgery), in one model
    folder with YOLOX-Nano itself and a labels file, as a user's model folder would be."""
    from tests.support.family_models import write_family_models

    folder = tmp_path_factory.mktemp("family-models")
    (folder / model_path.name).symlink_to(model_path)
    labels = folder / "coco.txt"
    labels.write_text((Path(__file__).resolve().parents[2] / "models" / "coco80.txt").read_text())
    return write_family_models(model_path, folder)
