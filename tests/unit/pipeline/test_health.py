"""Liveness and readiness rules."""

from __future__ import annotations

from edgevision.pipeline.health import FRAME_RECENT_S, LIVENESS_S, liveness, readiness


def test_liveness_is_the_supervisor_turning() -> None:
    assert liveness(False, last_tick=100.0, now=101.0).ok
    stuck = liveness(False, last_tick=100.0, now=100.0 + LIVENESS_S + 1)
    assert not stuck.ok and stuck.body["status"] == "stuck"
    assert liveness(True, last_tick=100.0, now=100.0).body == {"status": "stopped"}


def test_ready_needs_a_model_and_a_camera_with_a_recent_frame() -> None:
    now = 1000.0
    ready = readiness(True, [("a", now - 1), ("b", None)], now)
    assert ready.ok and ready.body["cameras_producing"] == ["a"]
    stale = readiness(True, [("a", now - FRAME_RECENT_S - 1)], now)
    assert not stale.ok and "no camera produced a frame" in stale.body["reasons"][0]
    assert readiness(False, [("a", now)], now).body["reasons"] == ["model not loaded"]
