"""The pipeline on a (recorded) GPU: whatever batches it forms, for several models, across a
failover and back, and across a reconfiguration, no GPU session runs two input shapes.

The detector loader is the real one; only its sessions are the recording CPU sessions of
tests/support/sessions.py, so the GPU path runs as on a GPU, and ONNX Runtime computes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from edgevision.config.load import validate
from edgevision.detector.loader import DetectorLoader
from edgevision.inference.providers import CPU, CUDA
from edgevision.module import Module
from edgevision.pipeline.build import Seams
from edgevision.pipeline.pipeline import Pipeline
from tests.support.fakes import EVERY_FRAME, frame_image, scripted_sources
from tests.support.sessions import CUDA_FAILURE, FakeGpuSessions
from tests.support.sinks import CollectingSink
from tests.support.tiny_model import tiny_model
from tests.support.waits import wait_for


@pytest.fixture
def models(tmp_path: Path) -> dict[str, dict[str, str]]:
    documents = {}
    for name in ("tiny", "other"):
        path, manifest = tiny_model(tmp_path, name)
        documents[name] = {"path": str(path), "manifest": str(manifest)}
    return documents


def _pipeline(fake: FakeGpuSessions, frames: dict[str, list[Any]], interval_s: float, **document: Any) -> Pipeline:
    config = validate(
        {
            "cameras": {
                cid: {"uri": "synthetic:64x48@0", **EVERY_FRAME, "max_frames": len(f)} for cid, f in frames.items()
            },
            "metrics_interval_s": 3600,
            **document,
        }
    )
    seams = Seams(
        detector_loader=DetectorLoader(sessions=fake),
        source_factory=scripted_sources(frames, interval_s=interval_s),
        gpu_check=lambda _config: True,
    )
    return Pipeline(config, CollectingSink(), seams=seams)


def _frames(count: int) -> list[Any]:
    return [frame_image(i, size=(48, 64)) for i in range(count)]


def _gpu_batch_sizes(fake: FakeGpuSessions) -> set[int]:
    return {shape[0] for s in fake.gpu_sessions() for shape in s.shapes}


def test_the_pipelines_batches_of_several_models_never_mix_shapes_in_a_session(
    models: dict[str, dict[str, str]],
) -> None:
    fake = FakeGpuSessions()
    # Three cameras at different paces on two models: partial batches of every size.
    frames = {"a": _frames(120), "b": _frames(90), "c": _frames(60)}
    pipeline = _pipeline(
        fake,
        frames,
        0.002,
        model=models["tiny"],
        models={"second": models["other"]},
        cameras={
            "a": {"uri": "synthetic:64x48@0", **EVERY_FRAME, "max_frames": 120},
            "b": {"uri": "synthetic:64x48@0", **EVERY_FRAME, "max_frames": 90},
            "c": {"uri": "synthetic:64x48@0", **EVERY_FRAME, "max_frames": 60, "model": "second"},
        },
        inference={"provider": "cuda", "max_batch": 8, "gpu_mem_limit_mb": 300},
    )
    pipeline.start()
    assert pipeline.wait(60)
    results = pipeline.sink.of_type("result")
    assert len(results) == 270 and {r["provider"] for r in results} == {CUDA}
    assert fake.mixed() == []
    assert len(_gpu_batch_sizes(fake)) >= 3
    # The per-process limit: each model's sessions hold at most its half, all of them the whole.
    by_model: dict[str, int] = {}
    for session in fake.gpu_sessions():
        by_model[Path(session.model).stem] = (
            by_model.get(Path(session.model).stem, 0) + session.options["gpu_mem_limit"]
        )
    assert set(by_model) == {"tiny", "other"}
    assert all(total <= 150 * 2**20 for total in by_model.values())


def test_after_a_failover_and_back_to_the_gpu_each_session_still_sees_one_shape(
    models: dict[str, dict[str, str]],
) -> None:
    # GPU runs 40 to 42 fail as a CUDA error does: the CPU takes over, then the GPU comes back.
    fake = FakeGpuSessions(fail_run=lambda n, shape: 40 <= n <= 42)
    frames = {"a": _frames(20_000), "b": _frames(20_000)}
    pipeline = _pipeline(
        fake,
        frames,
        0.003,
        model=models["tiny"],
        inference={"provider": "cuda", "max_batch": 8, "gpu_retry_initial_s": 0.3, "gpu_retry_max_s": 0.3},
    )
    pipeline.start()
    try:
        sink = pipeline.sink
        wait_for(lambda: sink.events("provider_restored"), 30, "the GPU restored after the failover")
        on_gpu = len([r for r in sink.of_type("result") if r["provider"] == CUDA])
        wait_for(
            lambda: len([r for r in sink.of_type("result") if r["provider"] == CUDA]) > on_gpu + 100,
            30,
            "results on the restored GPU",
        )
    finally:
        pipeline.request_stop()
        pipeline.wait(30)
    events = [e["event"] for e in pipeline.sink.of_type("event")]
    assert events.index("provider_switched") < events.index("provider_restored")
    assert {r["provider"] for r in pipeline.sink.of_type("result")} == {CUDA, CPU}
    assert fake.mixed() == []
    # The restored GPU made new sessions, each for one shape again.
    assert len(fake.gpu_sessions()) > len(_gpu_batch_sizes(fake))


def test_a_reconfiguration_makes_new_sessions_of_one_shape_each(models: dict[str, dict[str, str]]) -> None:
    fake = FakeGpuSessions()
    frames = {"a": _frames(5000)}
    pipeline = _pipeline(fake, frames, 0.002, model=models["tiny"], inference={"provider": "cuda", "max_batch": 8})
    pipeline.start()
    try:
        wait_for(lambda: len(pipeline.sink.of_type("result")) > 50, 30, "results before the change")
        before = len(fake.gpu_sessions())
        document = pipeline.config.model_dump(mode="json")
        pipeline.apply(validate({**document, "inference": {**document["inference"], "max_batch": 4}}))
        mark = len(pipeline.sink.of_type("result"))
        wait_for(lambda: len(pipeline.sink.of_type("result")) > mark + 50, 30, "results after the change")
        assert len(fake.gpu_sessions()) > before
        assert fake.mixed() == []
        assert max(s.shapes[0][0] for s in fake.gpu_sessions()[before:]) <= 4
    finally:
        pipeline.request_stop()
        pipeline.wait(30)


def test_a_session_for_a_new_frame_size_that_fails_is_failed_over_and_nothing_is_lost(
    models: dict[str, dict[str, str]],
) -> None:
    # The GPU cannot run the second camera's frame size: made at that camera's first batch, on
    # the inference thread, its failure is a GPU failure like any other. (Batches of one: each
    # frame leads its batch, so the second size is always met.)
    fake = FakeGpuSessions(fail_run=lambda n, shape: shape[1:3] == (30, 40))
    frames = {"a": _frames(200), "b": [frame_image(i, size=(30, 40)) for i in range(200)]}
    pipeline = _pipeline(
        fake, frames, 0.002, model=models["tiny"], inference={"provider": "cuda", "preprocess": "graph", "max_batch": 1}
    )
    pipeline.start()
    assert pipeline.wait(60)
    results = pipeline.sink.of_type("result")
    assert sorted((r["camera"], r["seq"]) for r in results) == sorted(
        [("a", i) for i in range(200)] + [("b", i) for i in range(200)]
    )
    assert not [r for r in results if r.get("error")]
    (switched, *_) = pipeline.sink.events("provider_switched")
    assert "CUDA failure 700" in switched["reason"]
    assert fake.mixed() == []


def test_a_gpu_that_does_not_start_is_warned_once_per_model_and_the_start_line_does_not_repeat_it(
    models: dict[str, dict[str, str]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # CUDA loads but fails its first run: each model falls back to the CPU (and is laid out again).
    fake = FakeGpuSessions(fail_run=lambda n, shape: True)
    frames = {"a": _frames(10), "b": _frames(10), "c": _frames(10)}
    module = Module(
        {
            "model": models["tiny"],
            "models": {"second": models["other"]},
            "cameras": {
                "a": {"uri": "synthetic:64x48@0", **EVERY_FRAME, "max_frames": 10},
                "b": {"uri": "synthetic:64x48@0", **EVERY_FRAME, "max_frames": 10},
                "c": {"uri": "synthetic:64x48@0", **EVERY_FRAME, "max_frames": 10, "model": "second"},
            },
            "inference": {"provider": "cuda"},
            "http": {"enabled": False},
            "metrics_interval_s": 3600,
        },
        environ={"EDGEVISION_STATE_DIR": str(tmp_path / "state")},
        seams=Seams(
            detector_loader=DetectorLoader(sessions=fake),
            source_factory=scripted_sources(frames),
            gpu_check=lambda _config: True,
        ),
    )
    module.start()
    try:
        line = module.startup_summary()
    finally:
        module.request_stop()
        assert module.wait(30)
    warnings = [r.getMessage() for r in caplog.records if "not used, running on" in r.getMessage()]
    assert len(warnings) == 2 and all(CUDA_FAILURE in w for w in warnings)  # one per model
    assert "provider: CPUExecutionProvider (CUDAExecutionProvider not used: see the warning above)" in line
    assert CUDA_FAILURE not in line
