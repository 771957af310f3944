"""A new user's first run: `make run` in a fresh copy of the repository, on a machine without the
team's assets. The model and the pinned sample clip come from their download host, here a local
HTTPS server standing in for it (the manifests point at what it serves: the team's test model and
one of the assets' clips, each pinned by its own SHA-256), and the main job runs to the end."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import pytest

from tests.support.download_server import serve_files
from tests.support.processes import REPO

pytestmark = pytest.mark.slow


def _copy_of_the_repository(target: Path) -> Path:
    """What a clone holds: tracked files and new files git does not ignore."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _pins(folder: Path, model: Path, clip: Path) -> Path:
    """Manifests like the shipped ones, pinned to the files the stand-in host serves."""
    folder.mkdir()
    nano = json.loads((REPO / "models" / "yolox-nano.json").read_text())
    nano.update(sha256=hashlib.sha256(model.read_bytes()).hexdigest(), size_bytes=model.stat().st_size)
    (folder / "yolox-nano.json").write_text(json.dumps(nano))
    shutil.copy(REPO / "models" / "coco80.txt", folder / "coco80.txt")
    (folder / "samples").mkdir()
    sample = json.loads((REPO / "models" / "samples" / "one-by-one-person.json").read_text())
    sample.update(sha256=hashlib.sha256(clip.read_bytes()).hexdigest(), size_bytes=clip.stat().st_size)
    (folder / "samples" / "one-by-one-person.json").write_text(json.dumps(sample))
    return folder


def test_make_run_on_a_fresh_copy_without_assets(model_path: Path, videos: dict[str, Path], tmp_path: Path) -> None:
    clip = videos["traffic"]
    clone = _copy_of_the_repository(tmp_path / "clone")
    host = serve_files(
        {"yolox_nano.onnx": model_path.read_bytes(), "one-by-one-person-detection.mp4": clip.read_bytes()},
        tmp_path / "pki",
    )
    venv = REPO / ".venv"
    keep = {"PATH", "LANG", "LC_ALL", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        EDGEVISION_STATE_DIR=str(tmp_path / "state"),
        EDGEVISION_ASSETS=str(tmp_path / "no-assets"),
        EDGEVISION_MANIFEST_DIR=str(_pins(tmp_path / "manifests", model_path, clip)),
        EDGEVISION_DOWNLOAD_BASE_URL=host.base_url,
        SSL_CERT_FILE=str(host.ca_cert),
    )
    try:
        # The team's virtual environment stands in for the one `make` would build (-o: not rebuilt).
        done = subprocess.run(
            ["make", "-o", f"{venv}/.installed-stamp", "run", f"VENV={venv}"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        host.close()
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert sorted(host.requests) == ["/files/one-by-one-person-detection.mp4", "/files/yolox_nano.onnx"]
    models = tmp_path / "cache" / "edgevision" / "models"
    # The download left the model and nothing else (no part, no lock file).
    assert sorted(p.name for p in models.iterdir()) == ["yolox_nano.onnx"]
    assert "playing the sample clip" in output and "CC BY 4.0" in output
    # Each run writes a fresh results file and says where.
    (printed,) = {
        line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("results and metrics:")
    }
    assert printed.startswith("out/results-") and printed.endswith(".jsonl")
    assert [p.name for p in (clone / "out").iterdir()] == [Path(printed).name]
    lines = [json.loads(line) for line in (clone / printed).read_text().splitlines()]
    results = [m for m in lines if m["type"] == "result"]
    capture = cv2.VideoCapture(str(clip))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    # Played in real time like a camera: most frames inferred, from the sample camera.
    assert {r["camera"] for r in results} == {"sample"} and len(results) > frames // 2
    assert any(d["label"] == "car" for r in results for d in r["detections"])
    final = [m for m in lines if m["type"] == "metrics"][-1]
    assert final["model_verified"] is True  # pinned and checked, as on a user's machine
