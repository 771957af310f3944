"""A camera password goes nowhere: not upstream (events, metrics, reported properties, method
answers, the outbox file), not in /status, not in the log, not in a rejected configuration's
errors, not in the command line's own error. The module runs as IoT Edge starts it, against the
local edgeHub."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import run_cli

pytestmark = pytest.mark.slow

PASSWORD = "hun@ter2/Secret"
CAMERA = f"rtsp://admin:{PASSWORD}@127.0.0.1:9/stream1?user=admin&pwd=Qwerty123"
LEAKS = ("ter2", "Secret", "Qwerty123")


def _clean(text: str, where: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{where} holds the camera password: {text[:2000]}"


def test_nothing_upstream_or_in_the_log_holds_the_password(hub_factory, run_module, tmp_path: Path) -> None:
    desired = {
        "cameras": {"door": {"uri": CAMERA}},
        "sources": {"open_timeout_s": 1, "reconnect_initial_s": 0.2, "reconnect_max_s": 0.5},
        "upstream": {"connection_retry_interval_s": 1, "report_min_interval_s": 0.2},
        "metrics_interval_s": 1,
    }
    hub = hub_factory(desired)
    state = tmp_path / "state"
    module = run_module(hub, state_dir=state)
    hub.wait_for(lambda: any(m.body.get("event") == "camera_state" for m in hub.outputs("events")), 60, "an event")
    hub.wait_for(lambda: len(hub.outputs("metrics")) >= 2, 60, "metrics")
    status, document = hub.invoke("getStatus")
    assert status == 200 and document["configuration"]["cameras"][0]["uri"].startswith("rtsp://***@127.0.0.1:9/")
    _clean(json.dumps(document), "getStatus")
    # A rejected patch quoting the address: errors, event and answer stay clean.
    status, answer = hub.invoke("applyConfig", {"cameras": {"door": {"uri": CAMERA.replace("rtsp", "rtsq")}}})
    assert status == 400
    _clean(json.dumps(answer), "the applyConfig answer")
    hub.patch_desired({"cameras": {"door": {"uri": CAMERA.replace("rtsp", "rtsq")}}})
    hub.wait_for(lambda: any(m.body.get("event") == "config_rejected" for m in hub.outputs("events")), 60, "rejection")
    hub.wait_for(lambda: (hub.reported.get("config") or {}).get("last_error"), 60, "the rejection reported")
    for message in hub.outputs():
        _clean(json.dumps(message.body), f"the {message.output} message")
    _clean(json.dumps(hub.reported_now()), "reported properties")
    assert module.stop() == 0
    _clean(module.stderr, "the module's log")
    with sqlite3.connect(state / "outbox.sqlite") as db:
        _clean(" ".join(str(row) for row in db.execute("SELECT * FROM outbox")), "the outbox file")


def test_the_command_line_never_prints_the_password(model_path: Path, tmp_path: Path) -> None:
    env = {
        "EDGEVISION_MODEL_DIR": str(model_path.parent),
        "EDGEVISION_STATE_DIR": str(tmp_path),
        "EDGEVISION_MODEL__VERIFY": "warn",
    }
    bad = run_cli("run", "--source", CAMERA.replace("rtsp", "rtsq"), env=env)
    assert bad.returncode == 2 and "***@" in bad.stderr
    _clean(bad.stderr + bad.stdout, "a bad --source's error")
    # Running, failing to connect, at the most verbose log level.
    done = subprocess.run(
        [sys.executable, "-m", "edgevision", "-vv", "run", "--source", CAMERA, "--duration", "4", "--status", "off"],
        env={
            **env,
            "PATH": "/usr/bin:/bin",
            "EDGEVISION_SOURCES__OPEN_TIMEOUT_S": "1",
            "EDGEVISION_HTTP__ENABLED": "false",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "door" in done.stderr or "cam0" in done.stderr, done.stderr[-2000:]
    _clean(done.stderr + done.stdout, "the run's output")
