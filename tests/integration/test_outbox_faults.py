"""The module with a damaged outbox file, an unwritable state folder, or a disk that fills while
edgeHub is away: it runs, says what happened (event, status, reported properties, metrics), and
loses nothing it did not count. Started as IoT Edge starts it, against the local edgeHub."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.edgehub import IoTHubSimulator, Mosquitto

pytestmark = pytest.mark.slow

DESIRED = {
    "cameras": {"syn": {"uri": "synthetic:160x120@20"}},
    "upstream": {"results_mode": "every_frame", "connection_retry_interval_s": 1, "report_min_interval_s": 0.2},
    "metrics_interval_s": 1,
}


def _events(hub: IoTHubSimulator, name: str) -> list[dict[str, Any]]:
    return [m.body for m in hub.outputs("events") if m.body.get("event") == name]


def _metrics_upstream(hub: IoTHubSimulator) -> dict[str, Any]:
    """The upstream part of the newest metrics message ({} before the first one)."""
    metrics = hub.outputs("metrics")
    return metrics[-1].body["upstream"] if metrics else {}


def _reported_upstream(hub: IoTHubSimulator) -> dict[str, Any]:
    return hub.reported_now().get("upstream") or {}


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Any]:
    """tmpfs mounts made as root: a tiny disk, or a read-only one."""
    made: list[Path] = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mount{len(made)}"
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True)
        made.append(point)
        return point

    yield mount
    for point in made:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_damaged_outbox_file_is_moved_aside_and_the_module_runs(hub_factory, run_module, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "outbox.sqlite").write_bytes(b"\x00garbage, not SQLite" * 500)
    hub = hub_factory(DESIRED)
    module = run_module(hub, state_dir=state)
    hub.wait_for(lambda: len(hub.outputs("results")) >= 20, 60, "results through a new outbox")
    hub.wait_for(lambda: _events(hub, "outbox_damaged"), 30, "the outbox_damaged event")
    event = _events(hub, "outbox_damaged")[0]
    assert Path(event["moved_to"]).read_bytes().startswith(b"\x00garbage") and event["lost"] is None
    damaged = {"moved_to": event["moved_to"], "lost": None}
    # A twin holds no null (it deletes): "lost" unknown is left out of the reported properties.
    hub.wait_for(
        lambda: _reported_upstream(hub).get("outbox_damaged") == {"moved_to": event["moved_to"]}, 30, "reported"
    )
    hub.wait_for(lambda: _metrics_upstream(hub).get("outbox_damaged") == damaged, 30, "in metrics")
    _code, status = hub.invoke("getStatus")
    assert status["upstream"]["outbox"]["damaged"]["moved_to"] == event["moved_to"]
    assert module.stop() == 0


def test_an_unwritable_state_folder_gives_a_memory_outbox(hub_factory, run_module, mounted) -> None:
    state = mounted("size=1m,ro")
    hub = hub_factory(DESIRED)
    module = run_module(hub, state_dir=state)
    hub.wait_for(lambda: len(hub.outputs("results")) >= 20, 60, "results through a memory outbox")
    hub.wait_for(lambda: _events(hub, "outbox_in_memory"), 30, "the outbox_in_memory event")
    hub.wait_for(lambda: _reported_upstream(hub).get("outbox_persistent") is False, 30, "reported as not persistent")
    hub.wait_for(lambda: _metrics_upstream(hub).get("outbox_persistent") is False, 30, "in metrics")
    assert module.stop() == 0


def test_a_full_disk_is_counted_reported_and_bounded(
    hub_factory, run_module, broker: Mosquitto, mounted, tmp_path: Path
) -> None:
    state = mounted("size=1m")
    hub = hub_factory({**DESIRED, "cameras": {"syn": {"uri": "synthetic:160x120@40"}}})
    local = tmp_path / "local.jsonl"
    module = run_module(
        hub, state_dir=state, env={"EDGEVISION_SINK__KIND": "jsonl", "EDGEVISION_SINK__PATH": str(local)}
    )
    hub.wait_for(lambda: _reported_upstream(hub).get("outbox_queued") is not None, 60, "the module up")
    broker.stop()  # edgeHub away: results pile up in the outbox, on a 1 MB disk
    try:

        def full() -> bool:
            lines = local.read_text().splitlines() if local.exists() else []
            return any('"outbox_dropped"' in line and '"disk_full"' in line for line in lines)

        hub.wait_for(full, 120, "the outbox_dropped event (disk_full) in the local copy")
    finally:
        broker.start()
    hub.wait_for(
        lambda: (_reported_upstream(hub).get("outbox_dropped_by_reason") or {}).get("disk_full"), 60, "reported"
    )
    _code, status = hub.invoke("getStatus")
    outbox = status["upstream"]["outbox"]
    assert outbox["dropped"]["disk_full"] > 0 and outbox["disk_bytes"] < 2**20
    assert outbox["enqueued"] + outbox["inherited"] == outbox["sent"] + outbox["queued"] + sum(
        outbox["dropped"].values()
    )
    hub.wait_for(lambda: _events(hub, "outbox_dropped"), 60, "the event upstream once edgeHub is back")
    assert module.stop() == 0
