"""Evidence of events: each camera's recent frames held as masked JPEGs (frames.py's ring), and
for an event a rule asks for, a snapshot of its frame and a clip from pre_s before to post_s
after, events close in time sharing one clip. Rendering and encoding run on one worker thread,
behind a bounded queue: the cameras never wait for a clip."""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cv2
import numpy as np

from edgevision.analytics.camera import CameraAnalytics, Overlay
from edgevision.config.camera import CameraConfig
from edgevision.config.evidence import CameraEvidence
from edgevision.config.section import comma_list
from edgevision.detections import Detections
from edgevision.errors import first_line
from edgevision.evidence import clip as clips
from edgevision.evidence.ring import FrameRing, Held
from edgevision.evidence.store import EvidenceStore
from edgevision.preview_frames import annotate
from edgevision.sources.frames import Frame

log = logging.getLogger(__name__)

# Events evidence is kept for, and the rule kind each answers to.
_KINDS = {"line_cross": "line", "zone_enter": "zone", "dwell": "dwell"}
_NAME_FIELD = {"line": "line", "zone": "zone", "dwell": "zone"}
_JOBS = 16


def matching_rule(rules: Sequence[str], name: str, details: dict[str, Any]) -> str | None:
    """The first of `rules` the event answers to (no rules: every crossing, entry and dwell)."""
    kind = _KINDS.get(name)
    if kind is None:
        return None
    if not rules:
        return kind
    for rule in rules:
        what, _, value = rule.partition(":")
        if what == "class":
            if value in ("*", details.get("label")):
                return rule
        elif what == kind and (not value or value == "*" or value == details.get(_NAME_FIELD[kind])):
            return rule
    return None


def event_id(camera: str, details: dict[str, Any]) -> str:
    """Unique, sortable and safe in a path: time, camera, a random tail."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")[:-3]
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", camera)[:64]
    return f"{stamp}-{safe}-{uuid.uuid4().hex[:8]}"


def held_jpeg(
    image: np.ndarray, config: CameraEvidence, mask: Callable[[np.ndarray], None] | None
) -> tuple[bytes, float] | None:
    """A frame as the ring holds it: scaled to max_width, masked, JPEG; with its scale."""
    scale = min(1.0, config.max_width / image.shape[1])
    # Linear, not area, interpolation: 1.6 ms instead of 8 ms from 1080p to 720p on one core
    # (benchmarks/results/evidence-cpu.md), for evidence frames that only need to be legible.
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    small = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR) if scale < 1.0 else image.copy()
    if mask is not None:
        mask(small)  # nothing under a mask is ever held
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
    return (jpeg.tobytes(), scale) if ok else None


@dataclass
class _Recording:
    event_id: str
    start: float
    end: float
    limit: float  # max_clip_s after start
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Pending:
    """A snapshot waiting for its frame's result (events are raised before it is published)."""

    seq: int
    event_id: str
    meta: dict[str, Any]


class _Camera:
    def __init__(self, config: CameraEvidence) -> None:
        self.config = config
        self.rules = comma_list(config.rules)
        self.ring = FrameRing(config.pre_s, int(config.buffer_mb * 2**20))
        self.last_kept = -1e18
        self.recording: _Recording | None = None
        self.snapshots: list[_Pending] = []


Locate = Callable[[str], str]


class EvidenceRecorder:
    """Frames in (`frame`, on the preprocessing threads), results in (`published`, in each
    camera's order), events in (`annotate`, which adds where the evidence will be); files out to
    the store. `locate(name)` says where a stored file will be once delivered."""

    def __init__(
        self,
        store: EvidenceStore,
        locate: Locate,
        overlays: Callable[[str], CameraAnalytics | None] = lambda _camera: None,
    ) -> None:
        self.store = store
        self._locate = locate
        self.overlays = overlays
        self._lock = threading.Lock()
        self._cameras: dict[str, _Camera] = {}
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=_JOBS)
        self._thread = threading.Thread(target=self._work, name="evidence", daemon=True)
        self.codec = clips.available_codec()
        self.dropped: Counter[str] = Counter()
        self.made: Counter[str] = Counter()
        self.encode_s: list[float] = []
        self.frame_ms: list[float] = []

    def start(self) -> None:
        self._thread.start()
        if self.codec != clips.H264:
            log.warning(
                "evidence clips: no H.264 encoder (PyAV with libx264 is not installed): clips are mp4v, "
                "which VLC plays and browsers do not"
            )

    def configure(self, cameras: Sequence[CameraConfig]) -> None:
        with self._lock:
            wanted = {c.id: c.evidence for c in cameras if c.evidence.enabled}
            for camera_id in set(self._cameras) - set(wanted):
                self._close(camera_id)
                del self._cameras[camera_id]
            for camera_id, config in wanted.items():
                current = self._cameras.get(camera_id)
                if current is None or current.config != config:
                    if current is not None:
                        self._close(camera_id)
                    self._cameras[camera_id] = _Camera(config)

    # -- frames in -------------------------------------------------------------------------------

    def frame(self, frame: Frame) -> None:
        """Keep a masked, scaled-down JPEG of the frame (at the evidence fps)."""
        camera = self._cameras.get(frame.camera)
        if camera is None or frame.image is None:
            return
        at = frame.media_time_s if frame.media_time_s is not None else frame.captured_at
        config = camera.config
        if at - camera.last_kept < 0.95 / config.fps:
            return
        camera.last_kept = at
        started = time.perf_counter()
        analytics = self.overlays(frame.camera)
        kept = held_jpeg(frame.image, config, analytics.masks.apply if analytics is not None else None)
        if kept is None:
            return
        held = Held(frame.seq, at, frame.captured_at, *kept)
        with self._lock:
            if self._cameras.get(frame.camera) is not camera:
                return  # reconfigured meanwhile
            recording = camera.recording
            camera.ring.add(held, recording.start if recording is not None else None)
            if recording is not None and (at > recording.end or at > recording.limit):
                self._close(frame.camera)
        self.frame_ms.append((time.perf_counter() - started) * 1e3)
        del self.frame_ms[:-200]

    def published(
        self,
        camera_id: str,
        seq: int,
        detections: Detections,
        labels: Sequence[str],
        track_ids: Sequence[int | None] | None,
    ) -> None:
        """A frame's result: kept with its JPEG (clips draw it); a snapshot waiting for it is made."""
        camera = self._cameras.get(camera_id)
        if camera is None:
            return
        with self._lock:
            held = camera.ring.find(seq)
            if held is not None:
                held.detections, held.labels, held.track_ids = detections, labels, track_ids
            if not camera.snapshots:
                return  # the common case, every frame: nothing waits for this one
            ready = [p for p in camera.snapshots if p.seq <= seq]
            camera.snapshots = [p for p in camera.snapshots if p.seq > seq]
            sources = [(p, camera.ring.at_or_before(p.seq)) for p in ready]
        for pending, source in sources:
            if source is None:
                self.dropped["no_frame"] += 1
                continue
            self._submit(lambda p=pending, s=source: self._snapshot(camera_id, p, s))

    # -- events in -------------------------------------------------------------------------------

    def annotate(self, name: str, details: dict[str, Any]) -> dict[str, Any]:
        """The event as it is published: with `evidence` (its id and where its snapshot and clip
        will be) when a rule of its camera asks for it."""
        camera_id = details.get("camera")
        camera = self._cameras.get(camera_id) if isinstance(camera_id, str) else None
        if camera is None:
            return details
        rule = matching_rule(camera.rules, name, details)
        if rule is None:
            return details
        assert isinstance(camera_id, str)
        config = camera.config
        seq = details.get("seq")
        meta = {
            "camera": camera_id,
            "rule": rule,
            "event": name,
            "track_id": details.get("track_id"),
            "label": details.get("label"),
            "at": details.get("at"),
        }
        evidence: dict[str, Any] = {}
        with self._lock:
            held = camera.ring.at_or_before(seq) if isinstance(seq, int) else camera.ring.newest()
            at = held.at if held is not None else None
            recording = camera.recording
            if config.clip and at is not None:
                if recording is not None and at <= recording.end:
                    # Close in time: the same clip, a little longer.
                    recording.end = min(max(recording.end, at + config.post_s), recording.limit)
                    recording.events.append(meta)
                    clip_id = recording.event_id
                else:
                    if recording is not None:
                        self._close(camera_id)
                    clip_id = event_id(camera_id, details)
                    camera.recording = _Recording(
                        clip_id, at - config.pre_s, at + config.post_s, at - config.pre_s + config.max_clip_s, [meta]
                    )
                evidence["clip"] = self._locate(self._name(camera_id, clip_id, "mp4"))
            own_id = event_id(camera_id, details)
            if config.snapshot and isinstance(seq, int):
                camera.snapshots.append(_Pending(seq, own_id, meta))
                del camera.snapshots[:-_JOBS]
                evidence["snapshot"] = self._locate(self._name(camera_id, own_id, "jpg"))
        if not evidence:
            return details
        return {**details, "evidence": {"id": own_id, "rule": rule, **evidence}}

    @staticmethod
    def _name(camera: str, item_id: str, suffix: str) -> str:
        return f"{camera}/{item_id[:4]}-{item_id[4:6]}-{item_id[6:8]}/{item_id}.{suffix}"

    def flush(self) -> None:
        """Clips being recorded are finished with what they have (the cameras stop)."""
        with self._lock:
            for camera_id in list(self._cameras):
                self._close(camera_id)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued within `timeout` (a stop has a grace to keep); what is not
        finished by then is lost (logged, counted)."""
        self.flush()
        deadline = time.monotonic() + timeout
        try:
            self._jobs.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            left = self._jobs.qsize()
            self.dropped["stopped"] += left
            log.warning("evidence: stopped with %d item(s) not finished", left)

    # -- files out -------------------------------------------------------------------------------

    def _close(self, camera_id: str) -> None:
        """End the camera's recording: its frames to the worker (lock held)."""
        camera = self._cameras.get(camera_id)
        if camera is None or camera.recording is None:
            return
        recording, camera.recording = camera.recording, None
        frames = camera.ring.between(recording.start, min(recording.end, recording.limit))
        if not frames:
            self.dropped["no_frame"] += 1
            return
        overflowed = camera.ring.overflowed
        self._submit(lambda: self._clip(camera_id, recording, frames, overflowed))

    def _submit(self, job: Callable[[], None]) -> None:
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self.dropped["busy"] += 1
            log.warning("evidence: the encoder is behind; an item was dropped")

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception as exc:  # noqa: BLE001 - one bad item must not end the worker
                self.dropped["failed"] += 1
                log.error("evidence: %s", first_line(exc))

    def _render(self, camera_id: str, held: Held, captions: bool, overlay: Overlay | None = None) -> np.ndarray:
        image = cv2.imdecode(np.frombuffer(held.jpeg, np.uint8), cv2.IMREAD_COLOR)
        detections = held.detections
        if detections is not None:  # in the held frame's pixels
            detections = Detections(
                detections.boxes * np.float32(held.scale),
                detections.scores,
                detections.class_ids,
                image.shape[1],
                image.shape[0],
            )
        annotate(image, self.overlays(camera_id), detections, held.labels, held.track_ids, captions, overlay)
        return image

    def _snapshot(self, camera_id: str, pending: _Pending, held: Held) -> None:
        image = self._render(camera_id, held, captions=True)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            self.dropped["failed"] += 1
            return
        meta = {
            **pending.meta,
            "kind": "snapshot",
            "event_id": pending.event_id,
            "seq": held.seq,
            "width": image.shape[1],
            "height": image.shape[0],
        }
        if self.store.put(self._name(camera_id, pending.event_id, "jpg"), jpeg.tobytes(), meta) is not None:
            self.made["snapshot"] += 1

    def _clip(self, camera_id: str, recording: _Recording, frames: list[Held], overflowed: int) -> None:
        started = time.perf_counter()
        name = self._name(camera_id, recording.event_id, "mp4")
        temporary = self.store.root / ".encoding" / f"{recording.event_id}.mp4"
        temporary.parent.mkdir(parents=True, exist_ok=True)
        analytics = self.overlays(camera_id)
        overlay = analytics.overlay() if analytics is not None else None  # once a clip, not a frame
        try:
            info = clips.encode(
                [h.at for h in frames],
                lambda i: self._render(camera_id, frames[i], captions=False, overlay=overlay),
                temporary,
                self.codec,
            )
        except Exception:
            temporary.unlink(missing_ok=True)
            raise
        self.encode_s.append(time.perf_counter() - started)
        del self.encode_s[:-50]
        first = recording.events[0]
        meta = {
            **first,
            "kind": "clip",
            "event_id": recording.event_id,
            "events": len(recording.events),
            "frames": info.frames,
            "width": info.width,
            "height": info.height,
            "duration_s": info.duration_s,
            "codec": info.codec,
            "browser_playable": info.codec == clips.H264,
            "truncated": overflowed > 0,
        }
        if self.store.put(name, temporary, meta) is not None:
            self.made["clip"] += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            buffers = {c: {"frames": len(cam.ring), "bytes": cam.ring.bytes} for c, cam in self._cameras.items()}
        frame_ms = sorted(self.frame_ms)
        encode = sorted(self.encode_s)
        return {
            "codec": self.codec,
            "made": dict(self.made),
            "dropped": dict(self.dropped),
            "queued_jobs": self._jobs.qsize(),
            "buffers": buffers,
            "frame_ms_p50": round(frame_ms[len(frame_ms) // 2], 3) if frame_ms else None,
            "clip_encode_s_p50": round(encode[len(encode) // 2], 3) if encode else None,
        }
