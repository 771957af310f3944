"""The health endpoints over real HTTP on 127.0.0.1 (what the Dockerfile's HEALTHCHECK calls)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from edgevision.module import Module


def _get(port: int, path: str, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_health_readiness_and_status(model_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGEVISION_MODEL_DIR", str(model_path.parent))
    document = {"cameras": {"syn": {"uri": "synthetic:320x240@10"}},
                "sink": {"kind": "jsonl", "path": str(tmp_path / "out.jsonl")},
                "http": {"bind": "127.0.0.1", "port": 0}}
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
    document = {"cameras": {"gone": {"uri": "http://127.0.0.1:9/stream.mjpg"}},
                "sink": {"kind": "jsonl", "path": str(tmp_path / "out.jsonl")},
                "sources": {"open_timeout_s": 1, "reconnect_max_s": 1},
                "http": {"bind": "127.0.0.1", "port": 0}}
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
