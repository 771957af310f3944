"""What the twin or a direct method may name on disk: the module's own folders only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgevision.config.remote import Folders, confine
from edgevision.errors import ConfigError


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    made = Folders(tmp_path / "state", tmp_path / "models", tmp_path / "secrets")
    for folder in (made.state, made.models, made.secrets):
        folder.mkdir()
    return made


def test_relative_paths_land_in_their_folder(folders: Folders) -> None:
    document = {
        "sink": {"kind": "jsonl", "path": "results/out.jsonl"},
        "upstream": {"outbox_path": "outbox2.sqlite"},
        "model": {"name": "custom.onnx"},
        "cameras": {"front": {"uri": "rtsp://cam/x", "credentials": "file:front"}},
    }
    confined = confine(document, folders)
    assert confined["sink"]["path"] == str(Path(os.path.realpath(folders.state)) / "results" / "out.jsonl")
    assert confined["upstream"]["outbox_path"].startswith(os.path.realpath(folders.state))
    assert confined["model"]["name"].startswith(os.path.realpath(folders.models))
    assert confined["cameras"]["front"]["credentials"] == f"file:{os.path.realpath(folders.secrets)}/front"
    assert document["sink"]["path"] == "results/out.jsonl"  # the remote document itself is kept as sent


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"sink": {"path": "/etc/cron.d/job"}}, "sink.path"),
        ({"sink": {"path": "../../etc/passwd"}}, "sink.path"),
        ({"upstream": {"outbox_path": "/tmp/elsewhere.sqlite"}}, "upstream.outbox_path"),
        ({"inference": {"tensorrt_cache_dir": "/"}}, "inference.tensorrt_cache_dir"),
        ({"model": {"name": "/usr/lib/evil.onnx"}}, "model.name"),
        ({"model": {"manifest": "../state/m.json"}}, "model.manifest"),
        (
            {"cameras": {"a": {"uri": "http://x/", "credentials": "file:/data/state/http-token"}}},
            "cameras.a.credentials",
        ),
        ({"sink": {"path": "."}}, "sink.path"),  # the folder itself is no file
    ],
)
def test_paths_that_lead_elsewhere_are_refused(folders: Folders, document: dict, field: str) -> None:
    with pytest.raises(ConfigError) as raised:
        confine(document, folders)
    assert raised.value.problems[0].startswith(field + ":")


def test_a_symbolic_link_out_of_the_folder_is_followed_and_refused(folders: Folders, tmp_path: Path) -> None:
    (folders.state / "escape").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ConfigError, match=r"sink\.path"):
        confine({"sink": {"path": "escape/out.jsonl"}}, folders)


def test_manifest_model_names_are_not_paths(folders: Folders) -> None:
    assert confine({"model": {"name": "yolox-nano"}}, folders) == {"model": {"name": "yolox-nano"}}
