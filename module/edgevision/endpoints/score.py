"""POST /score's two guards: the image is judged by its header before a pixel is decoded, and
scoring takes turns within a share of the time, so the cameras keep the engine."""

from __future__ import annotations

import asyncio
import io
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import cv2
import numpy as np
from PIL import Image

# The formats /score takes. OpenCV decodes many more (TIFF, EXR, JPEG 2000...); each is more
# decoder code an attacker can reach, and the README promises JPEG and PNG.
FORMATS = frozenset({"JPEG", "PNG"})


class Refusal(Exception):
    """The answer to a body that will not be decoded."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def inspect_image(body: bytes, max_pixels: int) -> tuple[str, int, int]:
    """Format, width and height from the header alone (Pillow reads no pixel data on open)."""
    if not body:
        raise Refusal(400, "empty body: POST a JPEG or PNG image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(body)) as image:
                kind, (width, height) = image.format, image.size
    except Image.DecompressionBombError:
        raise Refusal(413, f"image over {max_pixels} pixels") from None
    except Exception:  # noqa: BLE001 - hostile bytes make Pillow raise anything; a 415, never a 500
        raise Refusal(415, "not a JPEG or PNG image") from None
    if kind not in FORMATS:
        raise Refusal(415, "not a JPEG or PNG image")
    if width <= 0 or height <= 0:
        raise Refusal(400, "the image declares no pixels")
    if width * height > max_pixels:
        raise Refusal(413, f"image of {width}x{height} is over {max_pixels} pixels (http.score_max_pixels)")
    return kind, width, height


def decode(body: bytes, width: int, height: int) -> np.ndarray:
    """The checked image, decoded; a decoder that disagrees with the header is refused."""
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise Refusal(400, "the image could not be decoded")
    if image.shape[:2] != (height, width):
        raise Refusal(400, "the decoded image does not match its header")
    return image


class Busy(Exception):
    """More requests are waiting than the queue holds: 429."""


class ScoreGate:
    """One scoring at a time, at most `queue` waiting for it, and after each a pause that keeps scoring
    within `share` of the time: a score that took 20 ms at share 0.1 lets the next start 180 ms
    later. Lives on the server's event loop."""

    def __init__(self, queue: int, share: float) -> None:
        self.queue = queue
        self.share = share
        self._turn = asyncio.Lock()
        self._waiting = 0
        self._next_start = 0.0
        self.refused = 0

    @asynccontextmanager
    async def place(self) -> AsyncIterator[_Ticket]:
        """A place in the queue (held while the body is read and until the turn comes), or Busy."""
        if self._waiting >= self.queue:
            self.refused += 1
            raise Busy
        ticket = _Ticket(self)
        self._waiting += 1
        try:
            yield ticket
        finally:
            ticket.leave()

    @asynccontextmanager
    async def turn(self, ticket: _Ticket, wait_s: float) -> AsyncIterator[None]:
        """Exclusive use of the scorer once the pause after the previous one has passed, or Busy
        if that is more than `wait_s` away; the ticket's place in the queue is given up then."""
        deadline = time.monotonic() + wait_s
        try:
            await asyncio.wait_for(self._turn.acquire(), wait_s)
        except TimeoutError:
            self.refused += 1
            raise Busy from None
        try:
            ticket.leave()
            delay = self._next_start - time.monotonic()
            if time.monotonic() + delay > deadline:
                self.refused += 1
                raise Busy
            if delay > 0:
                await asyncio.sleep(delay)
            started = time.monotonic()
            try:
                yield
            finally:
                spent = time.monotonic() - started
                self._next_start = time.monotonic() + spent * (1.0 - self.share) / self.share
        finally:
            self._turn.release()


class _Ticket:
    def __init__(self, gate: ScoreGate) -> None:
        self._gate: ScoreGate | None = gate

    def leave(self) -> None:
        if self._gate is not None:
            self._gate._waiting -= 1
            self._gate = None
