"""A stand-in for the IoT Edge workload API: HTTP over a unix socket, as aziot-edged serves it.

`create_from_edge_environment()` asks it for the trust bundle (`GET /trust-bundle`) and has it
sign SAS tokens (`POST /modules/{module}/genid/{genid}/sign`): the path edgeAgent's modules
really take, which the local-development connection string skips.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socketserver
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

API_VERSION = "2019-01-30"


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class WorkloadAPI:
    def __init__(self, socket_path: Path, ca_cert: Path, module_id: str, generation_id: str, key: bytes) -> None:
        self.socket_path = socket_path
        self.module_id = module_id
        self.generation_id = generation_id
        self.requests: list[str] = []
        self._lock = threading.Lock()
        trust_bundle = ca_cert.read_text()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, query = _split(self.path)
                api._count(f"GET {path}")
                if path == "/trust-bundle" and query.get("api-version") == API_VERSION:
                    self._reply(200, {"certificate": trust_bundle})
                else:
                    self._reply(404, {"message": f"no {path}"})

            def do_POST(self) -> None:
                path, query = _split(self.path)
                api._count(f"POST {path}")
                expected = f"/modules/{api.module_id}/genid/{api.generation_id}/sign"
                if path != expected or query.get("api-version") != API_VERSION:
                    self._reply(404, {"message": f"no {path}"})
                    return
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if request.get("keyId") != "primary" or request.get("algo") != "HMACSHA256":
                    self._reply(400, {"message": "unsupported key or algorithm"})
                    return
                digest = hmac.new(key, base64.b64decode(request["data"]), hashlib.sha256).digest()
                self._reply(200, {"digest": base64.b64encode(digest).decode()})

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def address_string(self) -> str:
                return "workload-client"  # a unix socket peer has no address

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        socket_path.unlink(missing_ok=True)
        self._server = _Server(str(socket_path), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="workload-api", daemon=True)

    @property
    def uri(self) -> str:
        return f"unix://{self.socket_path}"

    def _count(self, request: str) -> None:
        with self._lock:
            self.requests.append(request)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.socket_path.unlink(missing_ok=True)


def _split(path: str) -> tuple[str, dict[str, str]]:
    parts = urllib.parse.urlsplit(path)
    return parts.path, dict(urllib.parse.parse_qsl(parts.query))
