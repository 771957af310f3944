"""Three module processes share one camera list as a StatefulSet's replicas would: every camera's
results come from exactly one of them, and each says which cameras it holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgevision.config.replicas import held

CAMERAS = [f"cam{i}" for i in range(12)]


@pytest.mark.slow
def test_every_camera_is_watched_by_exactly_one_replica(model_path: Path, tmp_path: Path) -> None:
    processes = []
    for ordinal in range(3):
        config = tmp_path / f"replica-{ordinal}.json"
        config.write_text(
            json.dumps(
                {
                    "cameras": {c: {"uri": "synthetic:64x48@0", "max_frames": 5} for c in CAMERAS},
                    "replicas": {"count": 3},
                    "sink": {"kind": "jsonl", "path": str(tmp_path / f"out-{ordinal}.jsonl")},
                    "http": {"enabled": False},
                }
            )
        )
        # The ordinal as a StatefulSet gives it: the pod's host name.
        env = {**os.environ, "EDGEVISION_MODEL_DIR": str(model_path.parent), "HOSTNAME": f"edgevision-{ordinal}"}
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "edgevision", "-v", "run", "--config", str(config)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    seen: dict[str, set[int]] = {}
    for ordinal, process in enumerate(processes):
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        mine = held(CAMERAS, ordinal, 3)
        assert f"replica {ordinal} of 3: {len(mine)} of 12 cameras" in stderr
        lines = [json.loads(line) for line in (tmp_path / f"out-{ordinal}.jsonl").read_text().splitlines()]
        cameras = {m["camera"] for m in lines if m["type"] == "result"}
        assert cameras == set(mine)
        for camera in cameras:
            seen.setdefault(camera, set()).add(ordinal)
    assert sorted(seen) == sorted(CAMERAS) and all(len(owners) == 1 for owners in seen.values())


def test_a_replica_that_cannot_tell_its_ordinal_says_so_in_one_line(model_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"cameras": {"a": {"uri": "synthetic:64x48@0", "max_frames": 2}}, "replicas": {"count": 3}})
    )
    env = {**os.environ, "EDGEVISION_MODEL_DIR": str(model_path.parent), "HOSTNAME": "gateway"}
    done = subprocess.run(
        [sys.executable, "-m", "edgevision", "run", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "this replica's ordinal is unknown" in done.stderr
