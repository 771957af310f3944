"""Reported properties: only differences are sent; what an earlier run left is removed."""

from __future__ import annotations

import threading
from typing import Any

from edgevision.upstream.reported import Reporter, merge_patch
from tests.support.waits import wait_for


class Client:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def patch_twin_reported_properties(self, patch: dict[str, Any]) -> None:
        self.patches.append(patch)


def test_merge_patch_nulls_removed_keys_and_sends_only_changes() -> None:
    old = {"cameras": {"a": {"state": "streaming"}, "b": {"state": "failed"}}, "module": {"version": "1"}}
    new = {"cameras": {"a": {"state": "streaming"}}, "module": {"version": "2"}}
    assert merge_patch(old, new) == {"cameras": {"b": None}, "module": {"version": "2"}}


def test_a_restart_rewrites_reported_from_the_real_state_without_stale_cameras() -> None:
    client = Client()
    ready = threading.Event()
    reporter = Reporter(lambda: client, min_interval_s=0.1, ready=ready)
    reporter.start()
    try:
        reporter.update({"cameras": {"a": {"state": "streaming"}}, "config": {"applied_version": 3}})
        # What the twin holds from the previous run, read with the twin before anything is sent.
        reporter.assume({"$version": 9, "cameras": {"street": {"state": "streaming"}, "a": {"state": "failed"}}})
        ready.set()
        wait_for(lambda: client.patches, 5, "a patch")
        assert client.patches[0] == {
            "cameras": {"street": None, "a": {"state": "streaming"}},
            "config": {"applied_version": 3},
        }
    finally:
        reporter.stop()
