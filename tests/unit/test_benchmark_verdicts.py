"""The benchmark fails loudly when the pipeline loses to the naive loop or reaches under half its
binding ceiling, naming the stage that took the time (canned measurements)."""

from __future__ import annotations

from typing import Any

from edgevision.benchmark.run import failed_runs


def _run(fps: float, vs_naive: float, vs_binding: float) -> dict[str, Any]:
    return {
        "source": "video",
        "cameras": 1,
        "preprocess": "host",
        "fps": fps,
        "vs_naive": vs_naive,
        "vs_binding": vs_binding,
        "binding": "decode",
        "ceilings_fps": {"decode": 1185.0, "cpu_stages": 2400.0, "inference": 1166.0},
        "stages_ms_per_frame": {"preprocess": 0.9, "inference": 41.2, "postprocess": 0.3},
    }


def test_the_h200s_cuda_pipeline_would_have_failed() -> None:
    # 2026-12-04, H200: 33.2 fps, 0.20x the naive loop (167 fps), 2.8% of its binding ceiling.
    entry = {"naive": {"fps": 167.0}, "edgevision": [_run(33.2, 0.2, 0.028), _run(400.0, 2.4, 0.9)]}
    (failure,) = failed_runs("cuda", entry)
    assert failure.startswith("cuda pipeline, video x1, preprocess host: 33.2 fps = 0.20x the naive loop (167.0 fps)")
    assert "3% of its binding ceiling (decode, 1185.0 fps)" in failure
    assert failure.endswith("most time in inference: 41.2 ms a frame")


def test_a_run_that_beats_the_naive_loop_at_over_half_its_ceiling_passes() -> None:
    assert failed_runs("cpu", {"naive": {"fps": 50.0}, "edgevision": [_run(100.0, 2.0, 0.92)]}) == []
    # Under half the ceiling fails even when the naive loop is beaten.
    assert len(failed_runs("cpu", {"naive": {"fps": 20.0}, "edgevision": [_run(100.0, 5.0, 0.4)]})) == 1
