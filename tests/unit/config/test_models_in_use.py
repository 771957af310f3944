"""Only the models the cameras use are loaded: a model of one's own needs no other."""

from __future__ import annotations

from typing import Any

from edgevision.config.load import validate
from edgevision.config.model import DEFAULT_MODEL, ModelConfig
from edgevision.models.store import ResolvedModel
from edgevision.pipeline import reconfigure
from edgevision.pipeline.pipeline import Pipeline
from tests.support.fakes import EngineFactory, frame_image, pipeline_seams, scripted_sources, stub_model
from tests.support.sinks import CollectingSink

OWN = "/models/own.onnx"


def _config(*camera_models: str | None, frames: int | None = None) -> Any:
    cameras = {
        f"c{i}": {
            "uri": "synthetic:64x48@0",
            **({"model": model} if model else {}),
            **({"max_frames": frames} if frames else {}),
        }
        for i, model in enumerate(camera_models)
    }
    return validate({"models": {"own": {"path": OWN}}, "cameras": cameras, "metrics_interval_s": 3600})


def test_the_default_model_is_loaded_only_when_a_camera_uses_it() -> None:
    assert _config("own", "own").model_keys() == ["own"]
    assert _config(None, "own").model_keys() == [DEFAULT_MODEL, "own"]
    # A module with no camera yet (waiting for its twin) keeps the `model` section's for /score.
    assert _config().model_keys() == [DEFAULT_MODEL]


def test_a_pipeline_of_cameras_on_their_own_model_never_resolves_the_default() -> None:
    resolved: list[str] = []

    def resolver(config: ModelConfig) -> ResolvedModel:
        resolved.append(config.spec)
        return stub_model(config)

    frames = {"c0": [frame_image(i) for i in range(20)], "c1": [frame_image(i) for i in range(20)]}
    seams = pipeline_seams(EngineFactory(resolver=resolver), scripted_sources(frames))
    pipeline = Pipeline(_config("own", "own", frames=20), CollectingSink(), seams=seams)
    pipeline.start()
    assert pipeline.wait(30)
    assert resolved == [OWN]
    results = pipeline.sink.of_type("result")
    assert len(results) == 40 and {r["model"] for r in results} == {OWN}
    # POST /score and the top of /status describe the model in use.
    assert pipeline.model is not None and pipeline.model.name == OWN and pipeline.status()["model"] == OWN


def test_moving_the_last_camera_off_the_default_model_unloads_it() -> None:
    actions = reconfigure.plan(_config(None, "own"), _config("own", "own"))
    assert reconfigure.RemoveModel(DEFAULT_MODEL) in actions
    assert not [a for a in actions if isinstance(a, reconfigure.AddModel)]
