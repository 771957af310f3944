"""`edgevision health`: the image's HEALTHCHECK. It asks the running module over the unix socket
in its state folder (no network client can crowd that out), else over loopback TCP."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from edgevision.errors import EXIT_FAILED, EXIT_OK

# The status line of an answer, at most.
_STATUS_BYTES = 64


def ask(path: str, unix_socket: Path | None, port: int, timeout_s: float) -> int:
    """The HTTP status of GET `path`: over the unix socket when it is there, else 127.0.0.1:port."""
    if unix_socket is not None and unix_socket.exists():
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address: str | tuple[str, int] = str(unix_socket)
    else:
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = ("127.0.0.1", port)
    with client:
        client.settimeout(timeout_s)
        client.connect(address)
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        head = client.recv(_STATUS_BYTES)
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() else 0


def cmd_health(args: argparse.Namespace) -> int:
    from edgevision.http_service import PROBE_SOCKET
    from edgevision.state import state_dir

    unix_socket = args.socket or state_dir(os.environ) / PROBE_SOCKET
    raw_port = os.environ.get("EDGEVISION_HTTP__PORT") or "9600"
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        print("edgevision: unhealthy: EDGEVISION_HTTP__PORT is not a port number", file=sys.stderr)
        return EXIT_FAILED
    port = int(raw_port)
    try:
        status = ask(args.path, unix_socket, port, args.timeout)
    except OSError as exc:
        print(f"edgevision: unhealthy: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    if status != 200:
        print(f"edgevision: unhealthy: {args.path} answered {status}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
