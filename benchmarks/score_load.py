"""Camera fps with and without a flood of POST /score clients, in one run.

Usage: python benchmarks/score_load.py [--tree module] [--clients 50] [--seconds 20] [--rounds 3]
       [--no-token] [--out benchmarks/results/score-load-cpu.md]

`edgevision run` plays the pedestrians clip (every frame, looped) in a child process with its
HTTP endpoints on a free port. Windows alternate: quiet, then N client threads (in another child
process) posting a JPEG to /score as fast as answers come, ignoring Retry-After as an attacker
would. Camera fps is read from the module's own /metrics counter over each window. The clients
share this machine's cores with the module, so the load window also measures their cost; what
bounds the camera is the CPU pipeline (cores / per-frame core-ms of all stages). `--tree` runs
another source tree (`git worktree add /tmp/old COMMIT`; `--no-token` for trees without one).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

TOKEN = "benchmark-token-0123456789"

CLIENTS = """
import http.client, json, sys, threading, time
port, token, image, clients, seconds = int(sys.argv[1]), sys.argv[2], open(sys.argv[3], "rb").read(), int(sys.argv[4]), float(sys.argv[5])
counts, lock, end = {}, threading.Lock(), time.monotonic() + seconds
def client():
    while time.monotonic() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("POST", "/score", body=image, headers={"Authorization": "Bearer " + token, "Content-Type": "image/jpeg"})
            r = c.getresponse(); r.read(); status = r.status; c.close()
        except OSError as exc:
            status = type(exc).__name__
        with lock:
            counts[str(status)] = counts.get(str(status), 0) + 1
threads = [threading.Thread(target=client) for _ in range(clients)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(counts))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inferred(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("edgevision_frames_total{") and 'state="inferred"' in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1] / "module")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-token", action="store_true", help="the tree has no http.token")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    assets = Path(os.environ["EDGEVISION_ASSETS"])
    video, image = assets / "video" / "pedestrians-720p.avi", assets / "images" / "astronaut.jpg"
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="score-load-"))
    env = {
        **os.environ,
        "PYTHONPATH": str(args.tree),
        "EDGEVISION_HTTP__PORT": str(port),
        "EDGEVISION_HTTP__BIND": "127.0.0.1",
        "EDGEVISION_STATE_DIR": str(workdir / "state"),
    }
    if not args.no_token:
        env["EDGEVISION_HTTP__TOKEN"] = TOKEN
    command = [sys.executable, "-m", "edgevision", "run", "--source", f"clip={video}", "--every-frame", "--loop"]
    command += ["--provider", "cpu", "--sink", f"jsonl:{workdir / 'out.jsonl'}", "--status", "off"]
    module = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    windows: dict[str, list[float]] = {"quiet": [], "load": []}
    answers: list[dict[str, int]] = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if _inferred(port) > 0:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or module.poll() is not None:
                raise SystemExit("the module did not start")
            time.sleep(0.5)
        time.sleep(5)  # past the warm-up
        for index in range(args.rounds):
            for kind in ("quiet", "load"):
                clients = None
                if kind == "load":
                    clients = subprocess.Popen(
                        [
                            sys.executable,
                            "-c",
                            CLIENTS,
                            str(port),
                            TOKEN,
                            str(image),
                            str(args.clients),
                            str(args.seconds),
                        ],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    time.sleep(1)  # connections ramp up before the window opens
                before, started = _inferred(port), time.monotonic()
                time.sleep(args.seconds - (1 if clients else 0) - 0.5)
                fps = (_inferred(port) - before) / (time.monotonic() - started)
                windows[kind].append(fps)
                if clients is not None:
                    out, _ = clients.communicate(timeout=120)
                    answers.append(json.loads(out.strip().splitlines()[-1]))
                print(f"round {index + 1} {kind}: {fps:.1f} fps", file=sys.stderr)
    finally:
        module.terminate()
        module.wait(30)
    quiet, load = statistics.median(windows["quiet"]), statistics.median(windows["load"])
    per_second = {
        k: round(sum(a.get(k, 0) for a in answers) / (args.seconds * len(answers)), 1) for a in answers for k in a
    }
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tree": str(args.tree),
        "clients": args.clients,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "cores": os.cpu_count(),
        "fps": windows,
        "quiet_fps": round(quiet, 1),
        "load_fps": round(load, 1),
        "ratio": round(load / quiet, 3),
        "score_answers_per_s": per_second,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
