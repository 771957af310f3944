"""`edgevision benchmark`: throughput against its ceilings, or a soak run."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from edgevision.config.model import ModelConfig
from edgevision.errors import EXIT_FAILED, EXIT_OK, UsageError


def model_config(args: argparse.Namespace) -> ModelConfig:
    """The model the benchmark (and the soak run) measures, as configuration names it."""
    spec = args.model
    named = {"path": spec} if spec.endswith(".onnx") or "/" in spec else {"name": spec}
    extra = {"manifest": args.manifest, "family": args.family, "labels": str(args.labels) if args.labels else None}
    return ModelConfig(**named, **{k: v for k, v in extra.items() if v is not None})


# The test assets' clips and what a camera on each counts: a line across the plaza's walkway
# (people cross it both ways), and one across the road's lanes.
ASSET_CLIPS = {
    "pedestrians": {"path": "video/pedestrians-720p.avi", "lines": {"walkway": {"points": "0,0.5 1,0.5"}}},
    "traffic": {"path": "video/traffic-360p.mp4", "lines": {"lanes": {"points": "0,0.6 1,0.6"}}},
}


def cmd_capacity(args: argparse.Namespace) -> int:
    import platform

    from edgevision.benchmark.capacity import CapacityClip, load_clips, measure, write
    from edgevision.detector.loader import DetectorLoader

    if args.clips is not None:
        if not args.clips.is_file():
            raise UsageError(f"--clips {args.clips}: no such file")
        clips = load_clips(args.clips)
    else:
        assets = Path(os.environ.get("EDGEVISION_ASSETS", ""))
        clips = [
            CapacityClip(name, assets / entry["path"], entry.get("lines", {}), entry.get("zones", {}))  # type: ignore[arg-type]
            for name, entry in ASSET_CLIPS.items()
            if os.environ.get("EDGEVISION_ASSETS") and (assets / entry["path"]).is_file()
        ]
        if not clips:
            raise UsageError("no clips: give --clips FILE, or set EDGEVISION_ASSETS to the test assets")
    for clip in clips:
        if not clip.path.is_file():
            raise UsageError(f"clip {clip.name}: {clip.path} not found")
    loader = DetectorLoader()
    report = measure(loader, loader.resolve(model_config(args)), clips, fps=args.fps, repeats=args.repeats)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, no GPU measured"
    for path in write(report, machine, args.out):
        print(f"edgevision: wrote {path}", file=sys.stderr)
    print(json.dumps(report["modes"]))
    return EXIT_OK


def cmd_benchmark(args: argparse.Namespace) -> int:
    if args.capacity:
        return cmd_capacity(args)
    from edgevision.benchmark.report import write_report
    from edgevision.benchmark.run import Plan, run_benchmark, sample_video

    video = args.video
    if video is None and os.environ.get("EDGEVISION_ASSETS"):
        candidate = Path(os.environ["EDGEVISION_ASSETS"]) / "video" / "pedestrians-720p.avi"
        video = candidate if candidate.is_file() else None
    with tempfile.TemporaryDirectory() as scratch:
        if video is None:
            video = sample_video(Path(scratch))
        elif not video.is_file():
            raise UsageError(f"--video {video}: no such file")
        if args.soak:
            from edgevision.benchmark.soak import run_soak, write_soak

            soak = run_soak(video, args.soak, model=model_config(args))
            for path in write_soak(soak, args.out):
                print(f"edgevision: wrote {path}", file=sys.stderr)
            print(json.dumps({k: soak[k] for k in ("results", "slopes_per_hour", "fps", "threads", "fds")}))
            return EXIT_OK
        clips = [video]
        if os.environ.get("EDGEVISION_ASSETS"):
            traffic = Path(os.environ["EDGEVISION_ASSETS"]) / "video" / "traffic-360p.mp4"
            clips += [traffic] if traffic.is_file() and traffic != video else []
        report = run_benchmark(
            video,
            args.providers,
            Plan.quick() if args.quick else Plan(),
            progress=True,
            model=model_config(args),
            clips=clips,
        )
    for path in write_report(report, args.out):
        print(f"edgevision: wrote {path}", file=sys.stderr)
    summary = {}
    for name, entry in report["providers"].items():
        summary[name] = {"available": entry["available"]}
        if entry.get("limit") and "naive" in entry:
            summary[name]["best_limit_fps"] = max(r["fps"] for r in entry["limit"])
            summary[name]["naive_fps"] = entry["naive"]["fps"]
    print(json.dumps(summary))
    for failure in report["failures"]:
        print(f"edgevision benchmark: FAILED: {failure}", file=sys.stderr)
    if report["failures"] and args.quick:
        # A quick run (a few dozen frames) is too short to judge a pipeline by; it says, not fails.
        print("edgevision benchmark: a --quick run is not judged; run without --quick", file=sys.stderr)
        return EXIT_OK
    return EXIT_FAILED if report["failures"] else EXIT_OK
