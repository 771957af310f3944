"""Tracking, lines and zones on synthetic scenes with exact ground truth: detections generated from
known paths with jitter, dropouts, low-confidence frames, occlusions and flicker. Counts must be
exact; flicker must add nothing; an occlusion within the patience must keep the id."""

from __future__ import annotations

from typing import Any

import pytest

from edgevision.analytics.camera import CameraAnalytics
from edgevision.config.camera import CameraConfig
from edgevision.models.manifest import find_manifest
from tests.support.scene import Mover, Scene

LABELS = find_manifest("yolox-nano").labels
PERSON, CAR = 0, 2


def _camera(**analytics: Any) -> CameraConfig:
    return CameraConfig(id="cam", uri="synthetic:640x480@0", **analytics)


def _run(scene: Scene, camera: CameraConfig) -> tuple[CameraAnalytics, list[dict[str, Any]], list[list[int | None]]]:
    events: list[dict[str, Any]] = []
    analytics = CameraAnalytics(camera, lambda name, details: events.append({"event": name, **details}))
    ids = []
    for frame in range(scene.frames):
        result = analytics.process(scene.detections(frame), LABELS, 1000.0 + frame / 10)
        ids.append(result.track_ids or [])
    return analytics, events, ids


LINE = {"gate": {"points": "0,0.5 1,0.5"}}  # drawn left to right: downwards is `in`


def test_crossings_are_counted_exactly_by_direction_despite_jitter_dropouts_and_weak_frames() -> None:
    down = [Mover(PERSON, (0.1 + 0.1 * i, 0.2), (0.15 + 0.1 * i, 0.85), 5 * i, 5 * i + 60) for i in range(6)]
    up = [Mover(PERSON, (0.2 + 0.2 * i, 0.9), (0.25 + 0.2 * i, 0.25), 10 + 7 * i, 80 + 7 * i) for i in range(3)]
    scene = Scene(down + up, frames=130, dropout=0.08, weak=0.15)
    analytics, events, ids = _run(scene, _camera(lines=LINE))
    crossings = [e for e in events if e["event"] == "line_cross"]
    assert sorted(e["direction"] for e in crossings).count("in") == 6
    assert sorted(e["direction"] for e in crossings).count("out") == 3 and len(crossings) == 9
    # Each object is one track from start to end: exactly nine ids were ever issued.
    issued = {i for frame in ids for i in frame if i is not None}
    assert len(issued) == 9 and analytics.snapshot()["tracks"]["ids_issued"] == 9
    counts = analytics.snapshot()["lines"]["gate"]
    assert counts == {"in": {"person": 6}, "out": {"person": 3}}
    event = crossings[0]
    assert event["camera"] == "cam" and event["line"] == "gate" and event["label"] == "person"
    assert event["at"].endswith("Z") and set(event["box"]) == {"x1", "y1", "x2", "y2"} and len(event["box_norm"]) == 4


def test_a_box_flickering_across_the_line_counts_nothing() -> None:
    # Standing on the line, its anchor one side then the other every frame, and every two frames.
    every_frame = Mover(PERSON, (0.3, 0.5), (0.3, 0.5), 0, 99, path=lambda f: (0.3, 0.5 + (0.01 if f % 2 else -0.01)))
    every_two = Mover(
        PERSON, (0.6, 0.5), (0.6, 0.5), 0, 99, path=lambda f: (0.6, 0.5 + (0.01 if f // 2 % 2 else -0.01))
    )
    _, events, _ = _run(Scene([every_frame, every_two], frames=100, dropout=0.0, jitter_px=0.5), _camera(lines=LINE))
    assert [e for e in events if e["event"] == "line_cross"] == []


def test_an_occlusion_within_the_patience_keeps_the_id_and_counts_once() -> None:
    # Hidden for 20 frames right where it crosses (patience 30).
    walker = Mover(PERSON, (0.5, 0.1), (0.5, 0.9), 0, 100, hidden=range(40, 60))
    _, events, ids = _run(Scene([walker], frames=101, dropout=0.0), _camera(lines=LINE))
    assert len({i for frame in ids for i in frame if i is not None}) == 1
    assert [e["direction"] for e in events if e["event"] == "line_cross"] == ["in"]


def test_an_occlusion_longer_than_the_patience_starts_a_new_track() -> None:
    walker = Mover(PERSON, (0.5, 0.1), (0.5, 0.9), 0, 100, hidden=range(40, 80))
    camera = _camera(lines=LINE, tracking={"patience_frames": 10})
    _, events, ids = _run(Scene([walker], frames=101, dropout=0.0), camera)
    assert len({i for frame in ids for i in frame if i is not None}) == 2
    # Its path across the line was not seen: not counted as a crossing.
    assert [e for e in events if e["event"] == "line_cross"] == []


def test_a_crossing_beside_the_segment_does_not_count() -> None:
    short = {"gate": {"points": "0,0.5 0.4,0.5"}}
    beside = Mover(PERSON, (0.7, 0.1), (0.7, 0.9), 0, 60)
    through = Mover(PERSON, (0.2, 0.1), (0.2, 0.9), 0, 60)
    _, events, _ = _run(Scene([beside, through], frames=61, dropout=0.0), _camera(lines=short))
    assert len([e for e in events if e["event"] == "line_cross"]) == 1


def _walk_in_and_out(frame: int) -> tuple[float, float]:
    """From y 0.1 into the zone (y 0.3-0.7) by frame 20, stays at 0.5, walks out from frame 70."""
    if frame < 20:
        return 0.5, 0.1 + 0.4 * frame / 20
    if frame < 70:
        return 0.5, 0.5
    return 0.5, max(0.1, 0.5 - 0.4 * (frame - 70) / 20)


def test_zones_count_entries_exits_occupancy_and_dwell_once_per_visit() -> None:
    zone = {"aisle": {"polygon": "0.3,0.3 0.7,0.3 0.7,0.7 0.3,0.7", "dwell_s": 3.0}}
    # Frames are 0.1 s apart. Passes through (2 s inside), visits (7 s, then leaves), stays to the end.
    passing = Mover(PERSON, (0.1, 0.5), (0.9, 0.5), 0, 40)
    visiting = Mover(PERSON, (0.5, 0.1), (0.5, 0.1), 0, 119, path=_walk_in_and_out)
    staying = Mover(PERSON, (0.45, 0.4), (0.55, 0.6), 30, 119)
    analytics, events, _ = _run(Scene([passing, visiting, staying], frames=120, dropout=0.05), _camera(zones=zone))
    names = [e["event"] for e in events]
    assert names.count("zone_enter") == 3 and names.count("zone_exit") == 2
    # Dwell: the visitor and the one staying (9 s), once each; the one passing (2 s) never.
    dwell = [e for e in events if e["event"] == "dwell"]
    assert len(dwell) == 2 and all(e["dwell_s"] >= 3.0 for e in dwell)
    exits = {e["track_id"]: e["dwell_s"] for e in events if e["event"] == "zone_exit"}
    assert sorted(exits.values()) == pytest.approx([2.0, 7.0], abs=0.3)
    counts = analytics.snapshot()["zones"]["aisle"]
    assert counts == {"occupancy": {"person": 1}, "entered": {"person": 3}, "exited": {"person": 2}}


def test_a_box_flickering_over_a_zone_edge_counts_nothing() -> None:
    zone = {"z": {"polygon": "0.3,0.3 0.7,0.3 0.7,0.7 0.3,0.7"}}

    def path(frame: int) -> tuple[float, float]:
        # Walks up to the zone's edge (y 0.1 to 0.25), then its anchor flickers over it every frame.
        return (0.5, 0.1 + 0.0075 * frame) if frame <= 20 else (0.5, 0.31 if frame % 2 else 0.29)

    edge = Mover(PERSON, (0.5, 0.1), (0.5, 0.3), 0, 80, path=path)
    _, events, _ = _run(Scene([edge], frames=81, dropout=0.0, jitter_px=0.0), _camera(zones=zone))
    assert [e["event"] for e in events] == []


def test_a_track_given_up_inside_a_zone_leaves_it() -> None:
    zone = {"z": {"polygon": "0.3,0.3 0.7,0.3 0.7,0.7 0.3,0.7"}}
    vanishing = Mover(PERSON, (0.5, 0.5), (0.5, 0.5), 0, 20)
    analytics, events, _ = _run(
        Scene([vanishing], frames=60, dropout=0.0), _camera(zones=zone, tracking={"patience_frames": 5})
    )
    assert [e["event"] for e in events] == ["zone_enter", "zone_exit"] and events[-1]["lost"] is True
    assert analytics.snapshot()["zones"]["z"]["occupancy"] == {}


def test_a_line_counts_only_its_classes() -> None:
    lines = {"road": {"points": "0,0.5 1,0.5", "classes": "car,truck"}}
    person = Mover(PERSON, (0.3, 0.1), (0.3, 0.9), 0, 60)
    car = Mover(CAR, (0.7, 0.9), (0.7, 0.1), 0, 60, size=(80, 50))
    _, events, _ = _run(Scene([person, car], frames=61, dropout=0.0), _camera(lines=lines))
    assert [(e["label"], e["direction"]) for e in events] == [("car", "out")]


def test_a_line_added_live_counts_from_then_on_and_the_others_keep_their_counts() -> None:
    walkers = [Mover(PERSON, (0.1 + 0.15 * i, 0.1), (0.1 + 0.15 * i, 0.9), 20 * i, 20 * i + 40) for i in range(4)]
    scene = Scene(walkers, frames=110, dropout=0.0)
    events: list[dict[str, Any]] = []
    analytics = CameraAnalytics(_camera(lines=LINE), lambda n, d: events.append({"event": n, **d}))
    for frame in range(scene.frames):
        if frame == 45:
            analytics.reconfigure(_camera(lines={**LINE, "upper": {"points": "0,0.3 1,0.3"}}))
        analytics.process(scene.detections(frame), LABELS, frame / 10)
    lines = analytics.snapshot()["lines"]
    assert lines["gate"] == {"in": {"person": 4}, "out": {}}
    # Walkers 0 and 1 crossed y=0.3 (frames 10 and 30) before the line existed: only 2 and 3 count.
    assert lines["upper"]["in"] == {"person": 2}


@pytest.mark.parametrize("anchor", ["center", "top_center", "bottom_left", "bottom_right"])
def test_each_anchor_point_decides_where_a_box_is(anchor: str) -> None:
    # A tall box whose bottom crosses the line but whose top never does: only bottom anchors count.
    lines = {"gate": {"points": "0,0.5 1,0.5", "anchor": anchor}}
    mover = Mover(PERSON, (0.5, 0.3), (0.5, 0.7), 0, 40, size=(40, 300))
    _, events, _ = _run(Scene([mover], frames=41, dropout=0.0, jitter_px=0.0), _camera(lines=lines))
    crossed = bool([e for e in events if e["event"] == "line_cross"])
    # Bottom anchors go from y=0.3 to 0.7; the centre from 0.3 - 150/480 ~ -0.01 to 0.39; the top stays above.
    assert crossed == (anchor in ("bottom_left", "bottom_right"))


def test_the_tracks_followed_at_once_are_bounded() -> None:
    """A stream reporting thousands of objects cannot make matching grow without bound."""
    import numpy as np

    from edgevision.analytics.tracker import MAX_TRACKS, Tracker
    from edgevision.config.analytics import TrackingConfig

    tracker = Tracker(TrackingConfig())
    grid = np.stack(np.meshgrid(np.arange(40), np.arange(30)), axis=-1).reshape(-1, 2).astype(np.float32) * 20
    boxes = np.concatenate([grid, grid + 10], axis=1)  # 1,200 boxes apart from each other
    scores, classes = np.full(len(boxes), 0.9, np.float32), np.zeros(len(boxes), np.int64)
    for _ in range(3):
        ids, _, _ = tracker.update(boxes, scores, classes)
    assert len(tracker.tracks) <= MAX_TRACKS and sum(i is not None for i in ids) <= MAX_TRACKS


def test_matching_takes_mutual_best_pairs_at_once_and_equals_the_plain_greedy_order() -> None:
    import numpy as np

    from edgevision.analytics.tracker import greedy_match

    def plain(overlap: np.ndarray, least: float) -> set[tuple[int, int]]:
        pairs, rows, cols = set(), set(), set()
        for index in np.argsort(-overlap, axis=None, kind="stable"):
            r, c = divmod(int(index), overlap.shape[1])
            if overlap[r, c] < least:
                break
            if r not in rows and c not in cols:
                pairs.add((r, c))
                rows.add(r)
                cols.add(c)
        return pairs

    rng = np.random.default_rng(4)
    for _ in range(200):
        overlap = rng.random((rng.integers(1, 12), rng.integers(1, 12))) * rng.random()
        assert set(greedy_match(overlap, 0.2)) == plain(overlap, 0.2)


def test_the_counts_in_every_result_are_those_of_its_own_frame() -> None:
    """No zone or line event fires, yet tracks come and go: each result's `counts.tracks` says
    so (it was recomputed only when an event fired, so it said 1 active with nothing in view)."""
    # Walks beside the line (never crosses it), then leaves the frame; a second one comes later.
    first = Mover(PERSON, (0.2, 0.1), (0.2, 0.4), 0, 30)
    second = Mover(PERSON, (0.7, 0.1), (0.7, 0.4), 80, 110)
    scene = Scene([first, second], frames=150, dropout=0.0, weak=0.0)
    analytics = CameraAnalytics(_camera(lines=LINE), lambda _n, _d: None)
    tracks = []
    for frame in range(scene.frames):
        result = analytics.process(scene.detections(frame), LABELS, 1000.0 + frame / 10, frame / 10, frame)
        tracks.append(dict(result.counts["tracks"]))  # type: ignore[index]
        assert all(i is None or i <= tracks[-1]["ids_issued"] for i in result.track_ids or [])
    patience = CameraConfig(id="x", uri="synthetic:64x48@0").tracking.patience_frames
    assert tracks[10] == {"active": 1, "ids_issued": 1}
    assert tracks[30 + patience + 2] == {"active": 0, "ids_issued": 1}
    assert tracks[100] == {"active": 1, "ids_issued": 2}
    assert tracks[-1] == {"active": 0, "ids_issued": 2}


@pytest.mark.parametrize(("amplitude", "counted"), [(0.02, 0), (0.06, 5)])
def test_a_side_changes_only_beyond_the_band_however_slow_the_sway(amplitude: float, counted: int) -> None:
    """Swaying across the line, 8 frames a side: within the band (a tenth of the box's size, here
    14 px or 0.03 of the height) it counts nothing; beyond it every swing is a real crossing."""

    def path(frame: int) -> tuple[float, float]:
        return (0.5, 0.5 + (amplitude if frame >= 48 or frame // 8 % 2 else -amplitude))

    sway = Mover(PERSON, (0.5, 0.5), (0.5, 0.5), 0, 79, size=(100, 200), path=path)
    _, events, _ = _run(Scene([sway], frames=80, dropout=0.0, weak=0.0, jitter_px=0.5), _camera(lines=LINE))
    assert len([e for e in events if e["event"] == "line_cross"]) == counted


@pytest.mark.parametrize(("inherit_s", "counted"), [(2.0, 1), (0, 0)])
def test_a_track_given_up_at_the_line_hands_its_side_to_the_one_born_there(inherit_s: float, counted: int) -> None:
    """Hidden for 35 frames (longer than the patience of 30) while crossing: the track is given
    up and a new one is born on the far side, within a box's size of where the old one was last
    seen; taking the old one's side counts the crossing once."""
    walker = Mover(PERSON, (0.5, 0.35), (0.5, 0.65), 0, 99, size=(60, 120), hidden=range(45, 80))
    lines = {"gate": {**LINE["gate"], "inherit_s": inherit_s}}
    analytics, events, _ids = _run(Scene([walker], frames=100, dropout=0.0, weak=0.0), _camera(lines=lines))
    assert analytics.snapshot()["tracks"]["ids_issued"] == 2  # the patience ran out: a new id
    assert [e["direction"] for e in events if e["event"] == "line_cross"] == ["in"] * counted
