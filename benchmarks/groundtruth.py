"""Counting against ground truth, and identity on the real clips: the project's ground-truth clips
(tests/support/groundtruth.py) and the two real clips, seen by the real model (detections cached),
through one source tree's analytics or two (before and after a change) on the same detections.

    .venv/bin/python benchmarks/groundtruth.py [--before /tmp/old/module] [--out benchmarks/results]

Per ground-truth clip: line counts against the truth, ids issued against the objects, id
switches per object and IDF1 (objects at least half uncovered, matched at IoU 0.5), and the
longest time an object is hidden (against the tracker's patience). Per real clip (no ground
truth): ids issued, ids per object in view per minute, median track length, and the counts of
a line across it. And what analytics cost per frame at 50 detections on one core (budget 1 ms).
What bounds it: one core of numpy per camera; inference is not part of it (cached).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Lines across the real clips: the plaza's middle (people walk both ways), the traffic clip's road.
REAL_LINES = {"pedestrians": "0,0.5 1,0.5", "traffic": "0,0.6 1,0.6"}


def evaluate(assets: Path) -> dict[str, Any]:
    """One tree's figures (the tree is whatever `edgevision` imports: see --tree)."""
    import edgevision
    from edgevision.analytics.camera import CameraAnalytics
    from edgevision.benchmark.tracking import cost
    from edgevision.config.camera import CameraConfig
    from tests.support import groundtruth as gt

    clips = gt.ClipDetections(assets, assets / "models" / "yolox_nano.onnx")
    figures: dict[str, Any] = {"tree": str(Path(edgevision.__file__).parent), "clips": {}, "real": {}}
    for name, clip in gt.library().items():
        found = clips.of(clip)
        camera = CameraConfig(id="gt", uri="synthetic:1280x720@0", lines=clip.lines, zones=clip.zones)
        events: list[tuple[str, dict[str, Any]]] = []
        analytics = CameraAnalytics(camera, lambda n, d: events.append((n, d)))  # noqa: B023 - used in the loop
        ids = []
        for frame, detections in enumerate(found):
            # The frame's time as the one time argument every tree takes.
            ids.append(analytics.process(detections, clips.labels, gt.media_time(frame)).track_ids or [])
        identity = gt.identity(clip, clips.renderer, found, ids)
        truth = {line: {d: dict(c) for d, c in gt.truth_crossings(clip, line).items()} for line in clip.lines}
        counted = analytics.snapshot()["lines"]
        figures["clips"][name] = {
            "what": clip.what,
            "lines": counted,
            "truth": truth,
            "exact": counted == truth,
            "objects": identity.objects,
            "ids": identity.ids,
            "switches": sum(identity.switches.values()),
            "idf1": round(identity.idf1, 3),
            "longest_hidden_frames": gt.longest_hidden(clip, clips.renderer),
            "dwell_s": [round(d["dwell_s"], 2) for n, d in events if n == "zone_exit"],
            "truth_dwell_s": [
                round(left - entered, 2) for z in clip.zones for _, entered, left in gt.truth_visits(clip, z)
            ],
        }
    for name, line in REAL_LINES.items():
        video = assets / "video" / ("pedestrians-720p.avi" if name == "pedestrians" else "traffic-360p.mp4")
        found, times = clips.of_video(video)
        camera = CameraConfig(id=name, uri="synthetic:64x48@0", lines={"line": {"points": line}})
        analytics = CameraAnalytics(camera, lambda _n, _d: None)
        lengths: dict[int, int] = {}
        in_view = []
        for detections, at in zip(found, times, strict=True):
            for track in analytics.process(detections, clips.labels, at).track_ids or []:
                if track is not None:
                    lengths[track] = lengths.get(track, 0) + 1
            in_view.append(int((detections.scores >= camera.tracking.high_score).sum()))
        snapshot = analytics.snapshot()
        minutes = (times[-1] + (times[-1] / max(len(times) - 1, 1))) / 60
        mean_view = sum(in_view) / len(in_view)
        issued = snapshot["tracks"]["ids_issued"]
        ordered = sorted(lengths.values())
        figures["real"][name] = {
            "frames": len(found),
            "mean_objects_in_view": round(mean_view, 1),
            "ids_issued": issued,
            "ids_per_object_minute": round(issued / minutes / mean_view, 2),
            "median_track_frames": ordered[len(ordered) // 2] if ordered else 0,
            "line": {d: sum(c.values()) for d, c in snapshot["lines"]["line"].items()},
        }
    figures["cost_at_50_detections"] = cost(repeats=5)
    return figures


def _run_tree(tree: Path | None, assets: Path) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree or REPO / "module"), str(REPO)])
    done = subprocess.run(
        [sys.executable, __file__, "--evaluate", "--assets", str(assets)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        raise SystemExit(f"evaluation in {tree or 'this tree'} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout)


def _table(runs: dict[str, dict[str, Any]]) -> str:
    names = list(runs)
    lines = [
        "| clip | what | truth (in/out) | "
        + " | ".join(f"{n}: counted, ids/objects, switches, IDF1" for n in names)
        + " | longest hidden (frames) |",
        "| --- | --- | --- | " + " | ".join("---" for _ in names) + " | --- |",
    ]

    def io(counts: dict[str, Any]) -> str:
        if not counts:
            return "-"
        return ", ".join(f"{sum(c['in'].values())}/{sum(c['out'].values())}" for c in counts.values())

    first = runs[names[0]]["clips"]
    for clip, row in first.items():
        cells = []
        for name in names:
            figures = runs[name]["clips"][clip]
            counted = io(figures["lines"]) if figures["lines"] else f"dwell {figures['dwell_s']}"
            cells.append(
                f"{counted}{'' if figures['exact'] else ' **wrong**'}, {figures['ids']}/{figures['objects']}, "
                f"{figures['switches']}, {figures['idf1']:.2f}"
            )
        truth = io(row["truth"]) if row["truth"] else f"dwell {row['truth_dwell_s']}"
        lines.append(
            f"| {clip} | {row['what']} | {truth} | " + " | ".join(cells) + f" | {row['longest_hidden_frames']} |"
        )
    lines += [
        "",
        "| real clip | objects in view | "
        + " | ".join(f"{n}: ids issued, ids per object-minute, median track frames, line in/out" for n in names)
        + " |",
        "| --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for clip, row in runs[names[0]]["real"].items():
        cells = []
        for name in names:
            r = runs[name]["real"][clip]
            cells.append(
                f"{r['ids_issued']}, {r['ids_per_object_minute']}, {r['median_track_frames']}, "
                f"{r['line'].get('in', 0)}/{r['line'].get('out', 0)}"
            )
        lines.append(f"| {clip} | {row['mean_objects_in_view']} | " + " | ".join(cells) + " |")
    lines += ["", "| analytics per frame, 50 detections, one core | " + " | ".join(names) + " |"]
    lines += ["| --- | " + " | ".join("---" for _ in names) + " |"]
    for case in ("tracking only", "1 zone + 1 line", "2 zones + 2 lines"):
        lines.append(
            f"| {case} | "
            + " | ".join(f"{runs[n]['cost_at_50_detections'][case]['ms_per_frame']:.3f} ms" for n in names)
            + " |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--assets", type=Path, default=Path(os.environ.get("EDGEVISION_ASSETS", REPO.parent / "shared" / "assets"))
    )
    parser.add_argument(
        "--before", type=Path, help="another tree's module/ folder, e.g. a git worktree of an older commit"
    )
    parser.add_argument("--out", type=Path, help="folder for groundtruth-cpu.json and .md")
    parser.add_argument("--evaluate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.evaluate:
        json.dump(evaluate(args.assets), sys.stdout)
        return 0
    runs: dict[str, dict[str, Any]] = {}
    if args.before:
        runs["before"] = _run_tree(args.before, args.assets)
    runs["after" if args.before else "this tree"] = _run_tree(None, args.assets)
    report = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "runs": runs,
    }
    table = _table(runs)
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "groundtruth-cpu.json").write_text(json.dumps(report, indent=2) + "\n")
        header = (
            "# Counting against ground truth, CPU\n\n"
            f"{report['machine']}; {report['measured_at']}. Made by `benchmarks/groundtruth.py"
            f"{' --before TREE' if args.before else ''}`: the real model's detections of each clip (cached), "
            "through each tree's analytics. Counted: in/out per line; ids/objects: ids issued on the clip "
            "against the objects in it; switches: times an object's id changed; IDF1 over objects at least "
            "half uncovered, IoU 0.5. Real clips have no ground truth: ids per object in view per minute "
            "(1: one id per object that came and went in a minute; higher: tracks broke up). Cost bound: one "
            "core of numpy per camera, inference excluded.\n\n"
        )
        (args.out / "groundtruth-cpu.md").write_text(header + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
