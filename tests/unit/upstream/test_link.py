"""The link's twin sync and reporting, with a stand-in for the connection (the real SDK against a
real broker is in tests/integration/test_twin_convergence.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from edgevision.config.model import AppConfig
from edgevision.upstream.link import EdgeLink
from tests.support.waits import wait_for


class TwinClient:
    def __init__(self, reported: dict[str, Any]) -> None:
        self.reported = reported
        self.patches: list[dict[str, Any]] = []

    def get_twin(self) -> dict[str, Any]:
        return {"desired": {"$version": 2}, "reported": self.reported}

    def patch_twin_reported_properties(self, patch: dict[str, Any]) -> None:
        self.patches.append(patch)


class UpConnection:
    """Connected from the start: the twin is read as soon as the link starts."""

    def __init__(self, client: TwinClient) -> None:
        self.client = client
        self.connected = threading.Event()
        self.on_connected: Callable[[], None] = lambda: None
        self.on_disconnected: Callable[[], None] = lambda: None
        self.stale_after_s = 30.0

    def start(self) -> None:
        self.connected.set()

    def subscribe(self, handlers: Mapping[str, Callable[..., None]]) -> None:
        pass

    def suspect(self, reason: str) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {}

    def shutdown(self, timeout_s: float = 5.0) -> None:
        pass


def test_a_twin_read_before_reporting_starts_still_removes_an_earlier_runs_cameras() -> None:
    # edgeHub answers before the pipeline is built: the twin is read first, reporting starts after.
    earlier = {"$version": 7, "cameras": {"a": {"state": "streaming"}, "b": {"state": "streaming"}}}
    client = TwinClient(earlier)
    config = AppConfig.model_validate({"upstream": {"report_min_interval_s": 0.1}})
    link = EdgeLink(config, {}, "run", connection=UpConnection(client))  # type: ignore[arg-type]
    link.start(on_method=lambda _r: None, on_desired_patch=lambda _p: None, on_desired=lambda _d: None)
    try:
        assert link.first_sync.wait(5)
        link.start_reporting(lambda: {"cameras": {"a": {"state": "streaming"}}})
        wait_for(lambda: client.patches, 5, "a reported patch")
        assert client.patches[0] == {"cameras": {"b": None}}
    finally:
        link.close(None)
