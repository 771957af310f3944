"""Direct methods: getStatus, applyConfig, restartCamera, snapshot, evidence."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

from edgevision.control import Control
from edgevision.errors import ConfigError, NotReady
from edgevision.publish.messages import iso_time

log = logging.getLogger(__name__)

# IoT Hub caps a direct method response at 128 KB; base64 adds a third.
SNAPSHOT_MAX_JPEG_BYTES = 90_000


class Methods:
    """Maps a method name and JSON payload to (HTTP-like status, JSON payload)."""

    def __init__(self, control: Control) -> None:
        self._control = control
        self._handlers: dict[str, Callable[[Any], tuple[int, Any]]] = {
            "getStatus": self.get_status,
            "applyConfig": self.apply_config,
            "restartCamera": self.restart_camera,
            "snapshot": self.snapshot,
            "evidence": self.evidence,
        }

    @property
    def names(self) -> list[str]:
        return sorted(self._handlers)

    def __call__(self, name: str, payload: Any) -> tuple[int, Any]:
        handler = self._handlers.get(name)
        if handler is None:
            return 404, {"error": f"unknown method {name!r}", "methods": self.names}
        try:
            return handler(payload)
        except NotReady as exc:
            return 503, {"error": str(exc)}
        except KeyError as exc:
            # The camera went away between the check and the call.
            return 404, {"error": f"unknown camera {exc.args[0]!r}"}
        except Exception as exc:  # a failing method answers 500; the module carries on
            log.exception("method %s failed", name)
            return 500, {"error": f"{type(exc).__name__}: {exc}"}

    def get_status(self, _payload: Any) -> tuple[int, Any]:
        return 200, self._control.status()

    def apply_config(self, payload: Any) -> tuple[int, Any]:
        if not isinstance(payload, dict):
            return 400, {"errors": ["payload: a configuration object (full or partial) is expected"]}
        try:
            changes = self._control.apply_patch(payload, source="method")
        except ConfigError as exc:
            return 400, {"errors": exc.problems}
        return 200, {"applied": True, "changes": changes}

    def _camera_id(self, payload: Any) -> tuple[str | None, tuple[int, Any] | None]:
        camera = payload.get("camera") if isinstance(payload, dict) else payload if isinstance(payload, str) else None
        if not isinstance(camera, str) or not camera:
            return None, (400, {"error": 'payload must name a camera: {"camera": "<id>"}'})
        if camera not in self._control.camera_ids():
            return None, (404, {"error": f"unknown camera {camera!r}", "cameras": self._control.camera_ids()})
        return camera, None

    def restart_camera(self, payload: Any) -> tuple[int, Any]:
        camera, error = self._camera_id(payload)
        if error:
            return error
        self._control.restart_camera(camera)
        return 200, {"camera": camera, "restarted": True}

    def snapshot(self, payload: Any) -> tuple[int, Any]:
        camera, error = self._camera_id(payload)
        if error:
            return error
        limit = SNAPSHOT_MAX_JPEG_BYTES
        if isinstance(payload, dict) and isinstance(payload.get("max_bytes"), int):
            limit = max(2_000, min(payload["max_bytes"], SNAPSHOT_MAX_JPEG_BYTES))
        shot = self._control.snapshot(camera, limit)
        if shot is None:
            return 404, {"error": f"camera {camera!r} has produced no frame yet"}
        return 200, {
            "camera": shot.camera,
            "seq": shot.seq,
            "captured_at": iso_time(shot.captured_at),
            "width": shot.width,
            "height": shot.height,
            "detections_seq": shot.detections_seq,
            "content_type": "image/jpeg",
            "jpeg_base64": base64.b64encode(shot.jpeg).decode("ascii"),
        }

    def evidence(self, payload: Any) -> tuple[int, Any]:
        """Where the camera's newest snapshot and clip are (a blob URL or a path; never the file:
        a method response holds 128 KB at most)."""
        camera, error = self._camera_id(payload)
        if error:
            return error
        latest = self._control.latest_evidence(camera)
        if latest is None:
            return 404, {"error": f"no evidence of camera {camera!r} yet", "camera": camera}
        return 200, {"camera": camera, **latest}
