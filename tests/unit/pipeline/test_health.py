"""Liveness and readiness rules."""

from __future__ import annotations

from edgevision.outcomes import WINDOW_S, Outcomes
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


def test_a_stage_failing_most_of_its_recent_frames_makes_the_module_not_ready() -> None:
    clock = [1000.0]
    inference, results = Outcomes(clock=lambda: clock[0]), Outcomes(clock=lambda: clock[0])
    inference.ok(5)
    inference.failed("inference failed: CUDA failure 700", 9)
    assert readiness(True, [("a", clock[0])], clock[0], inference.recent(), results.recent()).ok  # 9 < MIN_FAILED
    inference.failed("inference failed: CUDA failure 700", 1)
    probe = readiness(True, [("a", clock[0])], clock[0], inference.recent(), results.recent())
    assert not probe.ok
    assert probe.body["reasons"] == [
        f"inference failing: 10 of 15 frames in the last {WINDOW_S} s (inference failed: CUDA failure 700)"
    ]
    # Failures as many as successes are not "failing"; old ones age out of the window.
    results.ok(20)
    results.failed("the results sink failed: [Errno 28] No space left on device", 20)
    assert not results.recent().failing
    clock[0] += WINDOW_S + 1
    assert inference.recent().failed == 0 and inference.recent().total_failed == 10
    assert readiness(True, [("a", clock[0])], clock[0], inference.recent(), results.recent()).ok
