"""The module as a Control, stand-alone, with stand-in engines and scripted cameras."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgevision.errors import ConfigError, NotReady
from edgevision.module import Module
from tests.support.fakes import EngineFactory, frame_image, pipeline_seams, scripted_sources
from tests.support.waits import wait_for


@pytest.fixture
def module(tmp_path: Path) -> Iterator[Module]:
    # Endless enough; one image shown again and again (an iterator, not 100,000 arrays).
    frames = {"front": itertools.repeat(frame_image(1, marked=True), 100_000)}
    running = Module(
        {
            "cameras": {"front": {"uri": "rtsp://user:secret@cam/front"}},
            "sink": {"kind": "jsonl", "path": str(tmp_path / "first.jsonl")},
            "http": {"enabled": False},
            "metrics_interval_s": 3600,
        },
        environ={"EDGEVISION_STATE_DIR": str(tmp_path)},
        seams=pipeline_seams(EngineFactory(), scripted_sources(frames, interval_s=0.005)),
    )
    with pytest.raises(NotReady):
        running.status()
    assert not running.health().ok
    running.start()
    yield running
    running.request_stop()
    assert running.wait(10)


def test_the_control_views_of_a_running_module(module: Module) -> None:
    wait_for(lambda: module.readiness().ok, 10, "a camera producing frames")
    assert module.health().ok and module.camera_ids() == ["front"]
    status = module.status()
    assert status["upstream"]["mode"] is None and status["configuration"]["http"]["enabled"] is False
    assert status["cameras"]["front"]["uri"] == "rtsp://***@cam/front"
    snapshot = module.metrics_snapshot()
    buckets, _total = snapshot["latency_histograms"]["front"]
    assert buckets[-1][0] == "+Inf" and buckets[-1][1] == snapshot["cameras"]["front"]["inferred"]
    wait_for(lambda: module.snapshot("front", 50_000) is not None, 10, "a preview frame")
    with pytest.raises(KeyError):
        module.snapshot("back", 50_000)
    scored = module.score(frame_image(1, marked=True))
    assert scored["provider"] == "CPUExecutionProvider" and len(scored["detections"]) == 1


def test_a_patch_applies_whole_or_not_at_all(module: Module) -> None:
    before = (module.config, json.dumps(module.document, sort_keys=True))
    with pytest.raises(ConfigError) as err:
        module.apply_patch({"model": {"score_threshold": 0.5}, "metrics_interval_s": -1})
    assert err.value.problems == ["metrics_interval_s: Input should be greater than 0"]
    assert (module.config, json.dumps(module.document, sort_keys=True)) == before
    assert module.pipeline is not None and module.pipeline.config == before[0]
    assert module.config_status["last_error"] and "metrics_interval_s" in module.config_status["last_error"]
    changes = module.apply_patch({"model": {"score_threshold": 0.5}})
    assert changes == {"live": ["thresholds/batching"], "restarted": []}
    assert module.config.model.score_threshold == 0.5 == module.pipeline.config.model.score_threshold
    assert module.config_status["last_error"] is None
    with pytest.raises(ConfigError, match="a JSON object expected"):
        module.apply_patch(["not", "an", "object"])


def test_a_new_sink_takes_over_live(module: Module, tmp_path: Path) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    wait_for(lambda: first.exists() and first.stat().st_size > 0, 10, "results in the first file")
    changes = module.apply_patch({"sink": {"path": str(second)}})
    assert changes["restarted"] == ["sink"]
    wait_for(lambda: second.exists() and b'"type":"result"' in second.read_bytes(), 10, "results in the new file")
    size = first.stat().st_size
    wait_for(lambda: second.stat().st_size > 2000, 10, "more results")
    assert first.stat().st_size == size  # closed: nothing more goes there
    # Whole lines in both files.
    for path in (first, second):
        assert all(json.loads(line) for line in path.read_text().splitlines())


def test_scoring_before_start_is_not_ready() -> None:
    idle = Module({"http": {"enabled": False}}, environ={})
    with pytest.raises(NotReady):
        idle.score(np.zeros((8, 8, 3), np.uint8))
