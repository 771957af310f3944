"""Camera fps with and without a flood of POST /score clients, in one run.

Usage: python benchmarks/score_load.py [--attacks score unauthenticated slow-bodies metrics loopback-slow]
       [--tree module] [--seconds 20] [--rounds 3] [--every-frame] [--no-token] [--out FILE.md]

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
import http.client, json, socket, sys, threading, time
mode, host, port, token, image = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], open(sys.argv[5], "rb").read()
clients, seconds = int(sys.argv[6]), float(sys.argv[7])
counts, lock, end = {}, threading.Lock(), time.monotonic() + seconds
def count(key):
    with lock:
        counts[str(key)] = counts.get(str(key), 0) + 1
def http_call(method, path, body=None, headers=None):
    try:
        c = http.client.HTTPConnection(host, port, timeout=30)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse(); r.read(); c.close(); count(r.status)
    except OSError as exc:
        count(type(exc).__name__)
def hold(data):
    # A connection that sends `data` (headers, or nothing) and then holds on until closed.
    try:
        s = socket.create_connection((host, port), timeout=30)
        if data:
            s.sendall(data)
        s.recv(100); s.close(); count("held")
    except OSError as exc:
        count(type(exc).__name__)
def client():
    while time.monotonic() < end:
        if mode == "score":
            http_call("POST", "/score", image, {"Authorization": "Bearer " + token, "Content-Type": "image/jpeg"})
        elif mode == "unauthenticated":
            http_call("GET", "/status")
        elif mode == "metrics":
            http_call("GET", "/metrics")
        elif mode == "slow-bodies":
            hold(("POST /score HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer %s\\r\\nContent-Length: 1000000\\r\\n\\r\\n" % token).encode())
        elif mode == "loopback-slow":
            hold(b"")
threads = [threading.Thread(target=client) for _ in range(clients)]
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps(counts))
"""
# Each attack: (clients, whether they come from the edge network rather than loopback).
ATTACKS = {
    "score": (50, False),
    "unauthenticated": (50, True),
    "slow-bodies": (4, False),
    "metrics": (60, False),
    "loopback-slow": (200, False),
}
HEALTH = """
import socket, sys, time
from pathlib import Path
port, seconds, probe = int(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
ok = total = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    total += 1
    try:
        # As the image's HEALTHCHECK (`edgevision health`): the probe socket when there is one.
        client = socket.socket(socket.AF_UNIX) if probe.exists() else socket.socket()
        client.settimeout(2)
        client.connect(str(probe) if probe.exists() else ("127.0.0.1", port))
        client.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
        ok += client.recv(12).endswith(b"200")
        client.close()
    except OSError:
        pass
    time.sleep(0.5)
print(ok, total)
"""


def _edge_address() -> str:
    """This machine's address on its network: an edge client is not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("203.0.113.1", 1))
        return probe.getsockname()[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inferred(port: int, host: str = "127.0.0.1") -> float:
    """The camera's inferred-frame counter from /metrics, read from `host` (not the attackers'
    address, whose connections the module limits); retried for a few seconds."""
    deadline = time.monotonic() + 5
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
                for line in response.read().decode().splitlines():
                    if line.startswith("edgevision_frames_total{") and 'state="inferred"' in line:
                        return float(line.rsplit(" ", 1)[1])
            return 0.0
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1] / "module")
    parser.add_argument("--attacks", nargs="+", choices=sorted(ATTACKS), default=["score"])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--every-frame", action="store_true", help="the camera as fast as the CPU goes (else real time)"
    )
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
        "EDGEVISION_HTTP__BIND": "0.0.0.0",
        "EDGEVISION_STATE_DIR": str(workdir / "state"),
    }
    if not args.no_token:
        env["EDGEVISION_HTTP__TOKEN"] = TOKEN
    command = [sys.executable, "-m", "edgevision", "run", "--source", f"clip={video}", "--loop"]
    command += ["--every-frame"] if args.every_frame else []
    command += ["--provider", "cpu", "--sink", f"jsonl:{workdir / 'out.jsonl'}", "--status", "off"]
    module = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    windows: dict[str, dict[str, list[float]]] = {a: {"quiet": [], "load": []} for a in args.attacks}
    answers: dict[str, list[dict[str, int]]] = {a: [] for a in args.attacks}
    health: dict[str, list[tuple[int, int]]] = {a: [] for a in args.attacks}
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
            for attack in args.attacks:
                for kind in ("quiet", "load"):
                    clients = probe = None
                    if kind == "load":
                        count, edge = ATTACKS[attack]
                        host = _edge_address() if edge else "127.0.0.1"
                        clients = subprocess.Popen(
                            [
                                sys.executable,
                                "-c",
                                CLIENTS,
                                attack,
                                host,
                                str(port),
                                TOKEN,
                                str(image),
                                str(count),
                                str(args.seconds),
                            ],
                            stdout=subprocess.PIPE,
                            text=True,
                        )
                        probe = subprocess.Popen(
                            [
                                sys.executable,
                                "-c",
                                HEALTH,
                                str(port),
                                str(args.seconds - 1),
                                str(workdir / "state" / "http.sock"),
                            ],
                            stdout=subprocess.PIPE,
                            text=True,
                        )
                        time.sleep(1)  # connections ramp up before the window opens
                    # The camera's rate is read from the address the attackers do not use.
                    reader = "127.0.0.1" if kind == "quiet" or ATTACKS[attack][1] else _edge_address()
                    before, started = _inferred(port, reader), time.monotonic()
                    time.sleep(args.seconds - (1 if clients else 0) - 0.5)
                    fps = (_inferred(port, reader) - before) / (time.monotonic() - started)
                    windows[attack][kind].append(fps)
                    if clients is not None and probe is not None:
                        out, _ = clients.communicate(timeout=120)
                        answers[attack].append(json.loads(out.strip().splitlines()[-1]))
                        ok, total = map(int, probe.communicate(timeout=60)[0].split())
                        health[attack].append((ok, total))
                    print(f"round {index + 1} {attack} {kind}: {fps:.1f} fps", file=sys.stderr)
    finally:
        module.terminate()
        module.wait(30)
    results = {}
    for attack in args.attacks:
        quiet, load = statistics.median(windows[attack]["quiet"]), statistics.median(windows[attack]["load"])
        runs = answers[attack]
        results[attack] = {
            "clients": ATTACKS[attack][0],
            "from": "edge network" if ATTACKS[attack][1] else "loopback",
            "fps": windows[attack],
            "quiet_fps": round(quiet, 1),
            "load_fps": round(load, 1),
            "ratio": round(load / quiet, 3),
            "answers_per_s": {
                k: round(sum(a.get(k, 0) for a in runs) / (args.seconds * len(runs)), 1) for a in runs for k in a
            },
            "healthz_ok": f"{sum(o for o, _ in health[attack])}/{sum(t for _, t in health[attack])}",
        }
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tree": str(args.tree),
        "camera": "pedestrians-720p every frame" if args.every_frame else "pedestrians-720p in real time",
        "seconds": args.seconds,
        "rounds": args.rounds,
        "cores": os.cpu_count(),
        "attacks": results,
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(_markdown(result))
    return 0


def _markdown(result: dict) -> str:
    lines = [
        "# The cameras under attacks on the endpoints, CPU",
        "",
        f"{result['cores']} cores; camera: {result['camera']}; {result['rounds']} rounds, windows of "
        f"{result['seconds']:g} s alternating quiet and attacked, medians; {result['measured_at']}. The attackers run "
        "on the same cores. Made by `benchmarks/score_load.py --attacks ...`.",
        "",
        "| attack | clients | from | quiet fps | attacked fps | ratio | /healthz answered | answers per second |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in result["attacks"].items():
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(r["answers_per_s"].items()))
        lines.append(
            f"| {name} | {r['clients']} | {r['from']} | {r['quiet_fps']} | {r['load_fps']} | {r['ratio']:.3f} "
            f"| {r['healthz_ok']} | {answers} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
