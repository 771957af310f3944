"""Manifests and model resolution: path, model directory, verified download, offline failure."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgevision.detector.resolve import ModelResolver, resolve_model
from edgevision.families.yolox import anchor_count
from edgevision.models.manifest import ManifestError, available_manifests, find_manifest, load_manifest_file
from edgevision.models.store import ModelIntegrityError, ModelUnavailableError, sha256_of
from tests.support.download_server import DownloadServer, serve_files
from tests.support.processes import run_cli


@pytest.fixture
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file named as the manifest names the model: resolving and downloading only hash it."""
    path = tmp_path_factory.mktemp("given") / "yolox_nano.onnx"
    path.write_bytes(bytes(range(256)) * 4096)
    return path


@pytest.fixture
def model_server(
    model_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DownloadServer]:
    """The release host, over HTTPS with a throw-away CA this process trusts."""
    server = serve_files({"yolox_nano.onnx": model_path.read_bytes()}, tmp_path_factory.mktemp("pki"))
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_cert))
    yield server
    server.close()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"https://127.0.0.1:{port}/yolox_nano.onnx"


def _nano(**update: object):
    return find_manifest("yolox-nano").model_copy(update=update)


def test_builtin_manifests_describe_the_official_release() -> None:
    manifests = available_manifests()
    assert set(manifests) >= {"yolox-nano", "yolox-tiny", "yolox-s"}
    nano, tiny, small = manifests["yolox-nano"], manifests["yolox-tiny"], manifests["yolox-s"]
    assert (nano.input.width, tiny.input.width, small.input.width) == (416, 416, 640)
    assert nano.sha256 == "c789161ed43c8269fcd4e67c67eeeb4e80c622da2eb296a20bc6007bd18a0b7d"
    assert small.size_bytes == 35_858_002
    for manifest in manifests.values():
        assert manifest.url and manifest.url.endswith("/0.1.1rc0/" + manifest.file)
        assert manifest.num_classes == 80
        assert manifest.labels[0] == "person" and manifest.labels[41] == "cup" and manifest.labels[15] == "cat"
        assert manifest.input.pad_value == 114 and manifest.input.channel_order == "BGR"
    assert anchor_count(nano.input.width, nano.input.height, nano.strides) == 3549


def test_invalid_manifest_names_the_field(tmp_path: Path) -> None:
    bad = json.loads((Path(find_manifest("yolox-nano").origin)).read_text())
    bad["labels"] = ["person"]
    bad["input"]["width"] = -3
    bad["sha256"] = "xyz"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ManifestError) as err:
        load_manifest_file(path)
    assert "input.width" in str(err.value) and "sha256" in str(err.value)


def test_unknown_model_name_lists_known_ones() -> None:
    with pytest.raises(ManifestError, match="yolox-nano"):
        find_manifest("no-such-model")


def test_explicit_path_with_other_hash_is_used_and_logged(model_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    model = resolve_model(str(model_path))
    assert model.path == model_path and model.name == "yolox-nano"
    assert not model.verified
    assert model.sha256 == sha256_of(model_path)
    assert any("differs from the manifest" in r.getMessage() for r in caplog.records)


def test_missing_explicit_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="not found"):
        resolve_model(str(tmp_path / "missing.onnx"))


def test_model_directory_hit_needs_no_network(tmp_path: Path, model_path: Path) -> None:
    (tmp_path / "yolox_nano.onnx").symlink_to(model_path)
    model = resolve_model("yolox-nano", manifest=_nano(url=_closed_port_url()), model_dir=tmp_path)
    assert model.path == tmp_path / "yolox_nano.onnx"


def test_a_named_model_must_match_its_manifest_unless_told_otherwise(tmp_path: Path, model_path: Path) -> None:
    (tmp_path / "yolox_nano.onnx").symlink_to(model_path)  # not the official file
    manifest = _nano(url=_closed_port_url())
    with pytest.raises(ModelIntegrityError, match=r"differs from the manifest's .*refused"):
        resolve_model("yolox-nano", manifest=manifest, model_dir=tmp_path, verify="require")
    warned = resolve_model("yolox-nano", manifest=manifest, model_dir=tmp_path, verify="warn")
    assert not warned.verified and "differs" in warned.verification and "warn" in warned.verification
    matching = resolve_model(
        "yolox-nano", manifest=_nano(url=None, sha256=sha256_of(model_path)), model_dir=tmp_path, verify="require"
    )
    assert matching.verified and matching.verification == "SHA-256 matches the manifest"
    # A path is the user's own choice: it runs under require too, and says it is not verified.
    given = resolve_model(str(model_path), verify="require")
    assert not given.verified and given.verification.startswith("given by path")


def test_download_verifies_and_writes_atomically(
    tmp_path: Path, model_path: Path, model_server: DownloadServer
) -> None:
    manifest = _nano(url=model_server.url("yolox_nano.onnx"), sha256=sha256_of(model_path), size_bytes=None)
    model = resolve_model("yolox-nano", manifest=manifest, model_dir=tmp_path / "models", progress=False)
    assert model.verified and model.path.read_bytes() == model_path.read_bytes()
    # The model and nothing else: no part file, no lock file.
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["yolox_nano.onnx"]
    # Second resolve is a cache hit.
    resolve_model("yolox-nano", manifest=manifest, model_dir=tmp_path / "models")
    assert len(model_server.requests) == 1


def test_download_with_wrong_hash_is_rejected(tmp_path: Path, model_server: DownloadServer) -> None:
    manifest = _nano(url=model_server.url("yolox_nano.onnx"), size_bytes=None)  # the official hash; another file
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        resolve_model("yolox-nano", manifest=manifest, model_dir=tmp_path, progress=False)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_offline_download_names_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError) as err:
        resolve_model("yolox-nano", manifest=_nano(url=_closed_port_url()), model_dir=tmp_path, progress=False)
    message = str(err.value)
    assert "yolox_nano.onnx" in message and str(tmp_path) in message and "EDGEVISION_MODEL_DIR" in message
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_cli_fetch_offline_is_one_line(tmp_path: Path) -> None:
    manifest = _nano(url=_closed_port_url()).model_dump(mode="json")
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "offline.json").write_text(json.dumps({**manifest, "name": "offline-nano"}))
    proc = run_cli(
        "models",
        "fetch",
        "offline-nano",
        env={"EDGEVISION_MODEL_DIR": str(tmp_path / "models"), "EDGEVISION_MANIFEST_DIR": str(tmp_path / "manifests")},
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "put yolox_nano.onnx" in lines[0] and str(tmp_path / "models") in lines[0]


def test_a_pipelines_resolver_says_a_model_is_not_verified_once_per_content(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from edgevision.config.model import ModelConfig

    path = tmp_path / "yolox_nano.onnx"  # the manifest's name, other bytes
    path.write_bytes(b"first" * 1000)
    resolver, config = ModelResolver(), ModelConfig(path=str(path))
    caplog.set_level(logging.WARNING)
    for _rebuild in range(3):  # failovers and reconfigurations rebuild the stages
        assert not resolver(config).verified
    assert sum("not verified" in r.getMessage() for r in caplog.records) == 1
    path.write_bytes(b"second" * 1000)  # replaced on disk: resolved anew, and said again
    assert resolver(config).sha256 == sha256_of(path)
    assert sum("not verified" in r.getMessage() for r in caplog.records) == 2
