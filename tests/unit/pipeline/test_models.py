"""Several models at once: cameras that name the same model share its engine and batch together,
results say which model made them, a camera moves to another model live with nothing lost, and
each model fails over on its own. Stand-in engines; the real models run in tests/integration."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from edgevision.config.load import validate
from edgevision.errors import ConfigError
from edgevision.inference.providers import CPU, CUDA
from edgevision.pipeline.pipeline import Pipeline
from tests.support.fakes import EVERY_FRAME, EngineFactory, EngineScript, frame_image, pipeline_seams, scripted_sources
from tests.support.sinks import CollectingSink
from tests.support.waits import wait_for


def _document(cameras: dict[str, tuple[int, str | None]], **sections: Any) -> dict[str, Any]:
    return {
        "cameras": {
            cid: {"uri": "synthetic:64x48@0", **EVERY_FRAME, "max_frames": count, **({"model": model} if model else {})}
            for cid, (count, model) in cameras.items()
        },
        "models": {"people": {"name": "people-model"}, "cars": {"name": "cars-model", "score_threshold": 0.5}},
        "metrics_interval_s": 3600,
        **sections,
    }


def test_cameras_batch_with_their_own_models_engine_and_results_say_which_model() -> None:
    engines = EngineFactory(script=EngineScript(on_gpu=True))
    frames = {cid: [frame_image(i, marked=True) for i in range(60)] for cid in ("a", "b", "c", "d")}
    sink = CollectingSink()
    document = _document(
        {"a": (60, "people"), "b": (60, "people"), "c": (60, "cars"), "d": (60, None)},
        inference={"max_batch": 4, "max_batch_wait_ms": 20},
    )
    pipeline = Pipeline(validate(document), sink, seams=pipeline_seams(engines, scripted_sources(frames), gpu=True))
    pipeline.start()
    assert pipeline.wait(30)
    # One engine per model in use, and only those.
    assert sorted(engines.models) == ["cars-model", "people-model", "yolox-nano"]
    results = sink.of_type("result")
    by_camera = {cid: {r["model"] for r in results if r["camera"] == cid} for cid in frames}
    assert by_camera == {"a": {"people-model"}, "b": {"people-model"}, "c": {"cars-model"}, "d": {"yolox-nano"}}
    for cid in frames:
        assert [r["seq"] for r in results if r["camera"] == cid] == list(range(60)), cid
    batches: dict[tuple[str, int], set[str]] = defaultdict(set)
    for r in results:
        batches[(r["model"], r["batch"]["id"])].add(r["camera"])
    # The two cameras of one model share batches; a batch never mixes models.
    assert any(cams == {"a", "b"} for (model, _), cams in batches.items() if model == "people-model")
    assert all(cams <= {"a", "b"} for (model, _), cams in batches.items() if model == "people-model")
    status = pipeline.status()
    assert status["models"]["people"]["cameras"] == ["a", "b"] and status["models"]["cars"]["model"] == "cars-model"
    assert pipeline.metrics_snapshot()["models"]["cars"]["provider"] == CUDA


def test_a_camera_moves_to_another_model_live_with_every_frame_in_order() -> None:
    engines = EngineFactory()
    count = 500
    frames = {"a": [frame_image(i) for i in range(count)], "b": [frame_image(i) for i in range(count)]}
    sink = CollectingSink()
    document = _document({"a": (count, "people"), "b": (count, None)}, inference={"workers": 2})
    for camera in document["cameras"].values():
        camera["every_frame"] = True
    config = validate(document)
    pipeline = Pipeline(config, sink, seams=pipeline_seams(engines, scripted_sources(frames, interval_s=0.002)))
    pipeline.start()
    wait_for(lambda: len([r for r in sink.of_type("result") if r["camera"] == "a"]) >= 50, 10, "results of a")
    loads = len(engines.loaded)
    moved = {**document, "cameras": {**document["cameras"], "a": {**document["cameras"]["a"], "model": "cars"}}}
    changes = pipeline.apply(validate(moved))
    # The new model's engine is built; the camera's source keeps running (nothing restarted for it).
    assert changes == {"live": ["camera a model"], "restarted": ["model people (removed)", "model cars (added)"]}
    assert engines.models[loads:] == ["cars-model"]
    assert pipeline.wait(30)
    results = [r for r in sink.of_type("result") if r["camera"] == "a"]
    assert [r["seq"] for r in results] == list(range(count))
    models = [r["model"] for r in results]
    switch = models.index("cars-model")
    assert set(models[:switch]) == {"people-model"} and set(models[switch:]) == {"cars-model"}
    assert pipeline.metrics_snapshot()["cameras"]["a"]["dropped"] == 0
    assert [r["seq"] for r in sink.of_type("result") if r["camera"] == "b"] == list(range(count))


def test_moving_a_camera_to_the_default_model_hands_over_every_batch_first() -> None:
    """The old model keeps serving its other camera, after a restage on the same engine."""
    engines = EngineFactory()
    count = 300
    frames = {cid: [frame_image(i) for i in range(count)] for cid in ("a", "b")}
    sink = CollectingSink()
    # Camera c keeps the default model loaded (a model no camera uses is not loaded at all).
    document = _document({"a": (count, "people"), "b": (count, "people"), "c": (count, None)}, inference={"workers": 2})
    frames["c"] = [frame_image(i) for i in range(count)]
    for camera in document["cameras"].values():
        camera["every_frame"] = True
    pipeline = Pipeline(
        validate(document), sink, seams=pipeline_seams(engines, scripted_sources(frames, interval_s=0.002))
    )
    pipeline.start()
    wait_for(lambda: len(sink.of_type("result")) >= 60, 10, "results")
    loads = len(engines.loaded)
    moved = {**document, "cameras": {**document["cameras"], "a": {**document["cameras"]["a"], "model": None}}}
    assert pipeline.apply(validate(moved)) == {"live": ["camera a model"], "restarted": []}
    # No engine was loaded for the move: both models were loaded already.
    assert len(engines.loaded) == loads
    assert pipeline.wait(30)
    for cid in ("a", "b", "c"):
        assert [r["seq"] for r in sink.of_type("result") if r["camera"] == cid] == list(range(count)), cid


def test_each_model_fails_over_on_its_own() -> None:
    engines = EngineFactory(
        script=EngineScript(on_gpu=True), by_model={"cars-model": EngineScript(on_gpu=True, fail_after=5)}
    )
    frames = {cid: [frame_image(i) for i in range(80)] for cid in ("a", "c")}
    sink = CollectingSink()
    document = _document(
        {"a": (80, None), "c": (80, "cars")}, inference={"provider": "cuda", "max_batch": 2, "gpu_retry_initial_s": 60}
    )
    pipeline = Pipeline(
        validate(document), sink, seams=pipeline_seams(engines, scripted_sources(frames, interval_s=0.003), gpu=True)
    )
    pipeline.start()
    assert pipeline.wait(30)
    (switch,) = sink.events("provider_switched")
    assert switch["model_key"] == "cars" and switch["provider"] == CPU
    status = pipeline.status()
    assert (
        status["models"]["cars"]["failover"]["on_fallback"]
        and not status["models"]["default"]["failover"]["on_fallback"]
    )
    assert {r["provider"] for r in sink.of_type("result") if r["camera"] == "a"} == {CUDA}
    assert sorted(r["seq"] for r in sink.of_type("result") if r["camera"] == "c") == list(range(80))


def test_a_camera_naming_an_undefined_model_or_too_many_models_is_refused() -> None:
    with pytest.raises(ConfigError, match="cameras name model\\(s\\) trucks that `models` does not define"):
        validate(_document({"a": (1, "trucks")}))
    many = _document({"a": (1, "people"), "c": (1, "cars"), "d": (1, None)}, inference={"max_engines": 2})
    with pytest.raises(ConfigError, match=r"3 models would be loaded at once.*max_engines is 2"):
        validate(many)
    with pytest.raises(ConfigError, match="not 'default'"):
        validate({"models": {"default": {"name": "x"}}})
