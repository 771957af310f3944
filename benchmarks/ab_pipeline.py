"""Pipeline throughput of two source trees, alternating in one run: before and after a change.

Usage: python benchmarks/ab_pipeline.py --before OLD/module --after module [--rounds 5] [--frames 600]
       (make a tree of the old commit with `git worktree add /tmp/before COMMIT`)

Each round runs, for a real video (decode included) and for synthetic frames, the CPU pipeline
of one tree then the other, each in a fresh process with that tree first on the path. The
machine is shared and noisy, so runs alternate and the report quotes medians and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

# Runs inside the child: the tree under test is first on sys.path.
MEASURE = """
import json, sys
import onnxruntime as ort
ort.set_default_logger_severity(3)
try:
    from edgevision.benchmark.measure import measure_pipeline
except ImportError:  # trees from before the benchmark package existed
    from edgevision.benchmark import measure_pipeline
source, frames, video = sys.argv[1], int(sys.argv[2]), sys.argv[3]
uris, every = ([video], True) if source == "video" else (["synthetic:1280x720@0"], False)
print(json.dumps(measure_pipeline("cpu", uris, frames, every)["fps"]))
"""


def measure(tree: Path, source: str, frames: int, video: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, source, str(frames), str(video)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    return float(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the old tree's module/ folder")
    parser.add_argument("--after", type=Path, default=Path(__file__).resolve().parents[1] / "module")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--video", type=Path)
    parser.add_argument("--out", type=Path, help="write the Markdown report here")
    args = parser.parse_args()
    video = args.video or Path(os.environ["EDGEVISION_ASSETS"]) / "video" / "pedestrians-720p.avi"
    runs: dict[str, dict[str, list[float]]] = {s: {"before": [], "after": []} for s in ("video", "synthetic")}
    for _ in range(args.rounds):
        for source in runs:
            for label, tree in (("before", args.before), ("after", args.after)):
                runs[source][label].append(measure(tree.resolve(), source, args.frames, video))
    lines = [
        "# Pipeline throughput before and after a change, CPU",
        "",
        f"{os.cpu_count()} cores; {args.rounds} alternating rounds of {args.frames} frames per run; "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}.",
        "",
        "| source | before fps (median) | after fps (median) | after / before | runs before | runs after |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for source, result in runs.items():
        before, after = statistics.median(result["before"]), statistics.median(result["after"])
        lines.append(
            f"| {source} | {before:.1f} | {after:.1f} | {after / before:.3f} | "
            f"{', '.join(map(str, result['before']))} | {', '.join(map(str, result['after']))} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)
        args.out.with_suffix(".json").write_text(json.dumps(runs, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
