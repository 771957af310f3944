"""Camera credentials from a file or a variable, never in the configuration: a real HTTP camera
on 127.0.0.1 that asks for Basic authentication, with a password full of URL delimiters."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest

from edgevision.module import Module

USER, PASSWORD = "viewer", "p@ss:w/rd?#%"


class _AuthCamera:
    def __init__(self, jpeg: bytes) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        self.accepted = 0
        self.refused = 0
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization") != expected:
                    camera.refused += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                camera.accepted += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n"
                try:
                    for _ in range(300):
                        self.wfile.write(part)
                        self.wfile.flush()
                        time.sleep(0.05)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/video.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def camera(images: dict[str, Path]) -> Iterator[_AuthCamera]:
    server = _AuthCamera(cv2.imencode(".jpg", cv2.imread(str(images["astronaut"])))[1].tobytes())
    yield server
    server.server.shutdown()
    server.server.server_close()


def _run(document: dict[str, Any], state: Path, seconds: float) -> dict[str, Any]:
    """The status once every camera inferred 5 frames or failed; `inferred` added per camera."""
    module = Module(document, environ={"EDGEVISION_STATE_DIR": str(state)})
    module.start()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            cameras = module.metrics_snapshot()["cameras"]
            if all(c["inferred"] >= 5 or c["state"] == "failed" for c in cameras.values()):
                break
            time.sleep(0.2)
        status = module.status()
        for camera, figures in module.metrics_snapshot()["cameras"].items():
            status["cameras"][camera]["inferred"] = figures["inferred"]
        return status
    finally:
        module.request_stop()
        module.wait(15)


def test_credentials_from_a_file_and_a_variable_open_the_camera(
    camera: _AuthCamera, model_dir_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACK_CAMERA", f"{USER}:{PASSWORD}")
    secret_file = tmp_path / "front.credentials"
    secret_file.write_text(f"{USER}:{PASSWORD}\n")
    document = {
        "cameras": {
            "front": {"uri": camera.uri, "credentials": f"file:{secret_file}"},
            "back": {"uri": camera.uri, "credentials": "env:BACK_CAMERA"},
        },
        "sink": {"kind": "jsonl", "path": str(tmp_path / "out.jsonl")},
        "http": {"enabled": False},
    }
    status = _run(document, tmp_path, 30)
    assert status["cameras"]["front"]["inferred"] >= 5 and status["cameras"]["back"]["inferred"] >= 5, status
    assert camera.accepted >= 2
    text = json.dumps(status) + (tmp_path / "out.jsonl").read_text()
    assert "w/rd" not in text and "p@ss" not in text and "p%40ss" not in text
    assert status["configuration"]["cameras"][0]["credentials"] == f"file:{secret_file}"


def test_missing_credentials_fail_the_camera_and_say_where(
    camera: _AuthCamera, model_dir_env: None, tmp_path: Path
) -> None:
    document = {
        "cameras": {"back": {"uri": camera.uri, "credentials": "env:BACK_CAMERA"}},
        "sink": {"kind": "jsonl", "path": str(tmp_path / "out.jsonl")},
        "http": {"enabled": False},
    }
    status = _run(document, tmp_path, 10)
    back = status["cameras"]["back"]
    assert back["state"] == "failed" and "env:BACK_CAMERA" in back["last_error"] and "not set" in back["last_error"]
    assert camera.accepted == 0
