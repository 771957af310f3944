"""The module with a damaged outbox file, an unwritable state folder, or a disk that fills while
edgeHub is away: it runs, says what happened (event, status, reported properties, metrics), and
loses nothing it did not count. Over each link (tests/support/links.py): IoT Hub through the
local edgeHub, and MQTT v5."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.links import HubLink, Link
from tests.support.waits import wait_for

pytestmark = pytest.mark.slow

DESIRED = {
    "cameras": {"syn": {"uri": "synthetic:160x120@20"}},
    "upstream": {"results_mode": "every_frame", "connection_retry_interval_s": 1, "report_min_interval_s": 0.2},
    "metrics_interval_s": 1,
}


def _events(link: Link, name: str) -> list[dict[str, Any]]:
    return [m.body for m in link.sent("events") if m.body.get("event") == name]


def _metrics_upstream(link: Link) -> dict[str, Any]:
    """The upstream part of the newest metrics message ({} before the first one)."""
    metrics = link.sent("metrics")
    return metrics[-1].body["upstream"] if metrics else {}


def _reported_upstream(link: Link) -> dict[str, Any] | None:
    """The twin's reported upstream section; None over MQTT (no twin: status and metrics say it)."""
    if isinstance(link, HubLink) and link.hub is not None:
        return link.hub.reported_now().get("upstream") or {}
    return None


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


def test_a_damaged_outbox_file_is_moved_aside_and_the_module_runs(link: Link, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "outbox.sqlite").write_bytes(b"\x00garbage, not SQLite" * 500)
    module = link.start(DESIRED, state_dir=state)
    wait_for(lambda: len(link.sent("results")) >= 20, 60, "results through a new outbox")
    wait_for(lambda: _events(link, "outbox_damaged"), 30, "the outbox_damaged event")
    event = _events(link, "outbox_damaged")[0]
    assert Path(event["moved_to"]).read_bytes().startswith(b"\x00garbage") and event["lost"] is None
    damaged = {"moved_to": event["moved_to"], "lost": None}
    if isinstance(link, HubLink):
        # A twin holds no null (it deletes): "lost" unknown is left out of the reported properties.
        wait_for(lambda: _reported_upstream(link)["outbox_damaged"] == {"moved_to": event["moved_to"]}, 30, "reported")
    wait_for(lambda: _metrics_upstream(link).get("outbox_damaged") == damaged, 30, "in metrics")
    _code, status = link.invoke("getStatus")
    assert status["upstream"]["outbox"]["damaged"]["moved_to"] == event["moved_to"]
    assert module.stop() == 0


def test_an_unwritable_state_folder_gives_a_memory_outbox(link: Link, mounted) -> None:
    state = mounted("size=1m,ro")
    module = link.start(DESIRED, state_dir=state)
    wait_for(lambda: len(link.sent("results")) >= 20, 60, "results through a memory outbox")
    wait_for(lambda: _events(link, "outbox_in_memory"), 30, "the outbox_in_memory event")
    if isinstance(link, HubLink):
        wait_for(lambda: _reported_upstream(link).get("outbox_persistent") is False, 30, "reported as not persistent")
    wait_for(lambda: _metrics_upstream(link).get("outbox_persistent") is False, 30, "in metrics")
    assert module.stop() == 0


def test_a_full_disk_is_counted_reported_and_bounded(link: Link, mounted, tmp_path: Path) -> None:
    state = mounted("size=1m")
    local = tmp_path / "local.jsonl"
    module = link.start(
        {**DESIRED, "cameras": {"syn": {"uri": "synthetic:160x120@40"}}},
        state_dir=state,
        env={"EDGEVISION_SINK__KIND": "jsonl", "EDGEVISION_SINK__PATH": str(local)},
    )
    wait_for(lambda: _metrics_upstream(link).get("outbox_queued") is not None, 60, "the module up")
    link.broker.stop()  # the broker away: results pile up in the outbox, on a 1 MB disk
    try:

        def full() -> bool:
            lines = local.read_text().splitlines() if local.exists() else []
            return any('"outbox_dropped"' in line and '"disk_full"' in line for line in lines)

        wait_for(full, 120, "the outbox_dropped event (disk_full) in the local copy")
    finally:
        link.broker.start()
    if isinstance(link, HubLink):
        wait_for(
            lambda: (_reported_upstream(link).get("outbox_dropped_by_reason") or {}).get("disk_full"), 60, "reported"
        )
    # Once the event is upstream the module is connected again (and subscribed to its commands:
    # over MQTT, a command sent before it is back reaches no one, as a direct method to an
    # offline device fails).
    wait_for(lambda: _events(link, "outbox_dropped"), 60, "the event upstream once the broker is back")
    _code, status = link.invoke("getStatus")
    outbox = status["upstream"]["outbox"]
    assert outbox["dropped"]["disk_full"] > 0 and outbox["disk_bytes"] < 2**20
    assert outbox["enqueued"] + outbox["inherited"] == outbox["sent"] + outbox["queued"] + sum(
        outbox["dropped"].values()
    )
    assert module.stop() == 0
