"""Packaging: the wheel the Dockerfile's build stage installs carries everything the module reads."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.processes import REPO


@pytest.mark.slow
def test_the_wheel_carries_manifests_template_and_schema(tmp_path: Path) -> None:
    """What the Dockerfile's build stage installs: a wheel built from the repository."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("edgevision-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "edgevision/_manifests/yolox-nano.json",
        "edgevision/_manifests/coco80.txt",
        "edgevision/_deploy/deployment.template.json",
        "edgevision/schemas/deployment-manifest.schema.json",
        "edgevision/accel/native.py",
        "edgevision/cli/main.py",
    ):
        assert needed in names, needed
