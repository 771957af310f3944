"""Tracking, lines and masks with the real model on a real clip, through the local edgeHub: a twin
patch adding a line takes effect without a restart, its crossings arrive on the `events` output
with their properties, counts ride on the results, and a mask hides what it covers in a snapshot."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.support.module_process import ModuleProcess

# The traffic clip's road, seen from above: cars cross this line both ways.
LINE = "0,0.6 1,0.6"
MASK = "0.02,0.02 0.4,0.02 0.4,0.4 0.02,0.4"


@pytest.mark.slow
def test_a_line_added_by_the_twin_counts_live_and_its_events_arrive_with_their_properties(
    hub_factory, model_path: Path, videos: dict[str, Path], tmp_path: Path
) -> None:
    desired = {
        "cameras": {"road": {"uri": f"file:{videos['traffic']}?loop=1", "masks": {"corner": {"polygon": MASK}}}},
        "upstream": {"results_mode": "every_frame", "report_min_interval_s": 0.2},
    }
    hub = hub_factory(desired)
    module = ModuleProcess(hub, model_path.parent, state_dir=tmp_path / "state")
    try:
        hub.wait_for(lambda: len(hub.outputs("results")) >= 10, 60, "first results")
        status, before = hub.invoke("getStatus")
        assert status == 200
        version = hub.patch_desired({"cameras": {"road": {"lines": {"gate": {"points": LINE}}}}})
        hub.wait_for(lambda: hub.reported.get("config", {}).get("applied_version") == version, 30, "line applied")

        def applied() -> list:
            return [m.body for m in hub.outputs("events") if m.body.get("event") == "config_applied"]

        # The event travels apart from the reported properties: it may arrive after them.
        hub.wait_for(lambda: bool(applied()), 30, "the config_applied event")
        assert applied()[-1]["changes"] == {"live": ["camera road analytics"], "restarted": []}

        def crossings() -> list:
            return [m for m in hub.outputs("events") if m.body.get("event") == "line_cross"]

        hub.wait_for(lambda: len(crossings()) >= 2, 90, "line crossings")
        message = crossings()[0]
        assert message.properties["type"] == "event" and message.properties["event"] == "line_cross"
        assert message.properties["camera"] == "road"
        event = message.body
        assert event["line"] == "gate" and event["direction"] in ("in", "out") and isinstance(event["track_id"], int)
        assert event["label"] in ("car", "truck", "bus", "motorcycle") and event["at"].endswith("Z")
        assert set(event["box"]) == {"x1", "y1", "x2", "y2"}
        # The patch took effect without a restart, and results carry track ids and the counts.
        status, after = hub.invoke("getStatus")
        assert after["started_at"] == before["started_at"] and module.proc.poll() is None
        gate = after["analytics"]["road"]["lines"]["gate"]
        assert sum(gate["in"].values()) + sum(gate["out"].values()) >= 2
        latest = hub.outputs("results")[-1].body
        assert "gate" in latest["counts"]["lines"] and all("track_id" in d for d in latest["detections"])
        # The mask: more than 16 px inside its border, the snapshot is black.
        status, shot = hub.invoke("snapshot", {"camera": "road"})
        assert status == 200, shot
        image = cv2.imdecode(np.frombuffer(base64.b64decode(shot["jpeg_base64"]), np.uint8), cv2.IMREAD_COLOR)
        height, width = image.shape[:2]
        inside = image[int(0.02 * height) + 17 : int(0.4 * height) - 17, int(0.02 * width) + 17 : int(0.4 * width) - 17]
        assert inside.size and inside.max() <= 2
        assert image[int(0.5 * height) :, :].mean() > 30
    finally:
        assert module.stop() == 0
