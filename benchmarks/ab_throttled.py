"""CPU of a throttled camera in two source trees, alternating in one run: before and after a change.

Usage: python benchmarks/ab_throttled.py --before OLD/module [--after module] [--rounds 3]
       [--target-fps 5] [--video FILE] [--out benchmarks/results/throttled-ab-cpu.md]
       (make a tree of the old commit with `git worktree add /tmp/before COMMIT`)

One file camera played in real time at `--target-fps` through `edgevision run` (the default
detection mode, a JSONL sink), each run a fresh process with its tree first on the path; the
figure is the process's CPU seconds (user + system), start-up included. Without `--video` the
script makes a 10 s 1080p H.264 clip at 30 fps (PyAV), the kind of stream a camera sends when
inference wants far fewer frames. Runs alternate (the machine is shared and noisy); the report
quotes medians and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path


def make_clip(path: Path, seconds: int = 10, fps: int = 30) -> Path:
    import av
    import cv2
    import numpy as np

    rng = np.random.default_rng(1)
    scene = cv2.GaussianBlur(rng.integers(0, 255, (1080, 1920, 3), np.uint8), (31, 31), 0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        for index in range(seconds * fps):
            frame = av.VideoFrame.from_ndarray(np.roll(scene, index * 5, axis=1), format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def run(tree: Path, config: Path, results: Path) -> tuple[float, int]:
    """CPU seconds of one `edgevision run` with this tree, and the results it wrote."""
    results.unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "edgevision", "run", "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        timeout=600,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    count = sum(1 for line in results.read_text().splitlines() if '"result"' in line) if results.is_file() else 0
    return cpu, count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the old tree's module/ folder")
    parser.add_argument("--after", type=Path, default=Path(__file__).resolve().parents[1] / "module")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target-fps", type=float, default=5.0)
    parser.add_argument("--video", type=Path)
    parser.add_argument("--out", type=Path, help="write the Markdown report here (and its JSON beside)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        video = args.video or make_clip(folder / "camera-1080p30.mp4")
        results = folder / "results.jsonl"
        config = folder / "config.yaml"
        config.write_text(
            json.dumps(
                {
                    "cameras": {"camera": {"uri": str(video.resolve()), "target_fps": args.target_fps}},
                    "sink": {"kind": "jsonl", "path": str(results)},
                }
            )
        )
        runs: dict[str, list[tuple[float, int]]] = {"before": [], "after": []}
        trees = [("before", args.before.resolve()), ("after", args.after.resolve())]
        for index in range(args.rounds):
            for label, tree in trees if index % 2 == 0 else trees[::-1]:
                runs[label].append(run(tree, config, results))
    before = statistics.median(cpu for cpu, _ in runs["before"])
    after = statistics.median(cpu for cpu, _ in runs["after"])
    lines = [
        "# CPU of a throttled camera before and after a change",
        "",
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}; {video.name if args.video else '1080p H.264, 30 fps, 10 s'}"
        f" at target_fps {args.target_fps:g}, played in real time through `edgevision run`; "
        f"{args.rounds} alternating rounds; the process's CPU seconds, start-up included.",
        "",
        "| tree | CPU s (median) | runs (CPU s, results) |",
        "| --- | --- | --- |",
        f"| before | {before:.2f} | {', '.join(f'{c:.2f} s, {n}' for c, n in runs['before'])} |",
        f"| after | {after:.2f} | {', '.join(f'{c:.2f} s, {n}' for c, n in runs['after'])} |",
        "",
        f"after / before: {after / before:.3f}",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)
        args.out.with_suffix(".json").write_text(
            json.dumps({"before": runs["before"], "after": runs["after"], "after_over_before": after / before}) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
