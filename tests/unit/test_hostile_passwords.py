"""Hostile camera passwords end to end through a running module: whatever they hold, they reach
no log line, no /status, no event, no rejection and no reported property (the camera is real: it
tries to connect and fails, so its errors are said; inference is a stand-in)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from edgevision.config.load import validate
from edgevision.errors import ConfigError
from edgevision.module import Module
from edgevision.redaction import RedactingFilter
from tests.support.fakes import EngineFactory, pipeline_seams
from tests.support.waits import wait_for

PASSWORDS = {
    "at-slash-query-hash": "Xp@ss/w?rd#9Zq",
    "quotes": 'Xit\'s "qu0ted"Zq',
    "spaces": "Xwith spaces 1nZq",
    "percent": "Xa%40b%2FcZq",
    "scheme": "Xx://y@z/wZq",
}


@pytest.mark.parametrize("name", sorted(PASSWORDS))
def test_a_hostile_password_goes_nowhere(name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    password = PASSWORDS[name]
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(RedactingFilter())  # what every handler of the CLI has
    sink = tmp_path / "results.jsonl"
    cameras = {
        "front": {"uri": f"rtsp://admin:{password}@127.0.0.1:9/stream1"},
        "query": {"uri": f"http://127.0.0.1:9/cgi/mjpg?user=admin&pwd={password}"},
    }
    # A password that leaves no valid address (its port unreadable) can only be refused, which is
    # said too (the rejection below); the others run, fail to connect, and say so.
    for camera in list(cameras):
        try:
            validate({"cameras": {camera: cameras[camera]}})
        except ConfigError as refused:
            assert password not in str(refused)
            del cameras[camera]
    module = Module(
        {
            "cameras": cameras,
            "sources": {"reconnect_initial_s": 0.1, "reconnect_max_s": 0.2},
            "sink": {"kind": "jsonl", "path": str(sink)},
            "http": {"enabled": False},
            "metrics_interval_s": 0.5,
        },
        environ={"EDGEVISION_STATE_DIR": str(tmp_path / "state")},
        seams=pipeline_seams(EngineFactory()),
    )
    module.start()
    try:
        wait_for(
            lambda: all(c["last_error"] for c in module.metrics_snapshot()["cameras"].values()),
            20,
            "the cameras failing to connect, and saying why",
        )
        # A rejection that quotes the address (an unsupported scheme).
        with pytest.raises(ConfigError) as rejected:
            module.apply_patch({"cameras": {"bad": {"uri": f"rtsq://admin:{password}@127.0.0.1/x"}}})
        said = {
            "rejection": str(rejected.value),
            "status": json.dumps(module.status()),
            "reported": json.dumps(module.reported_state()),
            "metrics": json.dumps(module.metrics_snapshot()),
        }
    finally:
        module.request_stop()
        assert module.wait(20)
    said["sink"] = sink.read_text()
    said["logs"] = caplog.text
    assert "config_rejected" in said["sink"] and "reconnecting" in said["status"]
    for where, text in said.items():
        assert password not in text, where
        # Nor a telling piece of it (its middle, past the separators).
        assert password[1:-2].split(" ")[-1] not in text or len(password[1:-2].split(" ")[-1]) < 4, where
