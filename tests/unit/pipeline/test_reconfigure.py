"""The reconfiguration plan: a pure function from the running and the new configuration."""

from __future__ import annotations

from typing import Any

from edgevision.config.load import merge, validate
from edgevision.pipeline import reconfigure as r

BASE: dict[str, Any] = {
    "cameras": {"a": {"uri": "rtsp://cam/a"}, "b": {"uri": "rtsp://cam/b", "target_fps": 5}},
    "model": {"score_threshold": 0.3},
}


def _plan(patch: dict[str, Any]) -> list[r.Action]:
    return r.plan(validate(BASE), validate(merge(BASE, patch)))


def test_nothing_changed_is_one_quiet_retune() -> None:
    actions = _plan({})
    assert [type(a) for a in actions] == [r.RetuneInference]
    assert r.describe(actions) == {"live": [], "restarted": []}


def test_thresholds_and_batching_wait_are_live() -> None:
    actions = _plan({"model": {"score_threshold": 0.8}, "inference": {"max_batch_wait_ms": 1}})
    (retune,) = actions
    assert isinstance(retune, r.RetuneInference)
    assert (retune.score_threshold, retune.max_batch_wait_s) == (0.8, 0.001)
    assert r.describe(actions) == {"live": ["thresholds/batching"], "restarted": []}


def test_engine_fields_and_a_new_model_rebuild_inference() -> None:
    for patch in (
        {"model": {"name": "yolox-s"}},
        {"inference": {"max_batch": 4}},
        {"inference": {"device_id": 1}},
        {"inference": {"tensorrt_cache_dir": "/data/trt"}},
    ):
        assert isinstance(_plan(patch)[0], r.RebuildInference), patch


def test_cameras_added_removed_restarted_or_retargeted() -> None:
    actions = _plan({"cameras": {"a": None, "b": {"target_fps": 2}, "c": {"uri": "rtsp://cam/c"}}})
    assert r.describe(actions) == {
        "live": ["camera b target_fps"],
        "restarted": ["camera a (removed)", "camera c (added)"],
    }
    restart = _plan({"cameras": {"a": {"uri": "rtsp://cam/a2"}}})
    assert [type(a) for a in restart] == [r.RetuneInference, r.RestartCamera]


def test_source_options_restart_every_camera_and_owners_get_their_actions() -> None:
    actions = _plan(
        {
            "sources": {"stall_timeout_s": 3},
            "sink": {"kind": "jsonl", "path": "/tmp/x.jsonl"},
            "upstream": {"results_mode": "summary"},
            "metrics_interval_s": 2,
        }
    )
    assert [type(a) for a in actions] == [
        r.RetuneInference,
        r.RestartAllCameras,
        r.ChangeMetricsInterval,
        r.ReopenSink,
        r.RetuneUpstream,
    ]
    assert r.describe(actions) == {
        "live": ["metrics_interval_s", "upstream"],
        "restarted": ["all cameras (source options)", "sink"],
    }


def test_zones_lines_masks_and_tracking_change_live_without_restarting_the_camera() -> None:
    from edgevision.config.load import validate as check
    from edgevision.pipeline.reconfigure import ReconfigureAnalytics, RestartCamera, describe, plan

    camera = {"uri": "rtsp://10.0.0.5/stream"}
    old = check({"cameras": {"gate": camera}})
    new = check({"cameras": {"gate": {**camera, "lines": {"road": {"points": "0,0.5 1,0.5"}}}}})
    actions = plan(old, new)
    assert ReconfigureAnalytics("gate") in actions and not any(isinstance(a, RestartCamera) for a in actions)
    assert describe(actions) == {"live": ["camera gate analytics"], "restarted": []}
    moved = check(
        {"cameras": {"gate": {**camera, "uri": "rtsp://10.0.0.6/stream", "lines": {"road": {"points": "0,0.5 1,0.5"}}}}}
    )
    assert describe(plan(new, moved))["restarted"] == ["camera gate"]


def test_the_upstream_section_is_live_and_the_mqtt_section_waits_for_the_next_start() -> None:
    actions = _plan({"upstream": {"results_mode": "every_frame", "connection_retry_interval_s": 2}})
    assert any(isinstance(a, r.RetuneUpstream) for a in actions)
    assert r.describe(actions) == {"live": ["upstream"], "restarted": []}
    # The broker, its credentials and topics are read when the link starts: said, not silently kept.
    changes = r.describe(_plan({"mqtt": {"enabled": True, "host": "broker.local"}}))
    assert changes["needs_restart"] == ["mqtt"]
    assert r.describe(_plan({"evidence": {"max_mb": 10}}))["needs_restart"] == ["evidence"]
    # A camera's evidence settings are live, as its other analytics are.
    live = r.describe(_plan({"cameras": {"a": {"evidence": {"enabled": True}}}}))
    assert "needs_restart" not in live and live["restarted"] == []
