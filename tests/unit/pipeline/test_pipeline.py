"""Pipeline mechanics with stand-in engines and scripted cameras: ordering, batching, failover and
live reconfiguration, in well under a second each. The same behaviours run against the real model
in tests/integration."""

from __future__ import annotations

import itertools
import random
from typing import Any

from edgevision.config.load import validate
from edgevision.inference.providers import CPU, CUDA
from edgevision.pipeline.pipeline import Pipeline
from tests.support.fakes import (
    EVERY_FRAME,
    EngineFactory,
    EngineScript,
    frame_image,
    pipeline_seams,
    scripted_sources,
    stub_model,
)
from tests.support.sinks import CollectingSink
from tests.support.waits import wait_for


def _config(cameras: dict[str, int], **sections: Any):
    return validate(
        {
            "cameras": {
                cid: {"uri": "synthetic:64x48@0", **EVERY_FRAME, "max_frames": count} for cid, count in cameras.items()
            },
            "metrics_interval_s": 3600,
            **sections,
        }
    )


def _run(pipeline: Pipeline, timeout: float = 30) -> None:
    pipeline.start()
    assert pipeline.wait(timeout), "pipeline did not finish"


def test_results_stay_in_order_while_workers_finish_out_of_order() -> None:
    rng = random.Random(3)
    engines = EngineFactory(cpu_script=EngineScript(delay_s=lambda: rng.uniform(0, 0.004)))
    frames = {"a": [frame_image(i, marked=i % 3 == 0) for i in range(120)], "b": [frame_image(i) for i in range(80)]}
    sink = CollectingSink()
    config = _config({"a": 120, "b": 80}, inference={"workers": 3})
    _run(Pipeline(config, sink, seams=pipeline_seams(engines, scripted_sources(frames))))
    results = sink.of_type("result")
    for camera, count in (("a", 120), ("b", 80)):
        seqs = [r["seq"] for r in results if r["camera"] == camera]
        assert seqs == list(range(count)), camera
    # What each frame carried comes back on its own result: the marked ones, and only those.
    marked = {r["seq"] for r in results if r["camera"] == "a" and r["detections"]}
    assert marked == {i for i in range(120) if i % 3 == 0}
    final = sink.of_type("metrics")[-1]["cameras"]
    assert final["a"]["inferred"] == 120 and final["b"]["inferred"] == 80
    # Each camera's first state is an event too (a camera failing from its first second shows).
    first_states = {e["camera"] for e in sink.events("camera_state") if e["previous"] is None}
    assert first_states == {"a", "b"}


def test_batches_mix_cameras_on_a_gpu_layout() -> None:
    engines = EngineFactory(script=EngineScript(on_gpu=True))
    frames = {cid: [frame_image(i) for i in range(40)] for cid in ("a", "b", "c")}
    sink = CollectingSink()
    config = _config({"a": 40, "b": 40, "c": 40}, inference={"max_batch": 4, "max_batch_wait_ms": 20})
    pipeline = Pipeline(config, sink, seams=pipeline_seams(engines, scripted_sources(frames), gpu=True))
    _run(pipeline)
    results = sink.of_type("result")
    assert len(results) == 120 and {r["provider"] for r in results} == {CUDA}
    by_batch: dict[int, set[str]] = {}
    for r in results:
        by_batch.setdefault(r["batch"]["id"], set()).add(r["camera"])
    assert any(len(cameras) > 1 for cameras in by_batch.values())
    assert max(r["batch"]["size"] for r in results) == 4
    assert pipeline.status()["layout"] == {"workers": 1, "intra_op_threads": 0, "max_batch": 4}


def test_a_gpu_that_fails_is_replaced_by_the_cpu_nothing_lost_and_retried_with_backoff() -> None:
    engines = EngineFactory(script=EngineScript(on_gpu=True, fail_after=30))
    frames = {"cam": [frame_image(i) for i in range(600)]}
    sink = CollectingSink()
    config = _config(
        {"cam": 600}, inference={"provider": "cuda", "gpu_retry_initial_s": 0.3, "gpu_retry_max_s": 2, "max_batch": 2}
    )
    pipeline = Pipeline(
        config, sink, seams=pipeline_seams(engines, scripted_sources(frames, interval_s=0.003), gpu=True)
    )
    _run(pipeline, 60)
    results = sink.of_type("result")
    assert sorted(r["seq"] for r in results) == list(range(600))
    switched, restored = sink.events("provider_switched"), sink.events("provider_restored")
    assert len(switched) >= 2 and restored, [m["event"] for m in sink.of_type("event")]
    assert switched[0]["previous"] == CUDA and switched[0]["provider"] == CPU
    assert "CUDA failure 700" in switched[0]["reason"]
    assert (switched[0]["retry_gpu_in_s"], switched[1]["retry_gpu_in_s"]) == (0.3, 0.6)
    assert {r["provider"] for r in results} == {CUDA, CPU}
    failover = pipeline.status()["failover"]
    assert failover["switches"] >= 2 and failover["restores"] >= 1
    assert pipeline.metrics_snapshot()["provider_switches"] == len(switched) + len(restored)


def test_a_hung_gpu_run_is_abandoned_counted_and_the_rest_runs_on_the_cpu() -> None:
    engines = EngineFactory(script=EngineScript(on_gpu=True, fail_after=10, hang_s=5.0))
    frames = {"cam": [frame_image(i) for i in range(100)]}
    sink = CollectingSink()
    config = _config({"cam": 100}, inference={"provider": "cuda", "inference_timeout_s": 0.5, "max_batch": 2})
    pipeline = Pipeline(config, sink, seams=pipeline_seams(engines, scripted_sources(frames), gpu=True))
    _run(pipeline, 30)
    (switch,) = sink.events("provider_switched")
    assert "has not returned" in switch["reason"] and switch["provider"] == CPU
    seqs = [r["seq"] for r in sink.of_type("result")]
    assert seqs == sorted(seqs)
    lost = 100 - len(seqs)
    camera = pipeline.metrics_snapshot()["cameras"]["cam"]
    assert 0 < lost == switch["frames_abandoned"] == camera["dropped_by_reason"]["error"] <= 2


def test_live_changes_do_not_rebuild_the_engine_and_a_new_model_does_without_losing_frames() -> None:
    engines = EngineFactory()
    frames = {"a": [frame_image(i, marked=True) for i in range(400)], "b": [frame_image(i) for i in range(400)]}
    sink = CollectingSink()
    config = _config({"a": 400}, inference={"workers": 2})
    pipeline = Pipeline(config, sink, seams=pipeline_seams(engines, scripted_sources(frames, interval_s=0.002)))
    pipeline.start()
    wait_for(lambda: len(sink.of_type("result")) >= 20, 10, "results")
    loads = len(engines.loaded)
    document = config.model_dump(mode="json")
    live = validate({**document, "model": {**document["model"], "score_threshold": 0.95}})
    changes = pipeline.apply(live)
    assert changes == {"live": ["thresholds/batching"], "restarted": []} and len(engines.loaded) == loads
    mark = len(sink.of_type("result"))
    wait_for(lambda: len(sink.of_type("result")) >= mark + 20, 10, "results after the change")
    # Score 0.9 < 0.95: once the change is in, marked frames yield nothing.
    assert not sink.of_type("result")[-1]["detections"]
    added = validate(
        {**live.model_dump(mode="json"), "cameras": [*document["cameras"], {"id": "b", "uri": "synthetic:64x48@0"}]}
    )
    assert pipeline.apply(added) == {"live": [], "restarted": ["camera b (added)"]}
    rebuilt = validate({**added.model_dump(mode="json"), "model": {"name": "other", "score_threshold": 0.1}})
    assert pipeline.apply(rebuilt)["restarted"] == ["inference"] and len(engines.loaded) > loads
    assert pipeline.wait(30)
    seqs = [r["seq"] for r in sink.of_type("result") if r["camera"] == "a"]
    assert seqs == list(range(400))
    assert "provider" in [e["event"] for e in sink.of_type("event")]


def test_a_new_engine_that_cannot_be_built_changes_nothing() -> None:
    frames = {"a": itertools.repeat(frame_image(1), 10_000)}
    sink = CollectingSink()
    config = _config({"a": 10_000})

    def broken_models(model_config):
        if model_config.name == "broken":
            raise FileNotFoundError("no such model")
        return stub_model(model_config)

    engines = EngineFactory(resolver=broken_models)
    seams = pipeline_seams(engines, scripted_sources(frames, interval_s=0.002))
    pipeline = Pipeline(config, sink, seams=seams)
    pipeline.start()
    try:
        document = config.model_dump(mode="json")
        try:
            pipeline.apply(validate({**document, "model": {"name": "broken"}}))
        except FileNotFoundError:
            pass
        else:
            raise AssertionError("the broken model was applied")
        assert pipeline.config == config
        mark = len(sink.of_type("result"))
        wait_for(lambda: len(sink.of_type("result")) > mark + 10, 10, "results on the old engine")
    finally:
        pipeline.request_stop()
        assert pipeline.wait(10)


def test_on_a_gpu_every_batch_size_is_warmed_up_before_any_frame_reaches_inference() -> None:
    script = EngineScript(on_gpu=True)
    frames = {"cam": [frame_image(i, marked=True) for i in range(30)]}
    sink = CollectingSink()
    config = _config({"cam": 30}, inference={"max_batch": 8, "max_batch_wait_ms": 1})
    pipeline = Pipeline(
        config, sink, seams=pipeline_seams(EngineFactory(script=script), scripted_sources(frames), gpu=True)
    )
    _run(pipeline)
    warm = [size for size, zeros in script.log[:4] if zeros]
    assert warm == [1, 2, 4, 8], script.log[:6]
    # After the warm-up only frames ran (letterboxed frames are never all zeros).
    assert all(not zeros for _size, zeros in script.log[4:]) and len(sink.of_type("result")) == 30


def test_cuda_graphs_take_one_inference_worker_and_say_so() -> None:
    engines = EngineFactory(script=EngineScript(on_gpu=True))
    config = _config({"cam": 5}, inference={"workers": 3, "cuda_graph": True, "max_batch": 2})
    frames = {"cam": [frame_image(i) for i in range(5)]}
    pipeline = Pipeline(config, CollectingSink(), seams=pipeline_seams(engines, scripted_sources(frames), gpu=True))
    _run(pipeline)
    status = pipeline.status()
    assert status["layout"]["workers"] == 1 and status["provider"]["cuda_graph"]
    assert "CUDA graphs take one inference worker" in status["provider"]["declined"]["workers"]
    # Without graphs the asked-for workers stay.
    plain = _config({"cam": 5}, inference={"workers": 3, "max_batch": 2})
    other = Pipeline(
        plain,
        CollectingSink(),
        seams=pipeline_seams(EngineFactory(script=EngineScript(on_gpu=True)), scripted_sources(frames), gpu=True),
    )
    _run(other)
    assert other.status()["layout"]["workers"] == 3


def test_the_final_summary_says_how_many_frames_the_detector_saw() -> None:
    """`inferred` counts every published result; with frames carried by the tracker the summary
    says how many the detector saw, so 341 of 341 does not read as 341 detections."""
    from edgevision.status_line import summary_lines

    engines = EngineFactory(script=EngineScript(detector=None))
    frames = {"cam": [frame_image(i) for i in range(30)]}
    sink = CollectingSink()
    pipeline = Pipeline(
        validate({"cameras": {"cam": {"uri": "synthetic:64x48@0", "max_frames": 30}}}),
        sink,
        seams=pipeline_seams(engines, scripted_sources(frames)),
    )
    _run(pipeline, 30)
    snapshot = pipeline.metrics_snapshot()
    carried = snapshot["totals"]["carried"]
    assert carried > 0
    lines = summary_lines(snapshot)
    assert lines[0].startswith("edgevision: 30 frames inferred of 30 captured")
    assert f"the detector saw {30 - carried} of them; the tracker carried the boxes of {carried}" in lines[1]
