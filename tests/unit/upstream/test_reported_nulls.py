"""A twin holds no null (a null in a patch deletes the key): a reported value that is None is
left out, or the reporter and the twin never agree and the same patch goes out again and again."""

from __future__ import annotations

import time
from typing import Any

from edgevision.config.load import merge
from edgevision.upstream.reported import Reporter


class Twin:
    """The reported side of a module twin: patches merged by JSON merge-patch rules, as IoT Hub does."""

    def __init__(self) -> None:
        self.reported: dict[str, Any] = {}
        self.patches: list[dict[str, Any]] = []

    def patch_twin_reported_properties(self, patch: dict[str, Any]) -> None:
        self.patches.append(patch)
        self.reported = merge(self.reported, patch)


def test_a_none_value_is_left_out_and_one_patch_is_enough() -> None:
    twin = Twin()
    reporter = Reporter(lambda: twin, min_interval_s=0.05)
    reporter.start()
    try:
        reporter.update({"upstream": {"outbox_damaged": {"moved_to": "/state/outbox.sqlite.damaged", "lost": None}}})
        time.sleep(0.5)
        reporter.assume(twin.reported)  # a twin read: what the twin holds
        time.sleep(0.5)
    finally:
        reporter.stop()
    assert twin.reported == {"upstream": {"outbox_damaged": {"moved_to": "/state/outbox.sqlite.damaged"}}}
    assert len(twin.patches) == 1, twin.patches
