"""A user's own model through every entry point: `models inspect`, `detect`, `run` with a model per
camera, `POST /score`, and a twin patch that moves a camera to another model live."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from edgevision.module import Module
from tests.support.family_models import EXPECTED
from tests.support.processes import run_cli

TOKEN = "own-models-token-0123456789"


def test_models_inspect_names_each_family_and_why(family_models: dict[str, Path]) -> None:
    for name, family, layout in (
        ("ultralytics-dynamic", "ultralytics", None),
        ("end2end", "end2end", None),
        ("detr-ultralytics-topk", "detr", "ultralytics-topk"),
        ("rf-detr", "detr", "rf-detr"),
    ):
        done = run_cli("models", "inspect", str(family_models[name]), "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert (report["family"], report["layout"]) == (family, layout), report
        assert report["why"] and report["input"]["width"] == 416 and report["opset"] == 11
    dynamic = json.loads(run_cli("models", "inspect", str(family_models["ultralytics-dynamic"]), "--json").stdout)
    assert dynamic["batch"]["batches"] == "any (dynamic)" and dynamic["classes"]["names"][0] == "person"
    text = run_cli("models", "inspect", str(family_models["detr-postprocessed"]))
    assert text.returncode == 0 and "family: detr (layout postprocessed)" in text.stdout
    assert "give a labels file" in text.stdout


def test_a_file_of_no_known_family_is_told_in_plain_words(tmp_path: Path) -> None:
    from tests.support.onnx_shapes import shape_model

    path = shape_model(
        tmp_path / "classifier.onnx", [("x", "float32", [1, 3, 224, 224])], [("y", "float32", [1, 1000])]
    )
    done = run_cli("models", "inspect", str(path))
    assert done.returncode == 1 and "family: not recognised" in done.stdout and "--family" in done.stdout
    refused = run_cli("detect", "--model", str(path), str(path))
    assert refused.returncode == 1 and "does not fit any known family" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name", list(EXPECTED))
def test_detect_runs_each_family_from_its_file(
    family_models: dict[str, Path], images: dict[str, Path], name: str
) -> None:
    labels = (
        ("--labels", str(family_models[name].parent / "coco.txt")) if name in ("detr-postprocessed", "rf-detr") else ()
    )
    done = run_cli("detect", "--model", str(family_models[name]), *labels, str(images["astronaut"]))
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["model"] == name and any(d["label"] == "person" for d in document["detections"]), document


@pytest.mark.slow
def test_run_with_a_model_per_camera(family_models: dict[str, Path], videos: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    config = tmp_path / "config.yaml"
    clip = videos["traffic"]
    config.write_text(
        json.dumps(
            {
                "cameras": {
                    "road": {"uri": str(clip), "every_frame": True, "max_frames": 30, "model": "cars"},
                    "yard": {"uri": str(clip), "every_frame": True, "max_frames": 30},
                    "gate": {"uri": str(clip), "every_frame": True, "max_frames": 30, "model": "cars"},
                },
                "models": {"cars": {"path": str(family_models["end2end"]), "score_threshold": 0.4}},
                "model": {"path": str(family_models["ultralytics"])},
                "sink": {"kind": "jsonl", "path": str(out)},
                "http": {"enabled": False},
            }
        )
    )
    done = run_cli("run", "--config", str(config), timeout=240)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    results = [r for r in lines if r["type"] == "result"]
    for camera, model in (("road", "end2end"), ("gate", "end2end"), ("yard", "ultralytics")):
        mine = [r for r in results if r["camera"] == camera]
        assert [r["seq"] for r in mine] == list(range(30)), camera
        assert {r["model"] for r in mine} == {model}, camera
    assert any(d["label"] == "car" for r in results for d in r["detections"])
    started = next(e for e in lines if e["type"] == "event" and e["event"] == "started")
    assert started["models"] == {"default": "ultralytics", "cars": "end2end"}


def test_score_uses_the_configured_model_file(
    family_models: dict[str, Path], images: dict[str, Path], tmp_path: Path
) -> None:
    module = Module(
        {
            "cameras": {"syn": {"uri": "synthetic:320x240@5"}},
            "model": {
                "path": str(family_models["rf-detr"]),
                "labels": str(family_models["rf-detr"].parent / "coco.txt"),
            },
            "sink": {"kind": "jsonl", "path": str(tmp_path / "out.jsonl")},
            "http": {"bind": "127.0.0.1", "port": 0, "token": TOKEN},
        },
        environ={},
    )
    module.start()
    try:
        port = module.http.port  # type: ignore[union-attr]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/score",
            data=images["astronaut"].read_bytes(),
            method="POST",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/octet-stream"},
        )
        deadline = time.monotonic() + 30
        while module.pipeline is None or module.pipeline.model is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert answer["model"] == "rf-detr" and any(d["label"] == "person" for d in answer["detections"]), answer
        status = module.status()
        assert status["models"]["default"]["model"] == "rf-detr"
        assert status["model_verification"].startswith("no manifest: recognised as detr")
    finally:
        module.request_stop()
        module.wait(15)


@pytest.mark.slow
def test_a_twin_patch_moves_a_camera_to_its_own_model_live(
    hub_factory, family_models: dict[str, Path], videos: dict[str, Path], tmp_path: Path
) -> None:
    from tests.support.module_process import ModuleProcess

    model_dir = family_models["end2end"].parent
    desired = {
        "cameras": {"road": {"uri": f"file:{videos['traffic']}?loop=1", "every_frame": True}},
        "upstream": {"results_mode": "every_frame", "report_min_interval_s": 0.2},
    }
    hub = hub_factory(desired)
    module = ModuleProcess(hub, model_dir, state_dir=tmp_path / "state")
    try:

        def results() -> list[dict]:
            return [m.body for m in hub.outputs("results")]

        hub.wait_for(lambda: len(results()) >= 20, 60, "first results")
        # A file inside the model folder, named relative to it as a twin would.
        version = hub.patch_desired(
            {"models": {"cars": {"path": "end2end.onnx"}}, "cameras": {"road": {"model": "cars"}}}
        )
        hub.wait_for(lambda: hub.reported.get("config", {}).get("applied_version") == version, 60, "patch applied")
        hub.wait_for(lambda: sum(r["model"] == "end2end" for r in results()) >= 20, 60, "results of the new model")
        seen = results()
        # Every frame once and in order across the move, the old model's first, then the new one's.
        assert [r["seq"] for r in seen] == list(range(len(seen)))
        models = [r["model"] for r in seen]
        switch = models.index("end2end")
        assert set(models[:switch]) == {"yolox-nano"} and set(models[switch:]) == {"end2end"}
        hub.wait_for(lambda: "cars" in hub.reported_now().get("models", {}), 20, "models reported")
        assert hub.reported_now()["models"]["cars"] == {
            "model": "end2end",
            "provider": "CPUExecutionProvider",
            "cameras": "road",
        }
        # A model file outside the model folder is refused whole; the camera keeps its model.
        bad = hub.patch_desired(
            {"models": {"evil": {"path": "/etc/hostname.onnx"}}, "cameras": {"road": {"model": "evil"}}}
        )
        hub.wait_for(lambda: hub.reported.get("config", {}).get("rejected_version") == bad, 30, "rejection reported")
        assert "models.evil.path: a model file must be inside" in hub.reported_now()["config"]["last_error"]
        mark = len(results())
        hub.wait_for(lambda: len(results()) >= mark + 10, 30, "results after the rejection")
        assert {r["model"] for r in results()[mark:]} == {"end2end"}
    finally:
        assert module.stop() == 0


def test_doctor_checks_a_model_file_of_another_family(family_models: dict[str, Path], images: dict[str, Path]) -> None:
    done = run_cli(
        "doctor", "--json", "--model", str(family_models["ultralytics-dynamic"]), "--images", str(images["astronaut"])
    )
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    checks = {(c["name"], c["provider"]): c for c in document["checks"]}
    assert document["model"] == "ultralytics-dynamic"
    for name in ("reference", "io-binding", "batching", "graph-preprocessing", "throughput"):
        assert checks[(name, "CPUExecutionProvider")]["status"] == "pass", checks[(name, "CPUExecutionProvider")]
    # A fixed-batch export of a family that cannot be rewritten: batching is skipped, and says why.
    fixed = json.loads(run_cli("doctor", "--json", "--model", str(family_models["end2end"])).stdout)
    batching = next(c for c in fixed["checks"] if c["name"] == "batching" and c["provider"] == "CPUExecutionProvider")
    assert batching["status"] == "skip" and "fixed batch of 1" in batching["detail"]


@pytest.mark.slow
def test_the_benchmark_measures_a_model_file(family_models: dict[str, Path], assets: Path, tmp_path: Path) -> None:
    done = run_cli(
        "benchmark",
        "--quick",
        "--providers",
        "cpu",
        "--model",
        str(family_models["end2end"]),
        "--out",
        str(tmp_path),
        env={"EDGEVISION_ASSETS": str(assets)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "benchmark-cpu.json").read_text())
    assert (report["model"], report["model_family"]) == ("end2end", "end2end")
    cpu = report["providers"]["cpu"]
    assert "errors" not in cpu and [r["batch"] for r in cpu["limit"]] == [1]
    assert "fixed batch of 1" in report["batches_not_measured"]
    assert all(run["fps"] > 0 for run in cpu["edgevision"])
