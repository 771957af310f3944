"""The recorder on synthetic frames: a snapshot of the event's frame with its boxes drawn, a clip
from pre_s before to post_s after (decoded back: frames, size, codec), events close in time in
one clip, the masks black in every frame of both, the ring bounded in bytes, rules chosen."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgevision.analytics.camera import CameraAnalytics
from edgevision.config.camera import CameraConfig
from edgevision.config.evidence import CameraEvidence, EvidenceConfig
from edgevision.detections import Detections
from edgevision.evidence.clip import H264, available_codec
from edgevision.evidence.recorder import EvidenceRecorder, matching_rule
from edgevision.evidence.ring import FrameRing, Held
from edgevision.evidence.store import EvidenceStore
from edgevision.sources.frames import Frame

FPS = 10
MASK = "0,0 0.25,0 0.25,0.25 0,0.25"  # the top-left sixteenth


def _camera(**evidence: Any) -> CameraConfig:
    return CameraConfig(
        id="door",
        uri="synthetic:320x240@10",
        lines={"entrance": {"points": "0,0.5 1,0.5"}},
        masks={"corner": {"polygon": MASK}},
        evidence={"enabled": True, "fps": FPS, "pre_s": 1.0, "post_s": 1.0, **evidence},
    )


def _image(seq: int) -> np.ndarray:
    # Bright everywhere (the mask must make its part black), with a moving square.
    image = np.full((240, 320, 3), 200, np.uint8)
    x = 10 + 5 * seq % 280
    image[100:140, x : x + 30] = (0, 0, 255)
    return image


class _Rig:
    def __init__(self, tmp_path: Path, **evidence: Any) -> None:
        camera = _camera(**evidence)
        self.analytics = CameraAnalytics(camera, lambda _n, _d: None)
        self.store = EvidenceStore(tmp_path / "evidence", EvidenceConfig(min_free_mb=0))
        self.recorder = EvidenceRecorder(self.store, lambda name: f"here/{name}", lambda _c: self.analytics)
        self.recorder.configure([camera])
        self.recorder.start()
        self.seq = 0

    def frames(self, seconds: float) -> None:
        for _ in range(round(seconds * FPS)):
            seq = self.seq
            frame = Frame("door", seq, time.time(), time.monotonic(), _image(seq), media_time_s=seq / FPS)
            self.recorder.frame(frame)
            box = np.array([[10 + 5 * seq % 280, 100, 40 + 5 * seq % 280, 140]], np.float32)
            found = Detections(box, np.array([0.9], np.float32), np.array([0]), 320, 240)
            self.recorder.published("door", seq, found, ["person"], [7])
            self.seq += 1

    def event(self, name: str = "line_cross", **details: Any) -> dict[str, Any]:
        base = {"camera": "door", "seq": self.seq - 1, "line": "entrance", "track_id": 7, "label": "person"}
        return self.recorder.annotate(name, {**base, "at": "2026-12-04T10:00:00Z", **details})

    def finish(self) -> None:
        self.recorder.stop()

    def files(self, suffix: str) -> list[Path]:
        return sorted(self.store.root.rglob(f"*.{suffix}"))


def _decode(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def test_an_event_gives_a_masked_snapshot_and_a_clip_from_pre_s_to_post_s(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    rig.frames(3.0)
    annotated = rig.event()
    rig.frames(2.0)  # past post_s: the clip ends by itself
    rig.finish()
    evidence = annotated["evidence"]
    assert evidence["rule"] == "line" and evidence["snapshot"].startswith("here/door/")
    (snapshot,) = rig.files("jpg")
    (clip,) = rig.files("mp4")
    assert evidence["snapshot"] == f"here/{snapshot.relative_to(rig.store.root).as_posix()}"
    assert evidence["clip"] == f"here/{clip.relative_to(rig.store.root).as_posix()}"
    image = cv2.imread(str(snapshot))
    assert image.shape == (240, 320, 3)
    # The mask, over everything: black in every whole JPEG block (16 px with chroma) inside it.
    assert image[:48, :80].max() == 0
    assert image[150:, 100:].min() > 100  # the rest of the frame is there
    frames = _decode(clip)
    record = json.loads(Path(f"{clip}.json").read_text())["meta"]
    # 1 s before and 1 s after the event at 10 fps: 21 frames (both ends included).
    assert len(frames) == record["frames"] == 21 and record["events"] == 1
    assert frames[0].shape == (240, 320, 3) and (record["width"], record["height"]) == (320, 240)
    assert record["codec"] == available_codec() and record["browser_playable"] == (record["codec"] == H264)
    assert record["track_id"] == 7 and record["label"] == "person" and record["rule"] == "line"
    # Lossy H.264 still leaves the masked part black in every frame (inside its edge).
    assert max(int(f[4:56, 4:76].max()) for f in frames) <= 8


def test_events_close_in_time_share_one_clip_and_a_later_one_gets_its_own(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    rig.frames(2.0)
    first = rig.event()
    rig.frames(0.5)
    second = rig.event(track_id=8)
    rig.frames(3.0)
    third = rig.event(track_id=9)
    rig.frames(2.0)
    rig.finish()
    assert first["evidence"]["clip"] == second["evidence"]["clip"] != third["evidence"]["clip"]
    assert len(rig.files("jpg")) == 3 and len(rig.files("mp4")) == 2
    merged = json.loads(Path(f"{rig.files('mp4')[0]}.json").read_text())["meta"]
    # From 1 s before the first to 1 s after the second: 2.5 s, 26 frames.
    assert (merged["events"], merged["frames"]) == (2, 26)


def test_the_rules_choose_the_events(tmp_path: Path) -> None:
    details = {"line": "entrance", "zone": "dock", "label": "person"}
    assert matching_rule((), "line_cross", details) == "line"
    assert matching_rule((), "zone_exit", details) is None  # exits keep no evidence
    assert matching_rule(("line:exit",), "line_cross", details) is None
    assert matching_rule(("line:exit", "line:entrance"), "line_cross", details) == "line:entrance"
    assert matching_rule(("zone:*",), "zone_enter", details) == "zone:*"
    assert matching_rule(("dwell:dock",), "dwell", details) == "dwell:dock"
    assert matching_rule(("class:car",), "line_cross", details) is None
    assert matching_rule(("class:person",), "zone_enter", details) == "class:person"
    rig = _Rig(tmp_path, rules="class:car")
    rig.frames(1.0)
    assert "evidence" not in rig.event()
    rig.finish()
    with pytest.raises(ValueError, match="rule"):
        CameraEvidence(rules="line:entrance,../../etc")


def test_the_ring_is_bounded_in_bytes_even_while_a_clip_is_recorded(tmp_path: Path) -> None:
    ring = FrameRing(keep_s=1.0, max_bytes=10_000)
    for seq in range(100):
        ring.add(Held(seq, seq / 10, 0.0, b"x" * 1000, 1.0), pinned=0.0)
    assert ring.bytes <= 10_000 and ring.overflowed > 0
    ring = FrameRing(keep_s=1.0, max_bytes=10**9)
    for seq in range(100):
        ring.add(Held(seq, seq / 10, 0.0, b"x", 1.0))
    assert [h.seq for h in ring.between(0, 100)] == list(range(89, 100))  # the last second and a frame
    assert ring.find(95) is not None and ring.find(5) is None and ring.at_or_before(200).seq == 99


def test_a_camera_without_evidence_costs_nothing_and_keeps_nothing(tmp_path: Path) -> None:
    rig = _Rig(tmp_path)
    rig.recorder.configure([CameraConfig(id="door", uri="synthetic:320x240@10")])
    rig.frames(2.0)
    assert "evidence" not in rig.event()
    rig.finish()
    assert rig.files("jpg") == [] and rig.recorder.stats()["buffers"] == {}
