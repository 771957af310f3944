"""Cameras per core by detection mode on every clip the project has: the test assets' two clips
(their lines in benchmarks/capacity-clips.json), the ground-truth clips (tests/support/
groundtruth.py, with their own lines and zones) and a still scene (the ground-truth floor with
sensor noise, 20 s), each rendered to a file and played as a live camera by
`edgevision benchmark --capacity`.

    .venv/bin/python benchmarks/capacity.py [--out benchmarks/results] [--fps 15] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import groundtruth as gt  # noqa: E402

STILL_SECONDS = 20


def _still(renderer: gt.Renderer, path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), gt.FPS, (gt.WIDTH, gt.HEIGHT))
    rng = np.random.default_rng(2)
    noise = [rng.normal(0, 2.0, renderer.background.shape).astype(np.int16) for _ in range(4)]
    for frame in range(STILL_SECONDS * gt.FPS):
        writer.write(np.clip(renderer.background.astype(np.int16) + noise[frame % 4], 0, 255).astype(np.uint8))
    writer.release()
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmark-results")
    parser.add_argument("--fps", default="15")
    parser.add_argument("--repeats", default="1")
    args = parser.parse_args()
    assets = Path(os.environ.get("EDGEVISION_ASSETS") or REPO.parent / "shared" / "assets")
    renderer = gt.Renderer(assets)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        clips = {}
        for name, entry in json.loads((REPO / "benchmarks" / "capacity-clips.json").read_text()).items():
            path = entry["path"]
            clips[name] = {
                **entry,
                "path": str(assets / path.removeprefix("assets:")) if path.startswith("assets:") else path,
            }
        for name, clip in gt.library().items():
            video = gt.write_video(clip, renderer, folder / f"{name}.avi")
            clips[f"gt-{name}"] = {"path": str(video), "lines": clip.lines, "zones": clip.zones}
        clips["still"] = {
            "path": str(_still(renderer, folder / "still.avi")),
            "zones": {"floor": {"polygon": "0.2,0.2 0.8,0.2 0.8,0.9 0.2,0.9"}},
        }
        spec = folder / "clips.json"
        spec.write_text(json.dumps(clips))
        command = [sys.executable, "-m", "edgevision", "benchmark", "--capacity", "--clips", str(spec)]
        command += ["--out", str(args.out), "--fps", args.fps, "--repeats", args.repeats]
        return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
