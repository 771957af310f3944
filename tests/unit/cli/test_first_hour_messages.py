"""What a new user is told: where a benchmark writes, what `models inspect` says of the built-in
model's file, and what the HTTP endpoints' token guards."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edgevision.cli.parser import build_parser
from edgevision.config.model import HttpConfig
from edgevision.detector.inspect import as_text, inspect_model
from edgevision.http_service import HttpService
from edgevision.models.manifest import find_manifest
from tests.support.control import StandInControl
from tests.support.onnx_shapes import shape_model

NANO = find_manifest("yolox-nano")


@pytest.mark.parametrize("quick", [True, False])
def test_a_benchmark_never_writes_the_recorded_results_unless_told(quick: bool) -> None:
    args = build_parser().parse_args(["benchmark", *(["--quick"] if quick else [])])
    assert args.out == Path("benchmark-results")
    recorded = build_parser().parse_args(["benchmark", "--out", "benchmarks/results"])
    assert recorded.out == Path("benchmarks/results")


def test_models_inspect_reads_the_built_in_models_file_as_detect_runs_it(tmp_path: Path) -> None:
    path = shape_model(
        tmp_path / NANO.file, [("images", "float32", [1, 3, 416, 416])], [("output", "float32", [1, 3549, 85])]
    )
    report = inspect_model(path)
    assert report["builtin_manifest"] == "yolox-nano" and report["family"] == "yolox"
    assert report["classes"]["count"] == 80 and report["classes"]["from"] == "the built-in manifest yolox-nano"
    assert report["classes"]["names"][:3] == ["person", "bicycle", "car"]
    assert report["sha256"]["matches"] is False and "differs from the manifest's" in report["why"]
    text = as_text(report)
    assert "--labels" not in text and "numbered" not in text


def test_the_http_token_line_says_what_is_open_and_where_the_token_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    service = HttpService(StandInControl(), tmp_path)
    service.start(HttpConfig(port=0))
    try:
        (line,) = [r.getMessage() for r in caplog.records if "bearer token" in r.getMessage()]
    finally:
        service.stop()
    assert "/healthz, /readyz and /metrics are open; every other path needs a bearer token" in line
    assert str(tmp_path) in line and "set http.token" in line


def test_a_token_made_earlier_is_removed_once_one_is_configured(tmp_path: Path) -> None:
    from edgevision.http_service import TOKEN_FILE, resolve_token

    made, origin = resolve_token(HttpConfig(), tmp_path)
    assert (tmp_path / TOKEN_FILE).read_text() == made and "made now" in origin
    configured = "a-configured-token-0123456789"
    token, origin = resolve_token(HttpConfig(token=configured), tmp_path)
    assert token == configured and origin == "http.token"
    assert not (tmp_path / TOKEN_FILE).exists()  # it no longer opened anything


def test_a_library_repeating_itself_is_logged_once_per_change() -> None:
    from edgevision.redaction import RepeatFilter

    repeats = RepeatFilter()

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord(
            "azure.iot.device.common.handle_exceptions", logging.ERROR, __file__, 1, message, (), None
        )

    passed = [
        repeats.filter(record(m))
        for m in ["Exception caught in background thread.  Unable to handle."] * 5
        + ["Connected"]
        + ["Exception caught in background thread.  Unable to handle."] * 2
    ]
    assert passed == [True, False, False, False, False, True, True, False]


def test_the_http_token_from_a_mounted_secret_file(tmp_path, caplog) -> None:
    from edgevision.config.model import HttpConfig
    from edgevision.http_service import resolve_token

    secret = tmp_path / "http-token"
    secret.write_text("k8s-secret-token-0123456789\n")
    token, origin = resolve_token(HttpConfig(token_file=secret), tmp_path / "state")
    assert token == "k8s-secret-token-0123456789" and "token_file" in origin
    # Missing, or not a token: the guarded paths stay closed (a token nobody knows), said once.
    for bad in (tmp_path / "absent", tmp_path / "short"):
        if bad.name == "short":
            bad.write_text("abc")
        token, origin = resolve_token(HttpConfig(token_file=bad), tmp_path / "state")
        assert len(token) >= 32 and origin.startswith("nowhere")
    messages = [r.getMessage() for r in caplog.records]
    assert any("No such file" in m for m in messages) and any("not a token" in m for m in messages)
    assert not any("abc" in m.split(":")[-1] for m in messages)
