"""One camera: a reader thread that stamps frames, reconnects with backoff, and reports outages."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from edgevision.config.source_uri import SourceSpec
from edgevision.redaction import redact_uri
from edgevision.sources.credentials import CredentialsError, with_credentials
from edgevision.sources.frames import BufferPool, Frame, FrameQueue
from edgevision.sources.readers import EndOfStream, FrameReader, SourceFailure, open_reader

if TYPE_CHECKING:
    from edgevision.config.camera import CameraConfig
    from edgevision.config.model import SourceOptions
    from edgevision.metrics import CameraStats, PipelineMetrics

log = logging.getLogger(__name__)

# A frame is left unconverted only if the next one is due this many frame intervals before
# the camera is: network jitter then delays a frame by at most its own lateness.
SUPERSEDED_SPARE = 1.25
# A live stream that yields this many unusable frames in a row is treated as failed.
_MAX_CORRUPT_RUN = 50
# States after which the reader thread is gone for good.
ENDED_STATES = ("finished", "failed", "stopped")


class _Arrivals:
    """How far apart a live stream's frames arrive (a moving average)."""

    def __init__(self) -> None:
        self._last: float | None = None
        self.interval: float | None = None

    def arrived(self, now: float) -> None:
        if self._last is not None:
            gap = now - self._last
            self.interval = gap if self.interval is None else 0.8 * self.interval + 0.2 * gap
        self._last = now


class Source:
    """Reads one camera on its own thread into its FrameQueue."""

    def __init__(
        self,
        camera: CameraConfig,
        options: SourceOptions,
        queue: FrameQueue,
        metrics: PipelineMetrics,
        start_seq: int = 0,
    ) -> None:
        self.camera = camera
        self.spec: SourceSpec = camera.spec
        self.options = options
        self.queue = queue
        self.metrics = metrics
        self.stats: CameraStats = metrics.camera(camera.id)
        self.pool = BufferPool(keep=queue.maxsize + 4)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._generation = 0
        self._seq = start_seq
        self._first_seq = start_seq
        self._thread: threading.Thread | None = None
        self._reading_since: float | None = None
        # How long to wait before trying again a camera that sent a frame over the pixel cap.
        self._refused_backoff = options.reconnect_initial_s
        # A live camera's capture clock: monotonic, so neither NTP steps nor reconnects move it back.
        self._clock_origin = time.monotonic()

    @property
    def next_seq(self) -> int:
        return self._seq

    @property
    def ended(self) -> bool:
        return self.stats.state in ENDED_STATES

    def start(self) -> None:
        self._spawn()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def restart(self) -> None:
        """Reopen now (operator request); the old reader thread is abandoned, not waited for."""
        log.info("camera %s: restart requested", self.camera.id)
        self._spawn()

    def _spawn(self) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
        self._thread = threading.Thread(
            target=self._run, args=(generation,), name=f"source-{self.camera.id}-{generation}", daemon=True
        )
        self._thread.start()

    def _current(self, generation: int) -> bool:
        return generation == self._generation and not self._stop.is_set()

    def check_stall(self, now: float) -> bool:
        """Watchdog: a live reader stuck in read() past stall_timeout_s is replaced."""
        if not self.spec.live or self.stats.state != "streaming":
            return False
        since = self._reading_since
        if since is None or now - since < self.options.stall_timeout_s:
            return False
        log.warning("camera %s: no frame for %.1f s, reopening", self.camera.id, now - since)
        self.stats.stalled()
        self.stats.outage_began(f"stalled: no frame for {now - since:.1f} s")
        self._spawn()
        return True

    def _run(self, generation: int) -> None:
        backoff = self.options.reconnect_initial_s
        while self._current(generation):
            try:
                spec = with_credentials(self.spec, self.camera.credentials)
                reader = open_reader(spec, self.options.open_timeout_s, self.options.stall_timeout_s)
            except CredentialsError as exc:
                # Not a network fault: retrying soon will not help; the operator must fix it.
                log.error("camera %s: %s", self.camera.id, exc)
                self.stats.set_state("failed", str(exc))
                return
            except SourceFailure as exc:
                if not self.spec.live:
                    log.error("camera %s: %s", self.camera.id, exc)
                    self.stats.set_state("failed", str(exc))
                    return
                if self.stats.outage_began(str(exc)):
                    log.warning("camera %s: %s; retrying", self.camera.id, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.options.reconnect_max_s)
                continue
            outage = self.stats.connected()
            if outage is not None:
                log.warning("camera %s: back after %.1f s", self.camera.id, outage)
            else:
                log.info("camera %s: streaming from %s", self.camera.id, redact_uri(self.spec.target))
            backoff = self.options.reconnect_initial_s
            try:
                outcome = self._read_loop(reader, generation)
            finally:
                reader.close()
            if outcome != "retry":
                if generation == self._generation:
                    self.stats.set_state(outcome)
                return
        if generation == self._generation and not self.ended:
            self.stats.set_state("stopped")

    def _read_loop(self, reader: FrameReader, generation: int) -> str:
        """Read until the stream fails (returns "retry") or ends (an ended state)."""
        next_due = time.monotonic()
        corrupt_run = 0
        pace = not self.camera.keeps_every_frame and self.spec.kind in ("file", "folder", "synthetic")
        # A live stream's frames come when they come: how far apart is measured on arrival (its
        # timestamps may be made up: FFmpeg guesses 25 fps for an MJPEG camera whatever it sends).
        arrival = _Arrivals() if self.spec.live else None
        while self._current(generation):
            self._reading_since = time.monotonic()
            try:
                started = time.perf_counter()
                reader.grab()
                decode_s = time.perf_counter() - started
                if arrival is not None:
                    arrival.arrived(time.monotonic())
            except EndOfStream:
                # Looping is asked for in the camera's settings or in its URI (file:...?loop=1).
                if (self.camera.loop or self.spec.loop) and hasattr(reader, "rewind"):
                    reader.rewind()
                    continue
                return "finished"
            except SourceFailure as exc:
                if self.spec.live and self._current(generation):
                    waited = time.perf_counter() - started
                    error = str(exc)
                    # Connected but silent (the reader's own timeout): a stall, not a lost link.
                    if waited >= self.options.stall_timeout_s * 0.9:
                        self.stats.stalled()
                        error = f"stalled: no frame for {waited:.1f} s"
                    if self.stats.outage_began(error):
                        log.warning("camera %s: %s; reconnecting", self.camera.id, error)
                    return "retry"
                return "failed"
            finally:
                self._reading_since = None
            if not self._current(generation):
                break
            if pace:
                # Recorded and synthetic sources play in real time unless every frame is wanted.
                interval = reader.frame_interval_s()
                if interval:
                    next_due = max(next_due + interval, time.monotonic() - interval)
                    delay = next_due - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
            if self._superseded(arrival.interval if arrival is not None else reader.frame_interval_s()):
                if not self._pass_over(generation):
                    break
                if self._reached_max_frames():
                    return "finished"
                continue
            started = time.perf_counter()
            image = reader.retrieve(self.pool)
            decode_s += time.perf_counter() - started
            if image is None:
                self.stats.corrupt_frame()
                corrupt_run += 1
                if corrupt_run >= _MAX_CORRUPT_RUN and self.spec.live:
                    self.stats.outage_began(f"{corrupt_run} unusable frames in a row")
                    return "retry"
                continue
            corrupt_run = 0
            if image.shape[0] * image.shape[1] > self.options.max_frame_pixels:
                return self._refuse(image)
            self._refused_backoff = self.options.reconnect_initial_s
            self.metrics.stage("decode", decode_s)
            if not self._emit(image, generation, reader.media_time_s()):
                break
            if self._reached_max_frames():
                return "finished"
        return "stopped"

    def _refuse(self, image: np.ndarray) -> str:
        """A frame over sources.max_frame_pixels: counted, said, never queued. A live camera is
        closed and tried again with a growing wait (each try decodes one such frame at most); a
        recorded one fails."""
        height, width = image.shape[:2]
        self.pool.release(image)
        self.stats.oversize_frame()
        reason = (
            f"a {width}x{height} frame ({width * height} pixels) is over sources.max_frame_pixels "
            f"({self.options.max_frame_pixels}): refused"
        )
        if not self.spec.live:
            log.error("camera %s: %s", self.camera.id, reason)
            self.stats.set_state("failed", reason)
            return "failed"
        if self.stats.outage_began(reason):
            log.warning("camera %s: %s; trying again", self.camera.id, reason)
        self._stop.wait(self._refused_backoff)
        self._refused_backoff = min(self._refused_backoff * 2, self.options.reconnect_max_s)
        return "retry"

    def _superseded(self, interval: float | None) -> bool:
        """Whether a newer frame (`interval` seconds on) will replace this one before the camera
        is next due (the scheduler takes the newest frame when due): then it is never converted
        to pixels. A quarter of an interval to spare, so a late next frame costs no more than its
        delay."""
        wanted_at = self.queue.wanted_at
        if wanted_at is None or interval is None:
            return False
        return time.monotonic() + SUPERSEDED_SPARE * interval < wanted_at

    def _reached_max_frames(self) -> bool:
        return self.camera.max_frames is not None and self._seq - self._first_seq >= self.camera.max_frames

    def _pass_over(self, generation: int) -> bool:
        """A superseded frame: numbered and counted like any other, never queued."""
        with self._lock:
            if generation != self._generation:
                return False
            self._seq += 1
        self.stats.captured_frame()
        self.stats.dropped_frames("superseded")
        return True

    def _emit(self, image: np.ndarray, generation: int, media_time_s: float | None) -> bool:
        with self._lock:
            if generation != self._generation:
                self.pool.release(image)
                return False
            now = time.monotonic()
            media = media_time_s if media_time_s is not None else now - self._clock_origin
            frame = Frame(self.camera.id, self._seq, time.time(), now, image, media, self.pool)
            self._seq += 1
        self.stats.captured_frame()
        return self.queue.put(frame, self._stop)
