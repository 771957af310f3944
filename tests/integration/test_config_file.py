"""The configuration file is a Kubernetes ConfigMap mount: `config.yaml` a symlink into `..data`,
itself a symlink swapped by a rename when the ConfigMap changes. The running module takes a new
version live (a camera added, no restart), refuses an invalid one whole and keeps running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.waits import wait_for


def _publish(mount: Path, version: str, text: str) -> None:
    """What the kubelet does: a new timestamped folder, then `..data` renamed over to it."""
    folder = mount / f"..{version}"
    folder.mkdir()
    (folder / "config.yaml").write_text(text)
    (mount / "..data_tmp").symlink_to(folder.name)
    os.replace(mount / "..data_tmp", mount / "..data")
    if not (mount / "config.yaml").is_symlink():
        (mount / "config.yaml").symlink_to("..data/config.yaml")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


@pytest.mark.slow
def test_a_configmap_swapped_while_running_is_taken_live_and_a_bad_one_refused(
    model_path: Path, tmp_path: Path
) -> None:
    mount = tmp_path / "config"
    mount.mkdir()
    out = tmp_path / "out.jsonl"
    sink = f"sink: {{kind: jsonl, path: {out}}}\nhttp: {{enabled: false}}\n"
    _publish(mount, "v1", "cameras:\n  a: {uri: 'synthetic:64x48@5'}\n" + sink)
    env = {**os.environ, "EDGEVISION_MODEL_DIR": str(model_path.parent)}
    process = subprocess.Popen(
        [sys.executable, "-m", "edgevision", "run", "--config", str(mount / "config.yaml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def cameras() -> set[str]:
            return {m["camera"] for m in _lines(out) if m["type"] == "result"}

        wait_for(lambda: cameras() == {"a"}, 60, "camera a's results")
        started = [m for m in _lines(out) if m.get("event") == "started"]
        _publish(mount, "v2", "cameras:\n  a: {uri: 'synthetic:64x48@5'}\n  b: {uri: 'synthetic:64x48@5'}\n" + sink)
        wait_for(lambda: "b" in cameras(), 30, "camera b added by the new ConfigMap")
        applied = [m for m in _lines(out) if m.get("event") == "config_applied"]
        assert applied and applied[-1]["changes"]["restarted"] == ["camera b (added)"]  # a untouched
        _publish(mount, "v3", "cameras:\n  a: {uri: 'synthetic:64x48@5', target_fps: -1}\n" + sink)
        wait_for(lambda: any(m.get("event") == "config_rejected" for m in _lines(out)), 30, "the bad ConfigMap refused")
        rejected = next(m for m in _lines(out) if m.get("event") == "config_rejected")
        assert rejected["source"] == "file" and any("target_fps" in e for e in rejected["errors"])
        # Both cameras still run: the last good configuration stays.
        count = len(_lines(out))
        wait_for(
            lambda: {m["camera"] for m in _lines(out)[count:] if m["type"] == "result"} == {"a", "b"}, 30, "results"
        )
        assert [m for m in _lines(out) if m.get("event") == "started"] == started  # never restarted
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
