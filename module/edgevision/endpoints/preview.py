"""/preview/<camera>.mjpg: annotated frames of one camera as an MJPEG stream, for a browser or VLC.

Nothing is encoded while nobody watches (the pipeline only keeps its newest frame); viewers are
capped, and one that stops reading is dropped after a write timeout instead of holding its slot.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor

from aiohttp import web

from edgevision.control import Control
from edgevision.errors import NotReady

log = logging.getLogger(__name__)

PREVIEW_BOUNDARY = "edgevision-frame"
# Preview frames are for eyes, not analysis: a cap keeps a 4K camera's JPEG from hogging a link.
PREVIEW_MAX_BYTES = 400_000
# A viewer whose link takes longer than this to accept one frame is let go.
WRITE_TIMEOUT_S = 10.0


class PreviewStreams:
    def __init__(self, control: Control, fps: float, viewers: int, calls: Executor) -> None:
        self._control = control
        self.interval_s = 1.0 / fps
        self.max_viewers = viewers
        self.viewers = 0
        self.dropped_slow = 0
        self._calls = calls
        self._closing = asyncio.Event()
        self.write_timeout_s = WRITE_TIMEOUT_S

    def close(self) -> None:
        self._closing.set()

    async def stream(self, request: web.Request, camera: str) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        try:
            cameras = await loop.run_in_executor(self._calls, self._control.camera_ids)
        except NotReady as exc:
            return web.json_response({"error": str(exc)}, status=503)
        if camera not in cameras:
            return web.json_response({"error": "no such camera", "cameras": sorted(cameras)}, status=404)
        if self.viewers >= self.max_viewers:
            return web.json_response({"error": "preview viewer limit reached (http.preview_viewers)"}, status=503)
        self.viewers += 1
        response = web.StreamResponse(
            headers={
                "Content-Type": f"multipart/x-mixed-replace; boundary={PREVIEW_BOUNDARY}",
                "Cache-Control": "no-cache, private",
            }
        )
        try:
            await response.prepare(request)
            await self._frames(response, camera)
        except (ConnectionError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError):
                self.dropped_slow += 1
            log.debug("preview viewer of %s left (%s)", camera, type(exc).__name__)
        except (KeyError, NotReady):
            log.debug("preview of %s ended: the camera is gone", camera)
        finally:
            self.viewers -= 1
        return response

    async def _frames(self, response: web.StreamResponse, camera: str) -> None:
        loop = asyncio.get_running_loop()
        last_seq = None
        while not self._closing.is_set():
            started = loop.time()
            snap = await loop.run_in_executor(self._calls, self._control.snapshot, camera, PREVIEW_MAX_BYTES)
            if snap is not None and snap.seq != last_seq:
                last_seq = snap.seq
                head = (
                    f"--{PREVIEW_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(snap.jpeg)}\r\n"
                    f"X-Camera: {camera}\r\nX-Frame-Seq: {snap.seq}\r\n\r\n"
                ).encode()
                await asyncio.wait_for(response.write(head + snap.jpeg + b"\r\n"), self.write_timeout_s)
            pause = max(0.0, self.interval_s - (loop.time() - started))
            try:
                await asyncio.wait_for(self._closing.wait(), pause)
            except TimeoutError:
                pass
