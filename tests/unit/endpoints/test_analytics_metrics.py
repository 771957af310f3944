"""Analytics counts in the Prometheus exposition: line crossings by direction and label, zone
entries and occupancy (a zone that empties reads 0, not "no data")."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from edgevision.endpoints.prometheus import registry_for
from tests.support.control import StandInControl


class CountingControl(StandInControl):
    def metrics_snapshot(self) -> dict[str, Any]:
        snapshot = super().metrics_snapshot()
        snapshot["analytics"] = {
            "front": {
                "lines": {"gate": {"in": {"car": 12, "truck": 1}, "out": {"car": 3}}},
                "zones": {"aisle": {"occupancy": {"person": 2}, "entered": {"person": 5, "forklift": 1}, "exited": {}}},
                "tracks": {"active": 4, "ids_issued": 9},
                "dropped_by_mask": 0,
            }
        }
        return snapshot


def test_crossings_entries_and_occupancy_are_exposed_by_camera_and_label() -> None:
    text = generate_latest(registry_for(CountingControl())).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    crossings = {
        (s.labels["camera"], s.labels["line"], s.labels["direction"], s.labels["label"]): s.value
        for s in families["edgevision_line_crossings"].samples
        if s.name == "edgevision_line_crossings_total"
    }
    assert crossings == {
        ("front", "gate", "in", "car"): 12,
        ("front", "gate", "in", "truck"): 1,
        ("front", "gate", "out", "car"): 3,
    }
    occupancy = {(s.labels["zone"], s.labels["label"]): s.value for s in families["edgevision_zone_occupancy"].samples}
    assert occupancy == {("aisle", "person"): 2, ("aisle", "forklift"): 0}
    entries = {
        s.labels["label"]: s.value for s in families["edgevision_zone_entries"].samples if s.name.endswith("_total")
    }
    assert entries == {"person": 5, "forklift": 1}
    assert [s.value for s in families["edgevision_tracks_active"].samples] == [4]
