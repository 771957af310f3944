"""The image as users run it with `docker run`: its user, its GPU report and doctor on a machine
with no GPU, a clip through the module with every frame inferred, its HEALTHCHECK, and a stop
within the engine's grace period with nothing lost."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import pytest

from tests.support.container import Container, Engine
from tests.support.waits import wait_for

UID = 10001


def _results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if '"type":"result"' in line]


def _frames_in(video: Path) -> int:
    capture = cv2.VideoCapture(str(video))
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def test_the_module_runs_as_its_unprivileged_user(engine: Engine, model_mount: tuple[str, ...]) -> None:
    assert engine.image_config()["Config"]["User"] == str(UID)
    container = engine.start(*model_mount, command=("run", "--source", "synthetic:160x120@5"))
    try:
        wait_for(lambda: container.exec("true").returncode == 0, 30, "the container to start")
        status = container.exec("cat", "/proc/1/status").stdout
        uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.MULTILINE)
        assert uids is not None and uids.groups() == (str(UID), str(UID)), status
        assert "edgevision" in container.exec("cat", "/proc/1/cmdline").stdout
    finally:
        container.remove()


def test_gpu_says_none_and_why(engine: Engine) -> None:
    done = engine.run(command=("gpu",))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["mode"] == "none" and report["gpus"] == []
    assert any("device nodes" in reason for reason in report["reasons"]), report["reasons"]
    assert {p["name"] for p in report["probes"]} >= {"dev-dxg", "dev-nvidia", "libcuda", "nvml"}
    assert not any(p["ok"] for p in report["probes"])


def test_doctor_checks_the_cpu_paths_and_skips_the_gpu_ones_with_reasons(
    engine: Engine, model_mount: tuple[str, ...]
) -> None:
    done = engine.run(*model_mount, command=("doctor", "--json", "--max-batch", "2"))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    checks = report["checks"]
    on_cpu = [c for c in checks if c["provider"] == "CPUExecutionProvider"]
    on_gpu = [c for c in checks if c["provider"] not in (None, "CPUExecutionProvider")]
    assert on_cpu and all(c["status"] == "pass" for c in on_cpu), on_cpu
    assert {c["name"] for c in on_gpu} >= {"cuda-session", "tensorrt"}
    assert all(c["status"] == "skip" and c["detail"].startswith("no GPU: ") for c in on_gpu), on_gpu


@pytest.mark.slow
def test_a_read_only_clip_and_model_every_frame_inferred(
    engine: Engine, model_mount: tuple[str, ...], clips_mount: str, videos: dict[str, Path], shared_dir: Path
) -> None:
    """The model folder is read-only: the letterbox-in-graph copy goes to the state volume's cache."""
    for folder in ("results", "state"):
        (shared_dir / folder).mkdir()
        (shared_dir / folder).chmod(0o777)
    video = videos["pedestrians"]
    done = engine.run(
        *model_mount,
        clips_mount,
        f"--volume={shared_dir / 'results'}:/results",
        f"--volume={shared_dir / 'state'}:/data/state",
        command=(
            "run",
            "--source",
            f"clip=/clips/{video.name}",
            "--every-frame",
            "--preprocess",
            "graph",
            "--sink",
            "jsonl:/results/results.jsonl",
        ),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    frames = _frames_in(video)
    seqs = sorted(r["seq"] for r in _results(shared_dir / "results" / "results.jsonl"))
    assert seqs == list(range(frames)), f"{len(seqs)} results for {frames} frames"
    assert f"{frames} frames inferred of {frames} captured" in done.stderr
    derived = list((shared_dir / "state" / "cache").rglob("yolox_nano.*.onnx"))
    assert derived, "the derived model copy should be in the state volume's cache"


def _wait_healthy(container: Container, timeout: float) -> None:
    wait_for(lambda: container.healthcheck()[0] == 0, timeout, "the HEALTHCHECK to pass", poll_s=1)


@pytest.mark.slow
def test_the_healthcheck_follows_the_module(engine: Engine, model_mount: tuple[str, ...]) -> None:
    container = engine.start(*model_mount, command=("run", "--source", "synthetic:160x120@5"))
    idle = engine.start("--entrypoint=sleep", command=("120",))
    try:
        _wait_healthy(container, 60)
        # Frozen (the process is there but answers nothing): the check's own timeout fails it.
        container.signal("STOP")
        code, output = container.healthcheck()
        assert code != 0, output
        container.signal("CONT")
        _wait_healthy(container, 30)
        # A container whose module process is not running never passes.
        wait_for(lambda: idle.running, 30, "the idle container to start")
        code, output = idle.healthcheck()
        assert code != 0 and "unhealthy" in output, output
    finally:
        container.remove()
        idle.remove()


@pytest.mark.slow
def test_sigterm_stops_within_the_grace_period_with_the_sink_flushed(
    engine: Engine, model_mount: tuple[str, ...], shared_dir: Path
) -> None:
    results = shared_dir / "results.jsonl"
    container = engine.start(
        *model_mount,
        f"--volume={shared_dir}:/results",
        command=("run", "--source", "cam=synthetic:320x240@20", "--sink", "jsonl:/results/results.jsonl"),
    )
    try:
        wait_for(lambda: len(_results(results)) >= 40, 90, "results from the running module", poll_s=0.5)
        elapsed, code = container.stop()
        logs = container.logs()
    finally:
        container.remove()
    assert code == 0, logs[-3000:]
    assert elapsed < 10, f"stopping took {elapsed:.1f} s: the engine kills at 10 s"
    lines = [json.loads(line) for line in results.read_text().splitlines()]  # every line whole
    assert lines[-1]["type"] == "event" and lines[-1]["event"] == "stopped"
    inferred = re.search(r"(\d+) frames inferred of \d+ captured", logs)
    assert inferred is not None, logs[-3000:]
    seqs = [r["seq"] for r in lines if r["type"] == "result"]
    # Everything inferred before the stop reached the file, in order, once.
    assert len(seqs) == int(inferred.group(1)) and seqs == sorted(set(seqs))
