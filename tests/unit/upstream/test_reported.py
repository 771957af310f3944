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


class SlowClient(Client):
    """Holds its first patch until released: a twin read can land while it is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.sending = threading.Event()
        self.release = threading.Event()

    def patch_twin_reported_properties(self, patch: dict[str, Any]) -> None:
        if not self.patches:
            self.sending.set()
            self.release.wait(5)
        super().patch_twin_reported_properties(patch)


def test_a_twin_read_while_a_patch_is_in_flight_still_removes_what_it_found() -> None:
    client = SlowClient()
    ready = threading.Event()
    reporter = Reporter(lambda: client, min_interval_s=0.05, ready=ready)
    ready.set()
    reporter.start()
    try:
        reporter.update({"cameras": {"a": {"state": "streaming"}}})
        wait_for(client.sending.is_set, 5, "the first patch in flight")
        # A reconnect reads the twin meanwhile: it still holds a camera of an earlier run.
        reporter.assume({"cameras": {"a": {"state": "streaming"}, "street": {"state": "streaming"}}})
        client.release.set()
        wait_for(lambda: {"cameras": {"street": None}} in client.patches, 5, "the stale camera removed")
    finally:
        reporter.stop()


def test_nothing_is_reported_before_the_link_is_ready() -> None:
    client = Client()
    ready = threading.Event()
    reporter = Reporter(lambda: client, min_interval_s=0.05, ready=ready)
    reporter.start()
    try:
        reporter.update({"cameras": {"a": {"state": "streaming"}}})
        assert not ready.wait(0.3) and client.patches == []
    finally:
        reporter.stop()
