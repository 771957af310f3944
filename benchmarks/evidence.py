"""What evidence costs, per camera: the ring buffer's memory and per-frame CPU (scale, mask,
JPEG), and a clip's encoding (H.264 through PyAV, against OpenCV's mp4v), at 720p and 1080p.

    python benchmarks/evidence.py [--repeats 3] [--out benchmarks/results/evidence-cpu]

Frames come from the pedestrians clip (1080p: the same frames scaled up). Times are CPU time of
this process on one thread (cv2.setNumThreads(1)), medians over the repeats. What bounds it:
the per-frame cost is paid for every frame kept (evidence.fps a second per camera); a clip's
encoding is paid once per clip, on the evidence worker's one thread, beside the cameras.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgevision.analytics.masks import Masks
from edgevision.config.analytics import MaskConfig
from edgevision.config.evidence import CameraEvidence
from edgevision.evidence import clip as clips
from edgevision.evidence.recorder import held_jpeg


def _frames(count: int, height: int) -> list[np.ndarray]:
    assets = Path(os.environ.get("EDGEVISION_ASSETS", Path(__file__).resolve().parents[2] / "shared" / "assets"))
    capture = cv2.VideoCapture(str(assets / "video" / "pedestrians-720p.avi"))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        if frame.shape[0] != height:
            frame = cv2.resize(frame, (height * 16 // 9, height), interpolation=cv2.INTER_LINEAR)
        frames.append(frame)
    return frames


def measure(height: int, repeats: int) -> dict[str, object]:
    config = CameraEvidence(enabled=True)
    clip_frames = round((config.pre_s + config.post_s) * config.fps)
    frames = _frames(clip_frames, height)
    masks = Masks({"corner": MaskConfig(polygon="0,0 0.25,0 0.25,0.25 0,0.25")})
    keep_ms: list[float] = []
    jpegs: list[bytes] = []
    for _ in range(repeats):
        started = time.process_time()
        jpegs = [kept[0] for f in frames if (kept := held_jpeg(f, config, masks.apply)) is not None]
        keep_ms.append((time.process_time() - started) / len(frames) * 1e3)
    sizes = [len(j) for j in jpegs]
    times = [i / config.fps for i in range(len(jpegs))]

    def render(index: int) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(jpegs[index], np.uint8), cv2.IMREAD_COLOR)

    encode: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        codecs = [clips.H264, clips.MP4V] if clips.available_codec() == clips.H264 else [clips.MP4V]
        for codec in codecs:
            seconds, size = [], 0
            for _ in range(repeats):
                path = Path(folder) / f"clip-{codec}.mp4"
                started = time.process_time()
                clips.encode(times, render, path, codec)
                seconds.append(time.process_time() - started)
                size = path.stat().st_size
            encode[codec] = {"cpu_s_per_clip": round(statistics.median(seconds), 3), "bytes": size}
    per_frame = statistics.median(sizes)
    ring_frames = round(config.pre_s * config.fps)
    return {
        "frame": f"{height * 16 // 9}x{height}",
        "held_as": f"{min(config.max_width, height * 16 // 9)} wide, JPEG q{config.jpeg_quality}",
        "keep_ms_per_frame": round(statistics.median(keep_ms), 2),
        "keep_core_share_at_fps": round(statistics.median(keep_ms) * config.fps / 1000, 4),
        "jpeg_bytes_median": int(per_frame),
        "ring_bytes_pre_s": int(per_frame * ring_frames),
        "recording_bytes_pre_and_post": int(per_frame * clip_frames),
        "buffer_cap_bytes": int(config.buffer_mb * 2**20),
        "clip_frames": len(jpegs),
        "encode": encode,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/evidence-cpu"))
    args = parser.parse_args()
    cv2.setNumThreads(1)
    config = CameraEvidence(enabled=True)
    rows = [measure(720, args.repeats), measure(1080, args.repeats)]
    import av

    record = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": sys.version.split()[0],
        "opencv": cv2.__version__,
        "pyav": av.__version__,
        "defaults": config.model_dump(),
        "rows": rows,
    }
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# Evidence: what it costs per camera (CPU)",
        "",
        f"{record['date']}, {record['machine']}; Python {record['python']}, OpenCV {record['opencv']}, "
        f"PyAV {record['pyav']}. `python benchmarks/evidence.py --repeats {args.repeats}`: CPU time on one "
        "thread, medians. Defaults: pre_s {pre_s}, post_s {post_s}, fps {fps}, max_width {max_width}, "
        "jpeg_quality {jpeg_quality}, buffer_mb {buffer_mb}.".format(**config.model_dump()),
        "",
        "| frame | held as | keep ms/frame | core share at fps | JPEG median | ring (pre_s) | recording (pre+post) | H.264 clip: CPU s, bytes | mp4v clip: CPU s, bytes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        encode = row["encode"]
        h264 = encode.get("h264")
        mp4v = encode["mp4v"]
        lines.append(
            f"| {row['frame']} | {row['held_as']} | {row['keep_ms_per_frame']} | {row['keep_core_share_at_fps']:.1%} | "
            f"{row['jpeg_bytes_median'] / 1024:.0f} KiB | {row['ring_bytes_pre_s'] / 2**20:.1f} MiB | "
            f"{row['recording_bytes_pre_and_post'] / 2**20:.1f} MiB | "
            + (f"{h264['cpu_s_per_clip']} s, {h264['bytes'] / 1024:.0f} KiB" if h264 else "not measured (no PyAV)")
            + f" | {mp4v['cpu_s_per_clip']} s, {mp4v['bytes'] / 1024:.0f} KiB |"
        )
    lines += [
        "",
        "What bounds it: keeping frames costs `keep ms/frame x fps` of a core per camera (the share "
        "column), paid on the preprocessing threads; a clip costs its encoding once, on the evidence "
        "worker's one thread. The ring holds pre_s of frames, a recording pre_s + post_s (more when "
        "events extend it), never more than buffer_mb per camera. GPU: not measured (nothing here "
        "runs on it).",
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
