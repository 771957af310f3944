"""The command line's one error path: one line on stderr, exit 2 for bad input, 1 for failures.
No model is needed: every case here fails before one is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.processes import run_cli


def _assert_one_line_error(stderr: str) -> None:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--provider", "opencl"], "invalid choice"),
        (["--threshold", "1.5"], "outside"),
        (["--batch", "0"], "at least 1"),
    ],
)
def test_bad_arguments_exit_2_in_one_line(args: list[str], message: str) -> None:
    proc = run_cli("detect", *args, "image.jpg")
    assert proc.returncode == 2
    _assert_one_line_error(proc.stderr)
    assert message in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["--source", "ftp://camera/x"], "cameras.0.uri"),
        (["--source", "synthetic:64x64@5", "--sink", "kafka:x"], "--sink"),
    ],
)
def test_run_rejects_bad_input_in_one_line(args: list[str], message: str) -> None:
    proc = run_cli("run", *args)
    assert proc.returncode == 2
    _assert_one_line_error(proc.stderr)
    assert message in proc.stderr


def test_run_without_a_camera_or_its_sample_says_what_to_pass() -> None:
    # The sample clip's host cannot be reached (a closed port on this machine).
    proc = run_cli("run", env={"EDGEVISION_DOWNLOAD_BASE_URL": "https://127.0.0.1:9/samples"})
    assert proc.returncode == 2
    _assert_one_line_error(proc.stderr)
    assert "no camera: give one with --source URI (make run SOURCE=URI" in proc.stderr
    assert "sample clip could not be fetched" in proc.stderr


def test_run_reads_the_file_named_by_edgevision_config(tmp_path: Path) -> None:
    config = tmp_path / "edgevision.yaml"
    config.write_text("cameras:\n  syn: {uri: 'synthetic:64x64@5'}\nmodel: {score_threshold: 7}\n")
    proc = run_cli("run", env={"EDGEVISION_CONFIG": str(config)})
    assert proc.returncode == 2
    _assert_one_line_error(proc.stderr)
    # The file's cameras were read (no "no camera"), and its bad field is named.
    assert "model.score_threshold" in proc.stderr and "no camera" not in proc.stderr


def test_run_and_manifest_take_set(tmp_path: Path) -> None:
    proc = run_cli("run", "--source", "synthetic:64x64@5", "--set", "inference.max_batch_wait_ms=-1")
    assert proc.returncode == 2
    _assert_one_line_error(proc.stderr)
    assert "inference.max_batch_wait_ms" in proc.stderr
    proc = run_cli("run", "--source", "synthetic:64x64@5", "--set", "nonsense")
    assert proc.returncode == 2 and "KEY=VALUE" in proc.stderr
    out = tmp_path / "deployment.json"
    proc = run_cli("manifest", "--gpu", "cpu", "--registry", "r", "--set", "http.port=9700", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["modulesContent"]["edgevision"]["properties.desired"]["http"]["port"] == 9700


def test_unknown_model_name_fails_in_one_line() -> None:
    proc = run_cli("detect", "--model", "yolox-huge", "image.jpg")
    assert proc.returncode == 1
    _assert_one_line_error(proc.stderr)
    assert "unknown model" in proc.stderr


def test_a_missing_workload_socket_is_named_in_one_line(tmp_path: Path) -> None:
    socket = tmp_path / "run" / "workload.sock"
    edge = {
        "IOTEDGE_IOTHUBHOSTNAME": "hub.azure-devices.net",
        "IOTEDGE_DEVICEID": "device",
        "IOTEDGE_MODULEID": "edgevision",
        "IOTEDGE_GATEWAYHOSTNAME": "edgehub",
        "IOTEDGE_MODULEGENERATIONID": "1234",
        "IOTEDGE_WORKLOADURI": f"unix://{socket}",
        "IOTEDGE_APIVERSION": "2019-01-30",
        "EDGEVISION_STATE_DIR": str(tmp_path / "state"),
        "EDGEVISION_HTTP__ENABLED": "false",
    }
    proc = run_cli("run", env=edge)
    assert proc.returncode == 1
    _assert_one_line_error(proc.stderr)
    assert f"workload API socket {socket}" in proc.stderr and "edgeAgent" in proc.stderr
