"""Configuration: layers (file, environment, flags), validation, merge patches, --set."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgevision.config import load as configuration
from edgevision.errors import ConfigError


def test_configuration_layers_file_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "edgevision.yaml"
    path.write_text(
        "cameras:\n"
        "  front: {uri: 'rtsp://10.0.0.5/s1', target_fps: 5}\n"
        "  back: {uri: 'synthetic:640x480@10'}\n"
        "model: {score_threshold: 0.4}\n"
        "inference: {max_batch: 4}\n"
    )
    environ = {
        "EDGEVISION_MODEL__SCORE_THRESHOLD": "0.6",
        "EDGEVISION_METRICS_INTERVAL_S": "5",
        "EDGEVISION_MODEL_DIR": "/x",
    }
    config = configuration.load(path, overrides={"inference": {"provider": "cpu"}}, environ=environ)
    assert [c.id for c in config.cameras] == ["front", "back"]
    assert config.camera("front").target_fps == 5
    assert config.model.score_threshold == 0.6  # environment over file
    assert config.metrics_interval_s == 5
    assert (config.inference.max_batch, config.inference.provider) == (4, "cpu")


def test_validation_names_every_bad_field() -> None:
    with pytest.raises(ConfigError) as err:
        configuration.validate(
            {
                "cameras": [{"id": "a", "uri": "ftp://x"}, {"id": "b", "uri": "synthetic:64x64@5", "target_fps": -1}],
                "model": {"score_threshold": 1.5},
                "inference": {"provider": "opencl"},
                "sink": {"kind": "jsonl"},
                "surprise": 1,
            }
        )
    message = str(err.value)
    for field in (
        "cameras.0.uri",
        "cameras.1.target_fps",
        "model.score_threshold",
        "inference.provider",
        "sink",
        "surprise",
    ):
        assert field in message, field


def test_duplicate_camera_ids_are_rejected() -> None:
    with pytest.raises(ConfigError, match="duplicate camera id"):
        configuration.validate({"cameras": [{"id": "a", "uri": "0"}, {"id": "a", "uri": "1"}]})


def test_bad_configuration_files(tmp_path: Path) -> None:
    broken = tmp_path / "c.yaml"
    broken.write_text("cameras: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        configuration.read_file(broken)
    listing = tmp_path / "c.json"
    listing.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="mapping"):
        configuration.read_file(listing)
    with pytest.raises(ConfigError, match="cannot read"):
        configuration.read_file(tmp_path / "missing.yaml")


def test_merge_follows_json_merge_patch() -> None:
    base = {"model": {"name": "yolox-nano", "score_threshold": 0.3}, "metrics_interval_s": 10}
    merged = configuration.merge(base, {"model": {"score_threshold": 0.5}, "metrics_interval_s": None})
    assert merged == {"model": {"name": "yolox-nano", "score_threshold": 0.5}}
    assert base["model"]["score_threshold"] == 0.3


def test_a_null_in_a_section_the_base_lacks_is_dropped_not_kept() -> None:
    """`run --model FILE` with no configuration file: the flag's model section sets `path` and
    clears `name`; with no model section in the base, the null must not reach validation."""
    merged = configuration.merge({}, {"model": {"path": "mine.onnx", "name": None}})
    assert merged == {"model": {"path": "mine.onnx"}}
    assert configuration.validate(merged).model.spec == "mine.onnx"
    nested = configuration.merge({"cameras": [{"id": "a"}]}, {"cameras": {"b": {"uri": "x", "model": None}}})
    assert nested == {"cameras": {"b": {"uri": "x"}}}


def test_the_environment_variables_of_the_tools_are_not_configuration() -> None:
    environ = {
        "EDGEVISION_ASSETS": "/a",
        "EDGEVISION_CUDA_LIBS": "/b",
        "EDGEVISION_MODEL_DIR": "/c",
        "EDGEVISION_STATE_DIR": "/d",
        "EDGEVISION_CONFIG": "",
        "EDGEVISION_HTTP__PORT": "9700",
    }
    assert configuration.from_environment(environ) == {"http": {"port": 9700}}
    with pytest.raises(ConfigError, match="surprise"):
        configuration.load(environ={"EDGEVISION_SURPRISE": "1"})


def test_synthetic_frames_are_held_to_the_pixel_cap() -> None:
    # From the twin, synthetic:8192x8192 took the process to 1.7 GB.
    with pytest.raises(ConfigError, match=r"cameras.s.uri: synthetic frames of 8192x8192 are 67108864 pixels"):
        configuration.validate({"cameras": {"s": {"uri": "synthetic:8192x8192@30"}}})
    assert (
        configuration.validate({"cameras": {"s": {"uri": "synthetic:4000x3000@30"}}}).sources.max_frame_pixels
        == 12_000_000
    )
    with pytest.raises(ConfigError):
        configuration.validate(
            {"cameras": {"s": {"uri": "synthetic:1280x720"}}, "sources": {"max_frame_pixels": 10_000}}
        )
