"""Fixtures of the integration tier: a local edgeHub (mosquitto with TLS), an IoT Hub simulator,
a workload API stand-in, and the module started as IoT Edge starts it."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.edgehub import IoTHubSimulator, LocalPKI, Mosquitto, WorkloadAPI
from tests.support.module_process import ModuleProcess


@pytest.fixture(scope="module")
def pki() -> LocalPKI:
    # Not under pytest's 0700 temp folder: mosquitto, dropped to its own user, must read it.
    return LocalPKI.create(Path(tempfile.mkdtemp(prefix="edgehub-", dir="/tmp")))


@pytest.fixture(scope="module")
def broker(pki: LocalPKI) -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(pki.ca_cert.parent, pki)
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def hub_factory(broker: Mosquitto, pki: LocalPKI) -> Iterator[Any]:
    hubs: list[IoTHubSimulator] = []

    def make(desired: dict[str, Any]) -> IoTHubSimulator:
        if not broker.running:
            broker.start()
        hub = IoTHubSimulator(pki.ca_cert, desired=desired)
        hub.start()
        hubs.append(hub)
        return hub

    yield make
    if not broker.running:
        broker.start()
    for hub in hubs:
        hub.stop()


@pytest.fixture
def workload(pki: LocalPKI) -> Iterator[WorkloadAPI]:
    """The workload API aziot-edged serves to modules, on a unix socket."""
    folder = Path(tempfile.mkdtemp(prefix="workload-", dir="/tmp"))
    api = WorkloadAPI(folder / "workload.sock", pki.ca_cert, "edgevision", uuid.uuid4().hex[:16], b"k" * 32)
    api.start()
    yield api
    api.stop()


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
