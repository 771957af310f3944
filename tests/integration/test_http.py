"""The health endpoints over real HTTP on 127.0.0.1 (what the Dockerfile's HEALTHCHECK calls)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgevision.module import Module

TOKEN = "integration-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HTTP = {"bind": "127.0.0.1", "port": 0, "token": TOKEN}


def _open(port: int, path: str, timeout: float = 10) -> Any:
    return urllib.request.urlopen(
        urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=AUTH), timeout=timeout
    )


def _get(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=b"" if method == "POST" else None,
        headers=AUTH if headers is None else headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_health_readiness_and_status(model_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGEVISION_MODEL_DIR", str(model_path.parent))
    document = {
        "cameras": {"syn": {"uri": "synthetic:320x240@10"}},
        "sink": {"kind": "jsonl", "path": str(tmp_path / "out.jsonl")},
        "http": HTTP,
    }
    module = Module(document, environ={})
    module.start()
    assert module.http is not None
    port = module.http.port
    try:
        deadline = time.monotonic() + 20
        while _get(port, "/readyz")[0] != 200:
            assert time.monotonic() < deadline, _get(port, "/readyz")
            time.sleep(0.2)
        assert _get(port, "/healthz") == (200, {"status": "ok"})
        assert _get(port, "/readyz")[1]["cameras_producing"] == ["syn"]
        status, document = _get(port, "/status")
        assert status == 200 and document["cameras"]["syn"]["state"] == "streaming"
        assert document["provider"]["provider"] == "CPUExecutionProvider"
        # The team's test model is not the manifest's file (model.verify: warn): /status says so.
        assert document["model"] == "yolox-nano" and document["model_verified"] is False
        assert "differs from the manifest" in document["model_verification"]
        code, body = _get(port, "/nope")
        assert code == 404 and "/healthz" in body["paths"]
        assert _get(port, "/healthz", method="POST")[0] == 405
    finally:
        module.request_stop()
        assert module.wait(15)
    # After the stop the endpoints are gone with the module.
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)


def test_readiness_fails_without_frames(model_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGEVISION_MODEL_DIR", str(model_path.parent))
    document = {
        "cameras": {"gone": {"uri": "http://127.0.0.1:9/stream.mjpg"}},
        "sink": {"kind": "jsonl", "path": str(tmp_path / "out.jsonl")},
        "sources": {"open_timeout_s": 1, "reconnect_max_s": 1},
        "http": HTTP,
    }
    module = Module(document, environ={})
    module.start()
    try:
        time.sleep(1.0)
        code, body = _get(module.http.port, "/readyz")  # type: ignore[union-attr]
        assert code == 503 and any("no camera produced" in r for r in body["reasons"])
        assert _get(module.http.port, "/healthz")[0] == 200  # type: ignore[union-attr]
    finally:
        module.request_stop()
        assert module.wait(15)


def _post(port: int, path: str, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        method="POST",
        headers={"Content-Type": "application/octet-stream", **AUTH},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def running(model_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("EDGEVISION_MODEL_DIR", str(model_path.parent))
    module = Module(
        {
            "cameras": {"syn": {"uri": "synthetic:320x240@10"}},
            "sink": {"kind": "jsonl", "path": str(tmp_path / "out.jsonl")},
            "http": HTTP,
        },
        environ={},
    )
    module.start()
    yield module
    module.request_stop()
    module.wait(15)


def test_metrics_parse_as_prometheus_text(running: Module) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    port = running.http.port  # type: ignore[union-attr]
    deadline = time.monotonic() + 20
    while running.pipeline.metrics.camera("syn").inferred < 10:  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with _open(port, "/metrics") as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    frames = {
        (s.labels["camera"], s.labels["state"]): s.value
        for s in families["edgevision_frames"].samples
        if s.name == "edgevision_frames_total"
    }
    assert frames[("syn", "inferred")] >= 10 and frames[("syn", "captured")] >= frames[("syn", "inferred")]
    latency = [s for s in families["edgevision_latency_ms"].samples if s.name == "edgevision_latency_ms_bucket"]
    assert latency[-1].labels["le"] == "+Inf" and latency[-1].value >= 10
    assert [s.value for s in latency] == sorted(s.value for s in latency)  # cumulative
    assert all(s.labels["provider"] == "CPUExecutionProvider" for s in latency)
    assert {s.labels["stage"] for s in families["edgevision_stage_ms_per_frame"].samples} >= {"preprocess", "inference"}
    up = families["edgevision_camera_up"].samples
    assert [(s.labels["camera"], s.value) for s in up] == [("syn", 1.0)]


def test_score_endpoint(running: Module, images: dict[str, Path]) -> None:
    port = running.http.port  # type: ignore[union-attr]
    deadline = time.monotonic() + 20
    while running.pipeline.model is None:  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    for name, label in (("astronaut", "person"), ("coffee", "cup"), ("chelsea", "cat")):
        status, answer = _post(port, "/score", images[name].read_bytes())
        assert status == 200, answer
        assert any(d["label"] == label and d["score"] > 0.5 for d in answer["detections"]), (name, answer)
        assert answer["provider"] == "CPUExecutionProvider"
    png = cv2.imencode(".png", cv2.imread(str(images["chelsea"])))[1].tobytes()
    assert any(d["label"] == "cat" for d in _post(port, "/score", png)[1]["detections"])
    assert _post(port, "/score", b"")[0] == 400
    assert _post(port, "/score", b"GIF89a not really")[0] == 415
    assert _post(port, "/score", b"\0" * (17 * 1024 * 1024))[0] == 413
    assert _post(port, "/healthz", b"x")[0] == 405
    assert _get(port, "/score")[0] == 405


def _mjpeg_parts(response: Any, count: int) -> list[tuple[dict[str, str], bytes]]:
    """Read `count` parts of a multipart/x-mixed-replace body: headers and JPEG bytes."""
    parts = []
    while len(parts) < count:
        line = response.readline()
        assert line, "stream ended"
        if not line.startswith(b"--edgevision-frame"):
            continue
        headers = {}
        while line := response.readline().strip():
            key, value = line.decode().split(":", 1)
            headers[key.strip().lower()] = value.strip()
        parts.append((headers, response.read(int(headers["content-length"]))))
    return parts


def test_preview_streams_annotated_frames(
    model_path: Path, assets: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EDGEVISION_MODEL_DIR", str(model_path.parent))
    video = assets / "video" / "pedestrians-720p.avi"
    module = Module(
        {
            "cameras": {"street": {"uri": str(video)}},
            "sink": {"kind": "jsonl", "path": str(tmp_path / "out.jsonl")},
            "http": {**HTTP, "preview_fps": 4, "preview_viewers": 1},
        },
        environ={},
    )
    module.start()
    port = module.http.port  # type: ignore[union-attr]
    try:
        code, body = _get(port, "/preview/nope.mjpg")
        assert code == 404 and body["cameras"] == ["street"]
        with _open(port, "/preview/street.mjpg") as response:
            assert response.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=edgevision-frame"
            # One viewer allowed: a second one is refused while this one watches.
            code, body = _get(port, "/preview/street.mjpg")
            assert code == 503 and "viewer limit" in body["error"]
            parts = _mjpeg_parts(response, 4)
        seqs = [int(h["x-frame-seq"]) for h, _ in parts]
        assert seqs == sorted(set(seqs))
        # The clip plays at 25 fps; at 4 previews a second frames are skipped, not queued.
        assert seqs[-1] - seqs[0] > len(seqs)
        capture = cv2.VideoCapture(str(video))
        raw = None
        for _ in range(seqs[-1] + 1):
            ok, raw = capture.read()
            assert ok
        capture.release()
        preview = cv2.imdecode(np.frombuffer(parts[-1][1], np.uint8), cv2.IMREAD_COLOR)
        assert preview is not None and preview.shape == raw.shape
        # Same frame as the camera's, plus the boxes drawn on it: JPEG noise stays small,
        # drawn boxes and labels change some pixels a lot.
        diff = np.abs(preview.astype(np.int16) - raw.astype(np.int16)).max(axis=2)
        assert np.median(diff) < 8
        assert (diff > 100).mean() > 0.001
        # The viewer left: its slot frees once the server's next write finds the socket closed.
        deadline = time.monotonic() + 5
        while True:
            try:
                with _open(port, "/preview/street.mjpg") as response:
                    assert len(_mjpeg_parts(response, 1)) == 1
                    break
            except urllib.error.HTTPError as error:
                assert error.code == 503 and time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        module.request_stop()
        assert module.wait(15)


def _port_free() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_without_a_configured_token_one_is_made_and_kept_private(
    model_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EDGEVISION_MODEL_DIR", str(model_path.parent))
    state = tmp_path / "state"
    document = {
        "cameras": {"syn": {"uri": "synthetic:160x120@5"}},
        "sink": {"kind": "jsonl", "path": str(tmp_path / "out.jsonl")},
        "http": {"port": 0},
    }
    module = Module(document, environ={"EDGEVISION_STATE_DIR": str(state)})
    module.start()
    try:
        assert module.http is not None and module.http.settings.bind == "127.0.0.1"  # loopback unless asked
        token_file = state / "http-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        port = module.http.port
        assert _get(port, "/status", headers={})[0] == 401
        status, body = _get(port, "/status", headers={"Authorization": f"Bearer {token}"})
        assert status == 200 and token not in json.dumps(body)
        assert token not in json.dumps(module.reported_state())
    finally:
        module.request_stop()
        assert module.wait(15)
    # The next start keeps the same token (users and scrapers keep working).
    again = Module(document, environ={"EDGEVISION_STATE_DIR": str(state)})
    again.start()
    try:
        assert _get(again.http.port, "/status", headers={"Authorization": f"Bearer {token}"})[0] == 200  # type: ignore[union-attr]
    finally:
        again.request_stop()
        assert again.wait(15)


def test_address_and_token_changes_take_effect(running: Module) -> None:
    old_port = running.http.port  # type: ignore[union-attr]
    new_port = _port_free()
    changes = running.apply_patch({"http": {"port": new_port}}, "method")
    assert "http" in changes["restarted"]
    assert running.http is not None and running.http.port == new_port
    assert _get(new_port, "/healthz")[0] == 200
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{old_port}/healthz", timeout=2)
    changes = running.apply_patch({"http": {"token": "a-new-token-0123456789"}}, "method")
    assert "http" in changes["live"] and running.http.port == new_port
    assert _get(new_port, "/status")[0] == 401
    assert _get(new_port, "/status", headers={"Authorization": "Bearer a-new-token-0123456789"})[0] == 200
    assert "a-new-token" not in json.dumps(running.status())
