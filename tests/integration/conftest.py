"""Fixtures of the integration tier: the module started as IoT Edge starts it (the local edgeHub,
IoT Hub simulator and workload API fixtures are in tests/support/edgehub/fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.edgehub import IoTHubSimulator
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
