"""A download host on 127.0.0.1 (HTTPS with a throw-away CA, or plain HTTP) that serves files
honestly, endlessly, or a byte at a time: what model and sample downloads meet in the field."""

from __future__ import annotations

import http.server
import ssl
import threading
import time
from pathlib import Path
from typing import Literal

from tests.support.edgehub.certs import LocalPKI

Behaviour = Literal["honest", "endless", "trickle", "redirect-to-http"]


class DownloadServer:
    def __init__(self, files: dict[str, bytes], pki: LocalPKI | None = None) -> None:
        self.files = files
        self.behaviour: Behaviour = "honest"
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                name = self.path.rsplit("/", 1)[-1]
                if name not in server.files:
                    self.send_error(404)
                    return
                body = server.files[name]
                if server.behaviour == "redirect-to-http":
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{server.port}/{name}")
                    self.end_headers()
                    return
                self.send_response(200)
                if server.behaviour == "honest":
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if server.behaviour == "honest":
                        self.wfile.write(body)
                    elif server.behaviour == "endless":
                        while True:
                            self.wfile.write(b"\0" * 65536)
                    else:  # trickle: a byte every half second, forever
                        for byte in body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(0.5)
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.scheme = "http"
        # The CA to trust (SSL_CERT_FILE) for HTTPS.
        self.ca_cert = pki.ca_cert if pki is not None else None
        if pki is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(pki.server_cert, pki.server_key)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.base_url = f"{self.scheme}://127.0.0.1:{self.port}/files"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve_files(files: dict[str, bytes], directory: Path, https: bool = True) -> DownloadServer:
    directory.mkdir(parents=True, exist_ok=True)
    return DownloadServer(files, LocalPKI.create(directory) if https else None)
