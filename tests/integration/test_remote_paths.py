"""Paths from the twin and direct methods stay inside the module's own folders, take effect when
they can, and say when they cannot (started as IoT Edge starts it, against the local edgeHub)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DESIRED = {
    "cameras": {"syn": {"uri": "synthetic:160x120@10"}},
    "upstream": {"connection_retry_interval_s": 1, "report_min_interval_s": 0.2},
}


def test_twin_paths_are_confined_to_the_state_folder(hub_factory, run_module, tmp_path: Path) -> None:
    state = tmp_path / "state"
    outside = tmp_path / "outside" / "results.jsonl"
    hub = hub_factory(DESIRED)
    module = run_module(hub, state_dir=state)
    hub.wait_for(lambda: (hub.reported.get("config") or {}).get("applied_version") == 1, 60, "the twin applied")
    # Outside the state folder: rejected, key by key, and nothing is created there.
    hub.patch_desired({"sink": {"kind": "jsonl", "path": str(outside)}})
    hub.wait_for(lambda: (hub.reported.get("config") or {}).get("rejected_version") == 2, 60, "the rejection")
    assert "sink/path" in hub.reported["config"]["errors"] and not outside.parent.exists()
    # Relative: inside the state folder, and live.
    hub.patch_desired({"sink": {"kind": "jsonl", "path": "results/out.jsonl"}})
    inside = state / "results" / "out.jsonl"
    hub.wait_for(lambda: inside.exists() and b'"type":"result"' in inside.read_bytes(), 60, "results in the new file")
    # A direct method is held to the same rule; a new outbox file is kept for the next start.
    status, answer = hub.invoke("applyConfig", {"upstream": {"outbox_path": "/var/tmp/outbox.sqlite"}})
    assert status == 400 and answer["errors"][0].startswith("upstream.outbox_path: the outbox file must be inside")
    status, answer = hub.invoke("applyConfig", {"upstream": {"outbox_path": "outbox-2.sqlite"}})
    assert status == 200 and answer["changes"]["needs_restart"] == ["upstream.outbox_path"]
    assert module.stop() == 0
