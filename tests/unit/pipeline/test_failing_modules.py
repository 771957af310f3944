"""A module that is not working says so: inference that fails, a results sink that cannot write,
and a live swap to a model that cannot run (stand-in engines, a real sink on /dev/full)."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgevision.config.load import validate
from edgevision.errors import BuildError
from edgevision.pipeline.pipeline import Pipeline
from edgevision.publish.sinks import JsonLinesSink
from tests.support.fakes import EVERY_FRAME, EngineFactory, EngineScript, frame_image, pipeline_seams, scripted_sources
from tests.support.sinks import CollectingSink
from tests.support.waits import wait_for


def _failing_after(runs: int):
    counter = itertools.count()

    def detector(batch: np.ndarray, out: np.ndarray) -> list[np.ndarray]:
        if next(counter) >= runs:
            raise RuntimeError("Non-zero status code returned while running Reshape node")
        out[...] = 0.0
        return [out]

    return detector


def _pipeline(engines: EngineFactory, sink: Any, **document: Any) -> Pipeline:
    frames = {"a": itertools.repeat(frame_image(1), 100_000)}
    config = validate(
        {"cameras": {"a": {"uri": "synthetic:64x48@0", **EVERY_FRAME}}, "metrics_interval_s": 3600, **document}
    )
    return Pipeline(config, sink, seams=pipeline_seams(engines, scripted_sources(frames, interval_s=0.002)))


def test_inference_that_fails_every_run_makes_the_module_not_ready_in_few_log_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    engines = EngineFactory(
        cpu_script=EngineScript(detector=_failing_after(5)), script=EngineScript(detector=_failing_after(5))
    )
    pipeline = _pipeline(engines, CollectingSink())
    pipeline.start()
    try:
        wait_for(lambda: not pipeline.readiness().ok and pipeline.model is not None, 20, "readiness to turn false")
        reasons = pipeline.readiness().body["reasons"]
        assert len(reasons) == 1 and reasons[0].startswith("inference failing:") and "Reshape node" in reasons[0]
        wait_for(lambda: pipeline.metrics_snapshot()["inference"]["failed_total"] > 100, 20, "more failures")
        snapshot = pipeline.metrics_snapshot()["inference"]
        assert snapshot["failing"] and "Reshape node" in snapshot["last_error"]
        assert pipeline.status()["readiness"]["ready"] is False
    finally:
        pipeline.request_stop()
        pipeline.wait(20)
    # A line for the first failure, not one a frame.
    assert len([r for r in caplog.records if "Reshape node" in r.getMessage()]) <= 2


def test_results_the_sink_cannot_write_are_counted_and_make_the_module_not_ready() -> None:
    sink = JsonLinesSink(Path("/dev/full"))
    pipeline = _pipeline(EngineFactory(), sink)
    pipeline.start()
    try:
        wait_for(lambda: not pipeline.readiness().ok, 20, "readiness to turn false")
        reason = pipeline.readiness().body["reasons"][0]
        assert reason.startswith("the results sink failing:") and "No space left on device" in reason
        written = pipeline.metrics_snapshot()["results_written"]
        assert written["failed_total"] >= 10 and written["ok_recent"] == 0
    finally:
        pipeline.request_stop()
        assert pipeline.wait(20)
    sink.close()  # never raises


def test_a_live_swap_to_a_model_that_cannot_run_is_refused_and_the_old_one_kept() -> None:
    engines = EngineFactory(by_model={"broken": EngineScript(detector=_failing_after(0))})
    sink = CollectingSink()
    pipeline = _pipeline(engines, sink)
    pipeline.start()
    try:
        wait_for(lambda: len(sink.of_type("result")) > 10, 10, "results on the first model")
        document = pipeline.config.model_dump(mode="json")
        with pytest.raises(BuildError, match=r"model broken fails its first run: .*Reshape node"):
            pipeline.apply(validate({**document, "model": {"name": "broken"}}))
        assert pipeline.config.model.name == "yolox-nano"
        mark = len(sink.of_type("result"))
        wait_for(lambda: len(sink.of_type("result")) > mark + 10, 10, "results on the kept model")
        assert {r["model"] for r in sink.of_type("result")[mark:]} == {"yolox-nano"}
    finally:
        pipeline.request_stop()
        pipeline.wait(20)
