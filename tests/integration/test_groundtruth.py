"""Counting against ground truth: the project's own clips (tests/support/groundtruth.py), sprites
cut from the assets' images on known paths, seen by the real model. Line counts by direction must
be exact, dwell within 0.5 s, and no id may switch where no object is hidden for longer than the
tracker's patience. Each hard case is also shown to be hard: with the setting that handles it
turned off, the count is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgevision.analytics.camera import CameraAnalytics
from edgevision.config.analytics import TrackingConfig
from edgevision.config.camera import CameraConfig
from tests.support import groundtruth as gt
from tests.support.processes import run_cli

CLIPS = gt.library()
PATIENCE = TrackingConfig().patience_frames


@pytest.fixture
def model_env(model_path: Path) -> dict[str, str]:
    return {"EDGEVISION_MODEL_DIR": str(model_path.parent)}


@pytest.fixture(scope="module")
def clips(assets: Path, model_path: Path) -> gt.ClipDetections:
    return gt.ClipDetections(assets, model_path)


def _play(
    clip: gt.Clip, clips: gt.ClipDetections, **settings: Any
) -> tuple[CameraAnalytics, list[dict[str, Any]], list]:
    camera = CameraConfig(id="cam", uri="synthetic:1280x720@0", lines=clip.lines, zones=clip.zones, **settings)
    events: list[dict[str, Any]] = []
    analytics = CameraAnalytics(camera, lambda name, details: events.append({"event": name, **details}))
    found = clips.of(clip)
    ids = []
    for frame, detections in enumerate(found):
        # The wall clock runs 3.6x faster than the clip, as a file played with every frame.
        result = analytics.process(detections, clips.labels, 1.8e9 + frame / gt.FPS / 3.6, gt.media_time(frame), frame)
        ids.append(result.track_ids or [])
    return analytics, events, ids


def _line_counts(analytics: CameraAnalytics) -> dict[str, dict[str, dict[str, int]]]:
    return analytics.snapshot()["lines"]


def _truth(clip: gt.Clip) -> dict[str, dict[str, dict[str, int]]]:
    return {line: {d: dict(c) for d, c in gt.truth_crossings(clip, line).items()} for line in clip.lines}


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_each_clip_counts_as_the_truth_says(name: str, clips: gt.ClipDetections) -> None:
    clip = CLIPS[name]
    analytics, events, ids = _play(clip, clips)
    assert _line_counts(analytics) == _truth(clip), clip.what
    for zone in clip.zones:
        visits = gt.truth_visits(clip, zone)
        entries = [e for e in events if e["event"] == "zone_enter" and e["zone"] == zone]
        exits = [e for e in events if e["event"] == "zone_exit" and e["zone"] == zone]
        assert len(entries) == len(visits) == len(exits)
        dwell_s = clip.zones[zone].get("dwell_s")
        for (_, entered, left), entry, leaving in zip(visits, entries, exits, strict=True):
            assert abs(entry["media_time_s"] - entered) <= 0.5
            assert abs(leaving["dwell_s"] - (left - entered)) <= 0.5
            if dwell_s is not None and left - entered >= dwell_s:
                dwell = [e for e in events if e["event"] == "dwell" and e["track_id"] == entry["track_id"]]
                assert len(dwell) == 1 and abs(dwell[0]["media_time_s"] - (entered + dwell_s)) <= 0.5
    for event in events:
        # Dated by the wall clock, timed by the clip, and placed by its frame.
        assert event["at"].endswith("Z") and isinstance(event["seq"], int)
        assert event["media_time_s"] == pytest.approx(event["seq"] / gt.FPS, abs=1e-3)
    found = clips.of(clip)
    identity = gt.identity(clip, clips.renderer, found, ids)
    if gt.longest_hidden(clip, clips.renderer) < PATIENCE:
        assert sum(identity.switches.values()) == 0 and identity.ids == identity.objects, identity


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        # Without finding the hidden one again by its motion, its crossing is lost.
        ("crossing", {"tracking": {"recover_distance": 0}}),
        ("crossing-depth", {"tracking": {"recover_distance": 0}}),
        # Hidden for longer than the patience: only taking the given-up track's side counts it.
        ("overtaking-slowly", {"lines": {"gate": {**gt.GATE["gate"], "inherit_s": 0}}}),
        # Frames alone do not hold a slow sway; the band does.
        ("sway-20px-8f", {"lines": {"gate": {**gt.GATE["gate"], "band": 0}}}),
        ("sway-12px-12f", {"lines": {"gate": {**gt.GATE["gate"], "band": 0}}}),
        ("flicker", {"lines": {"gate": {**gt.GATE["gate"], "band": 0}}}),
    ],
)
def test_each_hard_case_miscounts_without_what_handles_it(
    name: str, settings: dict[str, Any], clips: gt.ClipDetections
) -> None:
    clip = CLIPS[name]
    if "lines" in settings:
        clip = gt.Clip(clip.name, clip.frames, clip.actors, lines=settings.pop("lines"), zones=clip.zones)
    analytics, _, _ = _play(clip, clips, **settings)
    assert _line_counts(analytics) != _truth(clip)


def test_the_ids_of_a_track_never_exceed_the_ids_issued_its_result_reports(clips: gt.ClipDetections) -> None:
    """Counts are current in every result: the crossing clip's first results (no event yet)."""
    clip = CLIPS["crossing"]
    camera = CameraConfig(id="cam", uri="synthetic:1280x720@0", lines=clip.lines)
    analytics = CameraAnalytics(camera, lambda _name, _details: None)
    for frame, detections in enumerate(clips.of(clip)):
        result = analytics.process(detections, clips.labels, 1.8e9 + frame, gt.media_time(frame), frame)
        tracks = result.counts["tracks"]  # type: ignore[index]
        assert all(i is None or i <= tracks["ids_issued"] for i in result.track_ids or [])
        assert tracks["active"] >= sum(1 for i in result.track_ids or [] if i is not None)


@pytest.mark.slow
def test_a_file_played_faster_than_real_time_dwells_in_its_own_time(
    clips: gt.ClipDetections, model_env: dict[str, str], tmp_path: Path
) -> None:
    """The dwell clip as a file, through `edgevision run` and the real model with every frame:
    dwell and event times are the file's, whatever the speed it is played at."""
    clip = CLIPS["dwell"]
    video = gt.write_video(clip, clips.renderer, tmp_path / "dwell.avi")
    out = tmp_path / "out.jsonl"
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "cameras": {"lobby": {"uri": str(video), "every_frame": True, "zones": clip.zones}},
                "sink": {"kind": "jsonl", "path": str(out)},
                "http": {"enabled": False},
            }
        )
    )
    done = run_cli("run", "--config", str(config), env=model_env, timeout=240)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    results = [m for m in lines if m["type"] == "result"]
    assert [r["seq"] for r in results] == list(range(clip.frames))
    assert all(r["media_time_s"] == pytest.approx(r["seq"] / gt.FPS, abs=1e-3) for r in results)
    events = {
        m["event"]: m for m in lines if m["type"] == "event" and m["event"] in ("zone_enter", "dwell", "zone_exit")
    }
    ((_, entered, left),) = gt.truth_visits(clip, "queue")
    assert abs(events["zone_enter"]["media_time_s"] - entered) <= 0.5
    assert abs(events["dwell"]["media_time_s"] - (entered + clip.zones["queue"]["dwell_s"])) <= 0.5
    assert abs(events["zone_exit"]["dwell_s"] - (left - entered)) <= 0.5
    assert events["zone_exit"]["seq"] > events["dwell"]["seq"] > events["zone_enter"]["seq"]


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_the_default_mode_counts_as_every_frame_detection_does_at_15_fps(name: str, clips: gt.ClipDetections) -> None:
    """Motion-gated and interval detection (the tracker carrying the boxes between) against
    every-frame detection, the clip played as a live camera throttled to 15 fps: the same line
    counts by direction, zone entries and dwell events, from a third of the detections or fewer."""
    clip = CLIPS[name]
    every = gt.play(clip, clips, fps=15, detection={"mode": "every_frame"})
    gated = gt.play(clip, clips, fps=15)
    assert gated.analytics.snapshot()["lines"] == every.analytics.snapshot()["lines"]
    assert gated.analytics.snapshot()["zones"] == every.analytics.snapshot()["zones"]

    def dwell(played: gt.Played) -> list[int]:
        return [e["track_id"] for e in played.events if e["event"] == "dwell"]

    assert len(dwell(gated)) == len(dwell(every))
    assert gated.detected <= 0.4 * gated.frames and every.detected == every.frames


def test_the_capacity_benchmark_reports_each_mode_and_what_bounds_it(
    tmp_path: Path, clips: gt.ClipDetections, model_env: dict[str, str]
) -> None:
    """`edgevision benchmark --capacity` on a ground-truth clip as a live camera: every mode's cost
    and counts, decoding's cost (the floor no mode goes under) and every-frame detection's own
    counts with the camera joined a frame or two later."""
    clip = CLIPS["crossing"]
    video = gt.write_video(clip, clips.renderer, tmp_path / "crossing.avi")
    spec = tmp_path / "clips.json"
    spec.write_text(json.dumps({"gt-crossing": {"path": str(video), "lines": clip.lines, "zones": clip.zones}}))
    out = tmp_path / "results"
    done = run_cli("benchmark", "--capacity", "--clips", str(spec), "--out", str(out), env=model_env, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "capacity-cpu.json").read_text())
    runs = report["clips"]["gt-crossing"]
    truth = {"in": 1, "out": 1}
    for mode in ("every_frame", "interval", "motion"):
        assert runs[mode]["lines"] == {"gate": truth}, mode
        assert runs[mode]["count_difference"] == 0.0
    assert runs["every_frame"]["frames_detected"] == runs["every_frame"]["frames_published"]
    assert runs["motion"]["frames_detected"] <= 0.4 * runs["motion"]["frames_published"]
    # Decoding costs something, and less than detecting every frame on top of it.
    decode = runs["decode_core_s_per_camera_s"]
    assert 0 < decode < runs["every_frame"]["core_s_per_camera_s"]
    assert runs["decode_bound"] > 1.0
    assert report["decode_bound"] == pytest.approx(runs["decode_bound"], abs=0.02)  # from rounded figures
    # A synthetic clip counts its one crossing each way whichever frames a 15 fps camera takes.
    assert runs["reference_spread"] == 0.0
    text = (out / "capacity-cpu.md").read_text()
    assert "What bounds it" in text and "| gt-crossing | motion |" in text
    assert (out / "capacity-cpu.png").stat().st_size > 1000
