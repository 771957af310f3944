"""Liveness and readiness rules of a running pipeline (the /healthz and /readyz answers)."""

from __future__ import annotations

from collections.abc import Iterable

from edgevision.control import Probe
from edgevision.outcomes import WINDOW_S, Recent

# The supervisor ticks every half second; this long without one means the loop is stuck.
LIVENESS_S = 10.0
# A camera counts as producing frames if one arrived this recently.
FRAME_RECENT_S = 10.0
# Building inference stages (a TensorRT engine takes minutes) counts as alive this long.
BUILD_LIVENESS_S = 1800.0


def liveness(done: bool, last_tick: float, now: float, building_since: float | None = None) -> Probe:
    if done:
        return Probe(False, {"status": "stopped"})
    if building_since is not None and now - building_since < BUILD_LIVENESS_S:
        return Probe(True, {"status": "building", "seconds": round(now - building_since, 1)})
    age = now - last_tick
    if age > LIVENESS_S:
        return Probe(False, {"status": "stuck", "seconds_since_supervisor_tick": round(age, 1)})
    return Probe(True, {"status": "ok"})


def readiness(
    model_loaded: bool,
    last_frames: Iterable[tuple[str, float | None]],
    now: float,
    inference: Recent | None = None,
    results: Recent | None = None,
) -> Probe:
    """Ready when a model is loaded, a camera produced a frame recently, and neither inference nor
    the results sink is failing (over the last WINDOW_S, at least MIN_FAILED frames failed and
    more than half: edgevision.outcomes). `last_frames` holds each camera's last frame time
    (monotonic), None if it has produced none."""
    reasons = []
    if not model_loaded:
        reasons.append("model not loaded")
    for what, recent in (("inference", inference), ("the results sink", results)):
        if recent is not None and recent.failing:
            reasons.append(
                f"{what} failing: {recent.failed} of {recent.ok + recent.failed} frames in the last "
                f"{WINDOW_S} s ({recent.last_error})"
            )
    producing = sorted(camera for camera, at in last_frames if at is not None and now - at < FRAME_RECENT_S)
    if not producing:
        reasons.append(f"no camera produced a frame in the last {FRAME_RECENT_S:.0f} s")
    if reasons:
        return Probe(False, {"ready": False, "reasons": reasons})
    return Probe(True, {"ready": True, "cameras_producing": producing})
