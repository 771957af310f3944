"""The live one-line status on a terminal, and the summary at the end of a run."""

from __future__ import annotations

import shutil
import time
from typing import IO, Any

from edgevision.control import Control


class StatusLine:
    """Rewrites one stderr line: fps, latency, provider, drops, cameras up."""

    def __init__(self, stream: IO[str], window_s: float = 2.0) -> None:
        self._stream = stream
        self._window_s = window_s
        self._marks: list[tuple[float, int]] = []
        self._shown = False

    def __call__(self, control: Control) -> None:
        snapshot = control.metrics_snapshot()
        cameras = snapshot["cameras"].values()
        inferred = snapshot["totals"]["inferred"]
        now = time.monotonic()
        self._marks.append((now, inferred))
        while len(self._marks) > 2 and now - self._marks[0][0] > self._window_s:
            self._marks.pop(0)
        t0, n0 = self._marks[0]
        fps = (inferred - n0) / (now - t0) if now > t0 else 0.0
        latency = snapshot["totals"]["latency_ms"]
        up = sum(1 for c in cameras if c["state"] == "streaming")
        provider = str(snapshot.get("provider", "?")).replace("ExecutionProvider", "")
        line = (
            f"{fps:6.1f} fps | latency p50 {_ms(latency['p50'])} p95 {_ms(latency['p95'])} | {provider} | "
            f"frames {inferred} | dropped {snapshot['totals']['dropped']} | cameras {up}/{len(cameras)} streaming"
        )
        width = shutil.get_terminal_size((120, 20)).columns - 1
        self._stream.write("\r" + line[:width].ljust(width))
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def summary_lines(snapshot: dict[str, Any]) -> list[str]:
    """A human summary of a final metrics snapshot."""
    totals = snapshot["totals"]
    lines = [
        f"edgevision: {totals['inferred']} frames inferred of {totals['captured']} captured "
        f"({totals['dropped']} dropped, {totals['corrupt']} corrupt) in {snapshot['uptime_s']:.1f} s, "
        f"{totals['fps_avg']:.1f} fps on {snapshot.get('provider', '?')}",
    ]
    carried = totals.get("carried") or 0
    if carried:
        # "inferred" counts every result published; the detector saw fewer (the camera's detection mode).
        lines.append(
            f"  the detector saw {totals['inferred'] - carried} of them; the tracker carried the boxes of "
            f'{carried} (detection mode: see README, "Which frames the detector sees")'
        )
    latency = totals["latency_ms"]
    if latency["p50"] is not None:
        lines.append(
            f"  latency capture->publish: p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms"
        )
    stages = ", ".join(f"{k} {v}" for k, v in snapshot["stages_ms_per_frame_total"].items() if v is not None)
    if stages:
        lines.append(f"  ms per frame: {stages}")
    for camera, c in snapshot["cameras"].items():
        reasons = ", ".join(f"{k} {v}" for k, v in c["dropped_by_reason"].items())
        line = (
            f"  {camera}: {c['state']}, {c['inferred']}/{c['captured']} frames, {c['fps_avg']} fps"
            f"{f', dropped: {reasons}' if reasons else ''}"
        )
        if c["outages"]:
            line += f", {c['outages']} outage(s) {c['outage_s']} s, {c['reconnects']} reconnect(s)"
        if c["last_error"]:
            line += f", last error: {c['last_error']}"
        lines.append(line)
    return lines
