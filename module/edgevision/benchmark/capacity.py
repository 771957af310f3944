"""`edgevision benchmark --capacity`: how many cameras one core watches in each detection mode,
and whether the counts stay those of every-frame detection.

Each clip is played as a live camera at `fps` (`CameraFrames`: its frames all decoded, as a
camera's are; the newest when the camera falls due goes on, and those a newer frame replaces
with time to spare are never converted to pixels, as in the pipeline): the gate decides, the
detector runs (one intra-op thread: one core) or the tracker carries, zones and lines count, and each result is encoded as the
module sends it. The process's CPU time over the clip's duration is the core-seconds a camera
costs per second; its inverse, cameras per core. What bounds it: one core, all stages of a
frame (decode, gate, preprocess, inference, postprocess, analytics, publish) on it; a GPU moves
inference off it (`gpu_ms_per_camera_second`, "not measured" without one).

Two more figures say how far a mode could go and how exact its counts can be:
- reading the camera alone (every frame decoded, the ones it sends converted, nothing else) is
  the floor of any mode's cost, so `decode_bound` (every-frame cost over reading's) is the most
  a gate could give on a clip;
- every-frame detection is itself played again with the camera joined one and two frames later
  (`reference_spread`): which frames a 15 fps camera takes from a 25 fps clip changes its own
  counts, and a gated mode's count difference is read against that.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgevision.analytics.camera import CameraAnalytics
from edgevision.config.camera import CameraConfig
from edgevision.detector.detector import Detector
from edgevision.detector.loader import DetectorLoader
from edgevision.inference.options import EngineConfig
from edgevision.models.store import ResolvedModel
from edgevision.publish.messages import encode, result_message
from edgevision.sources.source import SUPERSEDED_SPARE

MODES = ("every_frame", "interval", "motion")


@dataclass(frozen=True)
class CapacityClip:
    """A clip and what its camera counts (zones and lines as configuration names them)."""

    name: str
    path: Path
    lines: dict[str, Any] = field(default_factory=dict)
    zones: dict[str, Any] = field(default_factory=dict)


def load_clips(spec: Path) -> list[CapacityClip]:
    """Clips from a JSON file: {name: {"path": ..., "lines": {...}, "zones": {...}}}; relative
    paths are relative to the file."""
    document = json.loads(spec.read_text())
    clips = []
    for name, entry in document.items():
        path = Path(entry["path"])
        clips.append(
            CapacityClip(
                name, path if path.is_absolute() else spec.parent / path, entry.get("lines", {}), entry.get("zones", {})
            )
        )
    return clips


class CameraFrames:
    """A clip's frames as a live camera at `fps` sends them to inference, as the pipeline takes
    them: every frame decoded; when the camera is due, the scheduler takes its newest frame, so
    one a newer frame follows by then is not taken, and the source never converts it to pixels
    when the newer one comes with time to spare (pipeline/scheduler.py, sources/source.py).
    Yields (media time, image) of the frames taken; `joined`: the camera's first frame is the
    clip's frame `joined` (the ones before are passed over first)."""

    def __init__(self, path: Path, fps: float, joined: int = 0) -> None:
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise OSError(f"cannot open {path}")
        for _ in range(joined):
            self._capture.grab()
        self.fps = fps
        self.decoded = self.converted = 0
        self.media = 0.0

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        capture = self._capture
        first_ms: float | None = None
        next_due = 0.0
        spacing: float | None = None
        while capture.grab():
            self.decoded += 1
            position = capture.get(cv2.CAP_PROP_POS_MSEC)
            first_ms = position if first_ms is None else first_ms
            # Some containers say 0 at their last frame: time never runs back.
            before, self.media = self.media, max(self.media, (position - first_ms) / 1000.0)
            if self.media > before:
                spacing = self.media - before
            if spacing is not None and self.media + spacing <= next_due + 1e-6:
                if self.media + SUPERSEDED_SPARE * spacing >= next_due:
                    capture.retrieve()  # converted, then passed over by the scheduler
                    self.converted += 1
                continue
            ok, image = capture.retrieve()
            if not ok:
                continue
            self.converted += 1
            next_due = max(next_due + 1.0 / self.fps, self.media)
            yield self.media, image

    def duration(self) -> float:
        """The clip's seconds: its last frame's time plus one frame."""
        frames = self.decoded
        return self.media * frames / max(frames - 1, 1) if frames > 1 else 1.0 / self.fps

    def close(self) -> None:
        self._capture.release()


def play(detector: Detector, clip: CapacityClip, mode: str, fps: float, joined: int = 0) -> dict[str, Any]:
    """One clip as one live camera in one mode: CPU cost, frames detected, counts, events.
    `joined`: the camera's first frame is the clip's frame `joined` (the ones before are read
    before the clock starts), so the throttle picks other frames."""
    camera = CameraConfig(
        id=clip.name[:64] or "clip",
        uri="synthetic:64x48@0",
        lines=clip.lines,
        zones=clip.zones,
        detection={"mode": mode},
        tracking={"enabled": True},
    )
    events: Counter[str] = Counter()
    analytics = CameraAnalytics(camera, lambda name, _details: events.update([name]))
    labels = detector.labels
    camera_frames = CameraFrames(clip.path, fps, joined)
    detected = published = 0
    gate_s = 0.0
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    try:
        for media, image in camera_frames:
            gate_started = time.perf_counter()
            wanted = analytics.wants_detection(image, media)
            gate_s += time.perf_counter() - gate_started
            if wanted:
                found = detector.detect([image])[0]
                analysed = analytics.process(found, labels, time.time(), media, published)
                detected += 1
            else:
                analysed = analytics.carry(labels, time.time(), media, published)
            encode(
                result_message(
                    camera=camera.id,
                    seq=published,
                    captured_at=time.time(),
                    latency_ms=0.0,
                    detections=analysed.detections,
                    labels=labels,
                    model="bench",
                    provider="cpu",
                    batch_id=published,
                    batch_size=1,
                    track_ids=analysed.track_ids,
                    counts=analysed.counts,
                    media_time_s=media,
                    detected=wanted,
                )
            )
            published += 1
    finally:
        camera_frames.close()
    cpu_s = time.process_time() - started_cpu
    duration = camera_frames.duration()
    snapshot = analytics.snapshot()
    return {
        "mode": mode,
        "frames_decoded": camera_frames.decoded,
        "frames_converted": camera_frames.converted,
        "frames_published": published,
        "frames_detected": detected,
        "seconds": round(duration, 2),
        "wall_s": round(time.perf_counter() - started_wall, 2),
        "core_s_per_camera_s": round(cpu_s / duration, 4),
        "cameras_per_core": round(duration / cpu_s, 2) if cpu_s > 0 else None,
        "gate_ms_per_frame": round(gate_s * 1e3 / max(published, 1), 3),
        "lines": {name: {d: sum(c.values()) for d, c in counts.items()} for name, counts in snapshot["lines"].items()},
        "zones": {name: sum(z["entered"].values()) for name, z in snapshot["zones"].items()},
        "dwell_events": events["dwell"],
    }


def decode_cost(clip: CapacityClip, fps: float) -> float:
    """Core-seconds a second of the clip costs to read as the camera reads it (every frame
    decoded, the ones it sends converted to pixels) with nothing else done: the floor under
    every mode's cost."""
    camera_frames = CameraFrames(clip.path, fps)
    started = time.process_time()
    try:
        for _ in camera_frames:
            pass
    finally:
        camera_frames.close()
    duration = camera_frames.duration()
    return (time.process_time() - started) / duration if duration > 0 else 0.0


def _difference(run: dict[str, Any], reference: dict[str, Any]) -> float:
    """Relative difference of all counts (line crossings by direction, zone entries, dwell
    events) against the reference run's: 0 means the same counts."""
    mine = [v for line in run["lines"].values() for v in line.values()] + list(run["zones"].values())
    theirs = [v for line in reference["lines"].values() for v in line.values()] + list(reference["zones"].values())
    mine.append(run["dwell_events"])
    theirs.append(reference["dwell_events"])
    total = sum(theirs)
    off = sum(abs(a - b) for a, b in zip(mine, theirs, strict=True))
    return round(off / total, 4) if total else float(off)


def measure(
    loader: DetectorLoader, model: ResolvedModel, clips: list[CapacityClip], fps: float = 15.0, repeats: int = 1
) -> dict[str, Any]:
    """Every clip in every mode (median CPU of `repeats` runs); cameras per core per mode over
    the clips together (cameras weighted alike: the harmonic mean of each clip's figure)."""
    detector = Detector(loader.load(model, EngineConfig(provider="cpu", intra_op_threads=1)))
    report: dict[str, Any] = {"fps": fps, "model": model.name, "clips": {}, "modes": {}}
    for clip in clips:
        runs = {}
        for mode in MODES:
            trials = [play(detector, clip, mode, fps) for _ in range(repeats)]
            trials.sort(key=lambda r: r["core_s_per_camera_s"])
            runs[mode] = trials[len(trials) // 2]
        for mode in MODES:
            runs[mode]["count_difference"] = _difference(runs[mode], runs["every_frame"])
        reference = runs["every_frame"]
        decode = statistics.median(decode_cost(clip, fps) for _ in range(repeats))
        # Every-frame detection's own counts with the camera joined a frame or two later.
        spread = max(_difference(play(detector, clip, "every_frame", fps, joined), reference) for joined in (1, 2))
        report["clips"][clip.name] = {
            **runs,
            "decode_core_s_per_camera_s": round(decode, 4),
            "decode_bound": round(reference["core_s_per_camera_s"] / decode, 2) if decode > 0 else None,
            "reference_spread": spread,
        }
    decoding = [report["clips"][c.name]["decode_core_s_per_camera_s"] for c in clips]
    every_costs = [report["clips"][c.name]["every_frame"]["core_s_per_camera_s"] for c in clips]
    # The most any gate could give over the clips together: every clip costing its decoding only.
    report["decode_bound"] = round(sum(every_costs) / sum(decoding), 2) if sum(decoding) > 0 else None
    report["decode_cameras_per_core"] = round(len(decoding) / sum(decoding), 2) if sum(decoding) > 0 else None
    report["reference_spread"] = max(report["clips"][c.name]["reference_spread"] for c in clips)
    for mode in MODES:
        costs = [report["clips"][c.name][mode]["core_s_per_camera_s"] for c in clips]
        per_core = len(costs) / sum(costs) if costs and sum(costs) > 0 else None
        report["modes"][mode] = {
            "cameras_per_core": round(per_core, 2) if per_core else None,
            "gpu_ms_per_camera_second": "not measured",
            "max_count_difference": max(report["clips"][c.name][mode]["count_difference"] for c in clips),
        }
    every = report["modes"]["every_frame"]["cameras_per_core"] or 0
    for mode in MODES:
        figure = report["modes"][mode]["cameras_per_core"] or 0
        report["modes"][mode]["vs_every_frame"] = round(figure / every, 2) if every else None
    report["gate_ms_per_frame"] = statistics.median(
        report["clips"][c.name]["motion"]["gate_ms_per_frame"] for c in clips
    )
    return report


def _head(*columns: str) -> list[str]:
    """A Markdown table's header and rule."""
    return ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]


def markdown(report: dict[str, Any], machine: str) -> str:
    lines = [
        "# Cameras per core by detection mode",
        "",
        f"{machine}; each clip played as one live camera at {report['fps']:g} fps with {report['model']} on one "
        "core (one intra-op thread), all its frames decoded and the ones it sends converted to pixels, as the "
        "pipeline takes them; the process's CPU seconds over the clip's "
        "seconds. Bound: one core per camera, every stage of a frame on it. Made by "
        "`edgevision benchmark --capacity`.",
        "",
        *_head("mode", "cameras per core", "vs every_frame", "largest count difference", "GPU ms per camera-second"),
    ]
    for mode, entry in report["modes"].items():
        lines.append(
            f"| {mode} | {entry['cameras_per_core']} | {entry['vs_every_frame']}x | "
            f"{entry['max_count_difference']:.1%} | {entry['gpu_ms_per_camera_second']} |"
        )
    lines += [
        "",
        *_head(
            "clip",
            "mode",
            "frames detected / published",
            "core-s per camera-s",
            "cameras per core",
            "lines (in/out)",
            "zone entries",
            "dwell",
            "count difference",
        ),
    ]
    for clip, runs in report["clips"].items():
        for mode in MODES:
            run = runs[mode]
            lines_text = ", ".join(f"{n} {c.get('in', 0)}/{c.get('out', 0)}" for n, c in run["lines"].items()) or "-"
            zones_text = ", ".join(f"{n} {v}" for n, v in run["zones"].items()) or "-"
            lines.append(
                f"| {clip} | {mode} | {run['frames_detected']} / {run['frames_published']} | "
                f"{run['core_s_per_camera_s']:.3f} | {run['cameras_per_core']} | {lines_text} | {zones_text} | "
                f"{run['dwell_events']} | {run['count_difference']:.1%} |"
            )
    lines += [
        "",
        "What bounds it: reading the camera (every frame decoded, the ones it sends converted to pixels), "
        "which no mode saves, and every-frame detection's own counts.",
        "",
        *_head(
            "clip",
            "reading: core-s per camera-s",
            "every_frame cost over reading's (the most a gate could give)",
            "every_frame joined 1-2 frames later: count difference",
        ),
    ]
    for clip, runs in report["clips"].items():
        lines.append(
            f"| {clip} | {runs['decode_core_s_per_camera_s']:.3f} | {runs['decode_bound']}x | "
            f"{runs['reference_spread']:.1%} |"
        )
    lines += [
        f"| all (cameras alike) | {report['decode_cameras_per_core']} cameras per core reading only | "
        f"{report['decode_bound']}x | {report['reference_spread']:.1%} (largest) |",
        "",
        f"The motion gate's own cost: {report['gate_ms_per_frame']:.3f} ms a frame (median over the clips).",
    ]
    return "\n".join(lines) + "\n"


def chart(report: dict[str, Any], path: Path) -> None:
    """Cameras per core per clip and mode, as grouped bars (drawn with OpenCV)."""
    clips = list(report["clips"])
    colours = {"every_frame": (150, 150, 150), "interval": (200, 140, 40), "motion": (60, 170, 60)}
    group = 3 * 26 + 24
    width, height, left, bottom, top = max(640, group * len(clips) + 120), 460, 60, 150, 50
    image = np.full((height, width, 3), 255, np.uint8)
    peak = max(runs[mode]["cameras_per_core"] or 0 for runs in report["clips"].values() for mode in MODES) * 1.15
    scale = (height - bottom - top) / max(peak, 1e-6)
    cv2.line(image, (left, height - bottom), (width - 20, height - bottom), (0, 0, 0), 1)
    cv2.putText(
        image, f"cameras per core at {report['fps']:g} fps", (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1
    )
    for k, (mode, colour) in enumerate(colours.items()):
        cv2.rectangle(image, (330 + k * 110, 10), (342 + k * 110, 22), colour, -1)
        cv2.putText(image, mode, (346 + k * 110, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    for i, clip in enumerate(clips):
        x0 = left + 10 + i * group
        for k, mode in enumerate(colours):
            value = report["clips"][clip][mode]["cameras_per_core"] or 0
            x = x0 + k * 26
            y = int(height - bottom - value * scale)
            cv2.rectangle(image, (x, y), (x + 22, height - bottom), colours[mode], -1)
            cv2.putText(image, f"{value:.1f}", (x - 2, y - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1)
        text = np.full((20, 140, 3), 255, np.uint8)
        cv2.putText(text, clip[:22], (0, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        rotated = cv2.rotate(text, cv2.ROTATE_90_COUNTERCLOCKWISE)
        image[height - bottom + 5 : height - bottom + 145, x0 + 30 : x0 + 50] = rotated
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")


def write(report: dict[str, Any], machine: str, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "capacity-cpu.json", directory / "capacity-cpu.md", directory / "capacity-cpu.png"]
    paths[0].write_text(json.dumps({"machine": machine, **report}, indent=2) + "\n")
    paths[1].write_text(markdown(report, machine))
    chart(report, paths[2])
    return paths
