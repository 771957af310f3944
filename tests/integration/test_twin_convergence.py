"""The module converges to its twin whatever the order of events, started exactly as edgeAgent
starts it: the IOTEDGE_* variables, tokens signed by a workload API on a unix socket, and a local
edgeHub (mosquitto with TLS). No result is lost in any of these (message ids are counted against
the module's local copy)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.edgehub import IoTHubSimulator, Mosquitto, WorkloadAPI
from tests.support.module_process import ModuleProcess
from tests.support.waits import wait_for

pytestmark = pytest.mark.slow

# How long edgeHub stays away after the module starts (60-97 s on a real device at boot).
EDGEHUB_LATE_S = 20.0
UPSTREAM = {"results_mode": "every_frame", "connection_retry_interval_s": 1, "report_min_interval_s": 0.2}
CAMERA = {"uri": "synthetic:160x120@8"}


def _local_results(path: Path) -> set[tuple[str, int]]:
    if not path.exists():
        return set()
    lines = [json.loads(line) for line in path.read_text().splitlines() if '"type":"result"' in line]
    return {(m["camera"], m["seq"]) for m in lines}


def _hub_results(hub: IoTHubSimulator) -> dict[str, set[tuple[str, int]]]:
    """What arrived upstream, by run (the run id every message carries)."""
    runs: dict[str, set[tuple[str, int]]] = {}
    for message in hub.outputs("results"):
        runs.setdefault(message.body["run_id"], set()).add((message.body["camera"], message.body["seq"]))
    return runs


def _nothing_lost(hub: IoTHubSimulator, *local_files: Path) -> None:
    """Every result a run wrote locally arrives upstream, under that run's id."""

    def missing() -> dict[str, int]:
        runs = _hub_results(hub)
        return {f.name: min(len(_local_results(f) - got) for got in [*runs.values(), set()]) for f in local_files}

    try:
        hub.wait_for(lambda: not any(missing().values()), 60, "every result written locally to arrive upstream")
    except AssertionError:
        raise AssertionError(f"results written locally but not upstream, per run: {missing()}") from None
    for f in local_files:
        assert _local_results(f), f"{f.name}: the run produced no results"


def _drained(hub: IoTHubSimulator) -> None:
    """The module's outbox is empty (what it queued while edgeHub was away went out)."""

    def empty() -> bool:
        code, document = hub.invoke("getStatus", timeout=10)
        return code == 200 and document["upstream"]["queued"] == 0

    wait_for(empty, 90, "an empty outbox", poll_s=0.5)


def _reported(hub: IoTHubSimulator, *keys: str) -> Any:
    node: Any = hub.reported_now()
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _start(
    run_module: Callable[..., ModuleProcess], hub: IoTHubSimulator, workload: WorkloadAPI, state: Path, local: Path
) -> ModuleProcess:
    env = {"EDGEVISION_SINK__KIND": "jsonl", "EDGEVISION_SINK__PATH": str(local)}
    return run_module(hub, state_dir=state, workload=workload, env=env)


def test_a_module_that_ran_before_streams_before_edgehub_is_up_then_converges(
    hub_factory, run_module, broker: Mosquitto, workload: WorkloadAPI, tmp_path: Path
) -> None:
    hub = hub_factory({"cameras": {"a": CAMERA}, "upstream": UPSTREAM})
    state, first_local, second_local = tmp_path / "state", tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first = _start(run_module, hub, workload, state, first_local)
    hub.wait_for(lambda: _reported(hub, "config", "applied_version") == 1, 60, "the first run to apply the twin")
    hub.wait_for(lambda: len(hub.outputs("results")) >= 5, 30, "results of the first run")
    assert first.stop() == 0, first.stderr
    # The module really went through the workload API: the trust bundle, and signed tokens.
    assert "GET /trust-bundle" in workload.requests
    assert f"POST /modules/edgevision/genid/{workload.generation_id}/sign" in workload.requests

    # The device reboots: edgeHub is late; meanwhile an operator added a camera to the twin.
    broker.stop()
    version = hub.set_desired({"cameras": {"b": CAMERA}})
    started = time.monotonic()
    second = _start(run_module, hub, workload, state, second_local)
    wait_for(lambda: any(c == "a" for c, _ in _local_results(second_local)), 15, "camera a streaming from last good")
    time.sleep(max(0.0, EDGEHUB_LATE_S - (time.monotonic() - started)))
    assert not broker.running
    broker.start()
    up = time.monotonic()
    hub.wait_for(lambda: any(m.body["camera"] == "b" for m in hub.outputs("results")), 30, "camera b from the twin")
    assert time.monotonic() - up <= 15, "the twin's configuration took more than 15 s after edgeHub came up"
    status, document = hub.invoke("getStatus", timeout=10)
    assert status == 200 and set(document["cameras"]) == {"a", "b"}
    assert document["twin"]["state"] == "synced" and document["config"]["applied_version"] == version
    hub.wait_for(lambda: _reported(hub, "twin", "state") == "synced", 15, "twin: synced reported")
    assert second.stop() == 0
    assert "configuration: last known good" in second.stderr and "workload API at unix://" in second.stderr
    _nothing_lost(hub, first_local, second_local)


def test_a_rejected_key_stays_rejected_across_a_restart_and_nulling_it_applies_the_document(
    hub_factory, run_module, workload: WorkloadAPI, tmp_path: Path
) -> None:
    hub = hub_factory({"cameras": {"a": CAMERA}, "upstream": UPSTREAM})
    state, first_local, second_local = tmp_path / "state", tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first = _start(run_module, hub, workload, state, first_local)
    hub.wait_for(lambda: _reported(hub, "config", "applied_version") == 1, 60, "version 1 applied")
    wait_for(lambda: len(_local_results(first_local)) >= 3, 20, "results of the first run")
    assert first.stop() == 0
    # Written while the module was down: a valid change and a key the module does not know.
    bad = hub.set_desired({"model": {"score_threshold": 0.9}, "bogus": {"key": 1}})
    second = _start(run_module, hub, workload, state, second_local)
    hub.wait_for(lambda: _reported(hub, "config", "rejected_version") == bad, 60, "the rejection reported")
    config = _reported(hub, "config")
    assert config["applied_version"] == 1 and "bogus" in config["errors"] and "bogus" in config["last_error"]
    # The last good configuration keeps running, and no part of the rejected document applied.
    wait_for(lambda: len(_local_results(second_local)) >= 5, 20, "camera a running from last good")
    status, document = hub.invoke("getStatus", timeout=10)
    assert status == 200 and document["configuration"]["model"]["score_threshold"] == 0.3
    assert any(m.body["event"] == "config_rejected" for m in hub.outputs("events"))
    fixed = hub.patch_desired({"bogus": None})
    hub.wait_for(lambda: _reported(hub, "config", "applied_version") == fixed, 30, "the document applied")
    assert _reported(hub, "config", "rejected_version") is None
    assert hub.invoke("getStatus", timeout=10)[1]["configuration"]["model"]["score_threshold"] == 0.9
    assert second.stop() == 0
    _nothing_lost(hub, first_local, second_local)


def test_patches_queued_across_an_edgehub_restart_end_in_the_final_document(
    hub_factory, run_module, broker: Mosquitto, workload: WorkloadAPI, tmp_path: Path
) -> None:
    hub = hub_factory({"cameras": {"a": CAMERA}, "upstream": UPSTREAM})
    local = tmp_path / "local.jsonl"
    module = _start(run_module, hub, workload, tmp_path / "state", local)
    hub.wait_for(lambda: _reported(hub, "config", "applied_version") == 1, 60, "version 1 applied")
    # edgeHub restarts; the operator's two patches wait in IoT Hub's queue meanwhile.
    broker.stop()
    hub.patch_desired({"cameras": {"b": CAMERA}})
    final = hub.patch_desired({"cameras": {"a": None}, "model": {"score_threshold": 0.5}})
    time.sleep(3)
    broker.start()
    hub.wait_for(lambda: _reported(hub, "config", "applied_version") == final, 60, "the final document applied")
    status, document = hub.invoke("getStatus", timeout=10)
    assert status == 200 and set(document["cameras"]) == {"b"}
    assert document["configuration"]["model"]["score_threshold"] == 0.5
    _drained(hub)
    assert module.stop() == 0
    _nothing_lost(hub, local)


def test_reported_properties_after_a_restart_with_fewer_cameras_name_no_stale_camera(
    hub_factory, run_module, workload: WorkloadAPI, tmp_path: Path
) -> None:
    hub = hub_factory({"cameras": {"a": CAMERA, "b": CAMERA}, "upstream": UPSTREAM})
    state, first_local, second_local = tmp_path / "state", tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first = _start(run_module, hub, workload, state, first_local)
    hub.wait_for(lambda: set(_reported(hub, "cameras") or {}) == {"a", "b"}, 60, "both cameras reported")
    wait_for(lambda: len(_local_results(first_local)) >= 3, 20, "results of the first run")
    assert first.stop() == 0
    version = hub.set_desired({"cameras": {"b": None}})
    second = _start(run_module, hub, workload, state, second_local)
    hub.wait_for(lambda: _reported(hub, "config", "applied_version") == version, 60, "the new document applied")
    hub.wait_for(lambda: set(_reported(hub, "cameras") or {}) == {"a"}, 15, "no stale camera in reported")
    # Every camera's first state was an event, and each camera ran in the second run.
    states = [m.body for m in hub.outputs("events") if m.body["event"] == "camera_state"]
    assert any(e["camera"] == "a" and e["previous"] is None for e in states)
    wait_for(lambda: len(_local_results(second_local)) >= 3, 30, "results of the second run")
    assert second.stop() == 0
    _nothing_lost(hub, first_local, second_local)
