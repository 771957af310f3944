"""Manifests and model resolution: path, model directory, verified download, offline failure."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgevision.families.yolox import anchor_count
from edgevision.models.manifest import ManifestError, available_manifests, find_manifest, load_manifest_file
from edgevision.models.store import ModelIntegrityError, ModelUnavailableError, resolve_model, sha256_of
from tests.support.processes import run_cli


class _Server:
    """A real HTTP server on 127.0.0.1 that serves one body and counts requests."""

    def __init__(self, body: bytes) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.requests = 0
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/yolox_nano.onnx"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file named as the manifest names the model: resolving and downloading only hash it."""
    path = tmp_path_factory.mktemp("given") / "yolox_nano.onnx"
    path.write_bytes(bytes(range(256)) * 4096)
    return path


@pytest.fixture
def model_server(model_path: Path) -> Iterator[_Server]:
    server = _Server(model_path.read_bytes())
    yield server
    server.close()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/yolox_nano.onnx"


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


def test_download_verifies_and_writes_atomically(tmp_path: Path, model_path: Path, model_server: _Server) -> None:
    manifest = _nano(url=model_server.url, sha256=sha256_of(model_path))
    model = resolve_model("yolox-nano", manifest=manifest, model_dir=tmp_path / "models", progress=False)
    assert model.verified and model.path.read_bytes() == model_path.read_bytes()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["yolox_nano.onnx"]
    # Second resolve is a cache hit.
    resolve_model("yolox-nano", manifest=manifest, model_dir=tmp_path / "models")
    assert model_server.requests == 1


def test_download_with_wrong_hash_is_rejected(tmp_path: Path, model_server: _Server) -> None:
    manifest = _nano(url=model_server.url)  # the official hash; the served file is another
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        resolve_model("yolox-nano", manifest=manifest, model_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_offline_download_names_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError) as err:
        resolve_model("yolox-nano", manifest=_nano(url=_closed_port_url()), model_dir=tmp_path, progress=False)
    message = str(err.value)
    assert "yolox_nano.onnx" in message and str(tmp_path) in message and "EDGEVISION_MODEL_DIR" in message
    assert list(tmp_path.iterdir()) == []


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
