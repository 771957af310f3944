"""A new user's first hour with a model of their own: every route that names a model file runs it
with no configuration beyond it, a model no camera uses is never fetched, and the messages say
what to do. Real processes on a real (tiny) model, a few frames each."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import REPO
from tests.support.tiny_model import tiny_model

pytestmark = pytest.mark.slow


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def user(tmp_path: Path) -> dict[str, str]:
    """A user's environment: no model folder of the team's, and no download host that answers."""
    env = {
        "HOME": str(tmp_path / "home"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "EDGEVISION_STATE_DIR": str(tmp_path / "state"),
        "EDGEVISION_MODEL_DIR": str(tmp_path / "empty-model-dir"),
        "EDGEVISION_SAMPLES_DIR": str(tmp_path / "no-samples"),
        "EDGEVISION_DOWNLOAD_BASE_URL": f"https://127.0.0.1:{_closed_port()}/",
    }
    return env


def _environment(user: dict[str, str]) -> dict[str, str]:
    """This process's environment without the team's edgevision settings (the assets' model
    folder, `model.verify: warn`), plus the user's."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("EDGEVISION_") or k == "EDGEVISION_ASSETS"}
    return {**kept, **user}


def _results(path: Path) -> list[dict]:
    return [m for m in map(json.loads, path.read_text().splitlines()) if m["type"] == "result"]


def _edgevision(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgevision", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=_environment(env),
        check=False,
    )


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return _edgevision(env, "run", *args)


@pytest.mark.parametrize("route", ["flag", "flag-with-labels", "environment", "config-file", "camera-models"])
def test_a_model_file_runs_by_every_route_without_the_default_model(
    route: str, user: dict[str, str], tmp_path: Path
) -> None:
    model, _manifest = tiny_model(tmp_path)
    out = tmp_path / "results.jsonl"
    args = ["--source", "synthetic:64x48@0", "--max-frames", "5", "--sink", f"jsonl:{out}", "--status", "off"]
    env = dict(user)
    if route == "flag":
        args += ["--model", str(model)]
    elif route == "flag-with-labels":
        labels = tmp_path / "labels.txt"
        labels.write_text("".join(f"thing {i}\n" for i in range(80)))
        args += ["--model", str(model), "--labels", str(labels)]
    elif route == "environment":
        env["EDGEVISION_MODEL__PATH"] = str(model)
    elif route == "config-file":
        config = tmp_path / "config.yaml"
        config.write_text(f"model:\n  path: {model}\n")
        args += ["--config", str(config)]
    else:
        # Every camera names its own model: the default yolox-nano is never fetched (it cannot be).
        config = tmp_path / "config.yaml"
        config.write_text(
            f"models:\n  own: {{path: {model}}}\ncameras:\n"
            "  - {id: a, uri: 'synthetic:64x48@0', max_frames: 5, model: own}\n"
            "  - {id: b, uri: 'synthetic:64x48@0', max_frames: 5, model: own}\n"
        )
        args = ["--config", str(config), "--sink", f"jsonl:{out}", "--status", "off"]
    done = _run(env, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    results = _results(out)
    assert len(results) == (10 if route == "camera-models" else 5) and {r["model"] for r in results} == {"tiny"}
    assert "yolox" not in done.stderr.lower().replace("recognised as yolox", "")


def test_make_run_with_a_model_file_writes_a_fresh_results_file_each_run(user: dict[str, str], tmp_path: Path) -> None:
    model, _manifest = tiny_model(tmp_path)
    env = _environment(user)
    printed = []
    for _ in range(2):
        done = subprocess.run(
            [
                "make",
                "-s",
                "-o",
                f"{REPO}/.venv/.installed-stamp",
                "run",
                f"MODEL={model}",
                "SOURCE=synthetic:64x48@0",
                f"RESULTS={tmp_path}/out/results-{len(printed)}.jsonl",
                f"RUN_ARGS=--sink jsonl:{tmp_path}/out/results-{len(printed)}.jsonl --max-frames 3 --status off",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        (line,) = [x for x in done.stdout.splitlines() if x.startswith("results and metrics:")]
        printed.append(Path(line.split(": ", 1)[1]))
    assert printed[0] != printed[1]
    assert [len(_results(path)) for path in printed] == [3, 3]


def test_the_makefile_names_a_new_results_file_for_each_run() -> None:
    def results_file() -> str:
        done = subprocess.run(
            ["make", "-n", "-o", f"{REPO}/.venv/.installed-stamp", "run"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        (sink,) = [arg for line in done.stdout.splitlines() for arg in line.split() if arg.startswith("jsonl:")]
        return sink

    first = results_file()
    assert first.startswith("jsonl:out/results-") and first.endswith(".jsonl")
    time.sleep(1.1)  # the file is named to the second
    assert results_file() != first


def test_no_camera_and_no_sample_says_how_to_give_one_both_ways(user: dict[str, str]) -> None:
    done = _run(user, "--status", "off")
    assert done.returncode == 2
    assert "--source URI" in done.stderr and "make run SOURCE=URI" in done.stderr


def test_a_model_that_fails_its_sha256_says_how_to_run_it_anyway(user: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "yolox_nano.onnx").write_bytes(b"not the manifest's file" * 100)
    done = _edgevision({**user, "EDGEVISION_MODEL_DIR": str(folder)}, "models", "path", "yolox-nano")
    assert done.returncode == 1
    assert "model.verify: warn" in done.stderr and "EDGEVISION_MODEL__VERIFY=warn" in done.stderr
