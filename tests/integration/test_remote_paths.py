"""Paths from the twin and direct methods stay inside the module's own folders, take effect when
they can, and say when they cannot; remote cameras name no local source the local configuration
has not allowed and send no credentials to a host it has not allowed (started as IoT Edge starts
it, against the local edgeHub)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DESIRED = {
    "cameras": {"syn": {"uri": "synthetic:160x120@10"}},
    "upstream": {"connection_retry_interval_s": 1, "report_min_interval_s": 0.2},
}


def test_twin_paths_are_confined_to_the_state_folder(hub_factory, run_module, tmp_path: Path) -> None:
    state = tmp_path / "state"
    outside = tmp_path / "outside" / "results.jsonl"
    hub = hub_factory(DESIRED)
    module = run_module(hub, state_dir=state)
    hub.wait_for(lambda: (hub.reported.get("config") or {}).get("applied_version") == 1, 60, "the twin applied")
    # Outside the state folder: rejected, key by key, and nothing is created there.
    hub.patch_desired({"sink": {"kind": "jsonl", "path": str(outside)}})
    hub.wait_for(lambda: (hub.reported.get("config") or {}).get("rejected_version") == 2, 60, "the rejection")
    assert "sink/path" in hub.reported["config"]["errors"] and not outside.parent.exists()
    # Relative: inside the state folder, and live.
    hub.patch_desired({"sink": {"kind": "jsonl", "path": "results/out.jsonl"}})
    inside = state / "results" / "out.jsonl"
    hub.wait_for(lambda: inside.exists() and b'"type":"result"' in inside.read_bytes(), 60, "results in the new file")
    # A direct method is held to the same rule; a new outbox file is kept for the next start.
    status, answer = hub.invoke("applyConfig", {"upstream": {"outbox_path": "/var/tmp/outbox.sqlite"}})
    assert status == 400 and answer["errors"][0].startswith("upstream.outbox_path: the outbox file must be inside")
    status, answer = hub.invoke("applyConfig", {"upstream": {"outbox_path": "outbox-2.sqlite"}})
    assert status == 200 and answer["changes"]["needs_restart"] == ["upstream.outbox_path"]
    assert module.stop() == 0


class _Listener:
    """An HTTP host on loopback that records every request it gets (an attacker's, here)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                listener.requests.append(dict(self.headers))
                self.send_error(404)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_remote_cameras_read_no_local_file_and_send_no_password_elsewhere(
    hub_factory, run_module, tmp_path: Path, videos: dict[str, Path]
) -> None:
    attacker = _Listener()
    try:
        # The device owner's local configuration: a camera with credentials on its own host, and a
        # local file (the local configuration may name anything).
        local = tmp_path / "local.yaml"
        local.write_text(
            "cameras:\n"
            "  front: {uri: 'http://127.0.0.1:9/front.mjpg', credentials: 'env:FRONT_CAMERA'}\n"
            f"  clip: {{uri: 'file:{videos['traffic']}?loop=1'}}\n"
        )
        hub = hub_factory({"upstream": {"connection_retry_interval_s": 1, "report_min_interval_s": 0.2}})
        module = run_module(hub, "--config", str(local), env={"FRONT_CAMERA": "admin:hunter2-secret"})
        hub.wait_for(lambda: any(m.body.get("camera") == "clip" for m in hub.outputs("results")), 60, "the local clip")
        # Twin: another host with the local camera's credentials; and a local text file.
        hub.patch_desired(
            {
                "cameras": {
                    "evil": {"uri": f"http://localhost:{attacker.port}/x.mjpg", "credentials": "env:FRONT_CAMERA"},
                    "leak": {"uri": "/etc/hostname"},
                }
            }
        )
        hub.wait_for(lambda: (hub.reported.get("config") or {}).get("rejected_version") == 2, 60, "the rejection")
        errors = hub.reported["config"]["errors"]
        assert "not to localhost" in errors["cameras/evil/credentials"]
        assert "may not name a local source" in errors["cameras/leak/uri"]
        # A direct method: the local camera moved to the attacker's host keeps its credentials: refused.
        status, answer = hub.invoke(
            "applyConfig", {"cameras": {"front": {"uri": f"http://localhost:{attacker.port}/"}}}
        )
        assert status == 400 and answer["errors"][0].startswith("cameras.front.credentials: a credentials reference")
        status, answer = hub.invoke("applyConfig", {"cameras": {"leak": {"uri": "file:/etc/passwd"}}})
        assert status == 400 and "may not name a local source" in answer["errors"][0]
        time.sleep(2)  # any connection the module would have made has been made by now
        assert attacker.requests == []
        assert "hunter2-secret" not in module.stderr and "hunter2-secret" not in json.dumps(hub.reported)
        assert module.stop() == 0
    finally:
        attacker.close()
