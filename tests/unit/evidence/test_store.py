"""The evidence store: bounded by size and age (oldest first, counted), nothing written when the
volume runs short, records that survive a restart, a damaged record moved aside."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from edgevision.config.evidence import EvidenceConfig
from edgevision.evidence.store import EvidenceStore


def _config(**fields: float) -> EvidenceConfig:
    return EvidenceConfig(**{"min_free_mb": 0, **fields})


def test_the_oldest_go_first_past_the_size_cap_counted(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path, _config(max_mb=0.25))
    for index in range(5):
        assert store.put(f"cam/d/{index}.jpg", b"x" * 100_000, {"camera": "cam", "kind": "snapshot"}) is not None
    names = sorted(p.name for p in tmp_path.rglob("*.jpg"))
    assert names == ["3.jpg", "4.jpg"]  # 2 x 100 kB fit in 256 kB; 0, 1, 2 went, oldest first
    assert store.stats()["dropped"] == {"size_cap": 3} and store.stats()["bytes"] == 200_000
    assert not list(tmp_path.rglob("0.jpg.json"))  # the record goes with its file


def test_files_past_their_age_are_dropped_delivered_or_not(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path, _config(max_age_s=60))
    item = store.put("cam/d/old.mp4", b"clip", {"camera": "cam", "kind": "clip"})
    assert item is not None
    item.created = time.time() - 120
    store.enforce()
    assert not (tmp_path / "cam/d/old.mp4").exists() and store.stats()["dropped"] == {"age": 1}


def test_a_volume_short_of_space_drops_evidence_and_says_so(tmp_path: Path) -> None:
    free_mb = shutil.disk_usage(tmp_path).free / 2**20
    store = EvidenceStore(tmp_path, EvidenceConfig(min_free_mb=free_mb + 100))  # more than is free
    clip = tmp_path / "encoded.mp4"
    clip.write_bytes(b"clip")
    assert store.put("cam/d/a.jpg", b"x", {}) is None and store.put("cam/d/b.mp4", clip, {}) is None
    assert store.stats()["dropped"] == {"disk_full": 2} and not clip.exists()
    assert store.stats()["files"] == 0


def test_records_survive_a_restart_and_a_damaged_one_is_moved_aside(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path, _config())
    first = store.put("cam/d/1.jpg", b"one", {"camera": "cam", "kind": "snapshot"})
    store.put("cam/d/2.mp4", b"two", {"camera": "cam", "kind": "clip"})
    assert first is not None
    store.mark_delivered(first, "https://account/container/cam/d/1.jpg")
    (tmp_path / "cam/d/3.jpg").write_bytes(b"three")
    (tmp_path / "cam/d/3.jpg.json").write_text('{"meta": [' * 5000)  # hostile: not a record
    os.symlink("/etc/passwd", tmp_path / "cam/d/4.jpg.json")  # a link is not followed
    again = EvidenceStore(tmp_path, _config())
    stats = again.stats()
    assert stats["files"] == 2 and stats["pending"] == 1 and len(stats["damaged"]) == 1
    assert (tmp_path / "cam/d/3.jpg.json.damaged").exists()
    pending = again.next_pending(timeout=0)
    assert pending is not None and pending.name == "cam/d/2.mp4"
    latest = again.latest("cam")
    assert latest["snapshot"].delivered == "https://account/container/cam/d/1.jpg"
    assert latest["clip"].delivered is None
