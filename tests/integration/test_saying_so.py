"""A run that did not do its job says so: results the sink could not write make the exit status
1 with one line, whether the run ends or is stopped (SIGTERM); and what the sink wrote survives
kill -9 (each line is written as it is published)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _run(model_path: Path, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "EDGEVISION_MODEL_DIR": str(model_path.parent),
        "EDGEVISION_MODEL__VERIFY": "warn",
        "EDGEVISION_STATE_DIR": str(tmp_path / "state"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "edgevision", "run", "--status", "off", "--provider", "cpu", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _one_error(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("edgevision: error:")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


def test_results_lost_to_a_full_sink_fail_the_run_in_one_line(model_path: Path, tmp_path: Path) -> None:
    done = _run(
        model_path, tmp_path, "--source", "synthetic:64x48@0", "--max-frames", "20", "--sink", "jsonl:/dev/full"
    )
    _out, err = done.communicate(timeout=120)
    assert done.returncode == 1
    line = _one_error(err)
    assert "20 result(s) could not be written" in line and "No space left on device" in line


def test_a_stop_with_a_full_sink_exits_1_without_a_traceback(model_path: Path, tmp_path: Path) -> None:
    running = _run(model_path, tmp_path, "--source", "synthetic:64x48@20", "--sink", "jsonl:/dev/full")
    time.sleep(6)
    running.send_signal(signal.SIGTERM)
    _out, err = running.communicate(timeout=60)
    assert running.returncode == 1
    assert "could not be written" in _one_error(err)


def test_every_line_published_survives_kill_9(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from edgevision.publish.sinks import JsonLinesSink\n"
        "sink = JsonLinesSink(Path(sys.argv[1]))\n"
        "for seq in range(200):\n"
        "    sink.publish({'type': 'result', 'seq': seq})\n"
        "print('published', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(out)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "published"
    child.kill()  # SIGKILL: no flush, no close
    child.wait(10)
    assert [json.loads(line)["seq"] for line in out.read_text().splitlines()] == list(range(200))
