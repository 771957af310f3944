"""Fixtures of a local IoT Edge runtime: edgeHub (mosquitto with TLS), an IoT Hub simulator and
the workload API stand-in. A pytest plugin (tests/conftest.py loads it), shared by the tiers that
start the module as IoT Edge does."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.edgehub import IoTHubSimulator, LocalPKI, Mosquitto, WorkloadAPI


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
