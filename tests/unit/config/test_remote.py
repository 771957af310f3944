"""What the twin or a direct method may name: on disk the module's own folders only; as a camera, no
local source unless allowed; a camera's credentials only to the hosts the local configuration allows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgevision.config.load import validate
from edgevision.config.remote import Folders, Policy, confine
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


LOCAL = {
    "cameras": {
        "front": {"uri": "rtsp://10.0.0.5/stream1", "credentials": "env:FRONT_CAMERA"},
        "clip": {"uri": "/media/clips/yard.mp4"},
    }
}


def _policy(**remote: object) -> Policy:
    return Policy.of(validate({**LOCAL, "remote": remote} if remote else LOCAL))


def _refused(document: dict, folders: Folders, policy: Policy, under: dict = LOCAL) -> str:
    with pytest.raises(ConfigError) as refused:
        confine(document, folders, policy, under)
    return str(refused.value)


@pytest.mark.parametrize(
    "uri",
    ["/etc/hostname", "file:/etc/passwd", "/var/lib", "/dev/video0", "usb:0", "synthetic:8192x8192@30"],
)
def test_a_remote_camera_may_not_name_a_local_source_by_default(folders: Folders, uri: str) -> None:
    message = _refused({"cameras": {"x": {"uri": uri}}}, folders, _policy())
    assert "cameras.x.uri: a twin or method may not name a local source" in message
    assert "remote.local_sources" in message


def test_local_sources_the_local_configuration_allows(folders: Folders, tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    (clips / "day").mkdir(parents=True)
    policy = _policy(local_sources=[str(clips), "/dev/video1", "synthetic:"])
    for uri in (str(clips / "day" / "a.mp4"), f"file:{clips}/b.mp4", "/dev/video1", "synthetic:64x48@5"):
        confine({"cameras": {"x": {"uri": uri}}}, folders, policy, LOCAL)
    # Outside the folder (.. included), or another device: still refused.
    for uri in (str(clips / ".." / "secret.txt"), "/dev/video0"):
        _refused({"cameras": {"x": {"uri": uri}}}, folders, policy)
    # A URI the local configuration names itself may be repeated, e.g. by a twin copying it.
    confine({"cameras": {"x": {"uri": "/media/clips/yard.mp4"}}}, folders, _policy(), LOCAL)


def test_credentials_go_only_to_the_hosts_the_local_configuration_allows(folders: Folders) -> None:
    policy = _policy()
    # A new camera on a new host with the local camera's password: refused, and the host named.
    message = _refused(
        {"cameras": {"x": {"uri": "http://attacker.example/", "credentials": "env:FRONT_CAMERA"}}}, folders, policy
    )
    assert "cameras.x.credentials" in message and "not to attacker.example" in message
    # The local camera moved to another host keeps its credentials: refused too.
    _refused({"cameras": {"front": {"uri": "rtsp://attacker.example/s"}}}, folders, policy)
    # Another stream on the camera's own host, any port: allowed; without credentials: anywhere.
    confine({"cameras": {"x": {"uri": "rtsp://10.0.0.5:8554/s2", "credentials": "env:X"}}}, folders, policy, LOCAL)
    confine({"cameras": {"x": {"uri": "http://other.example/mjpeg"}}}, folders, policy, LOCAL)
    # The local configuration may name the hosts itself.
    named = _policy(credential_hosts=["cams.example"])
    confine({"cameras": {"x": {"uri": "rtsp://CAMS.example/a", "credentials": "env:X"}}}, folders, named, LOCAL)


def test_a_remote_document_may_not_widen_its_own_reach(folders: Folders) -> None:
    message = _refused({"remote": {"local_sources": ["/"]}}, folders, _policy())
    assert message.startswith("invalid configuration: remote: set only by the local configuration")


@pytest.mark.parametrize(
    "document",
    [
        {"http": {"token_file": "/etc/hostname"}},
        {"mqtt": {"sat_token_file": "/etc/hostname"}},
        {"mqtt": {"ca_file": "/tmp/attacker-ca.pem"}},
        {"mqtt": {"cert_file": "/tmp/c.pem", "key_file": "/tmp/k.pem"}},
    ],
)
def test_a_remote_document_may_not_choose_which_file_is_a_credential(folders: Folders, document: dict) -> None:
    """A twin naming a known file as the HTTP token file would know the token."""
    with pytest.raises(ConfigError, match="set only by the local configuration"):
        confine(document, folders)
    validate(document if "mqtt" not in document else {"mqtt": {**document["mqtt"], "enabled": False}})
