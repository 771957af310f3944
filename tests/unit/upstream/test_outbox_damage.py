"""A damaged, unwritable or full outbox never stops the module: moved aside, kept in memory, or
counted, and always said."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgevision.upstream.outbox import Outbox, OutboxLimits
from tests.unit.upstream.test_outbox import _conserved, _fill


def _works(outbox: Outbox) -> None:
    _fill(outbox, 3, start=100)
    item = outbox.oldest()
    assert item is not None and item.message_id == "run:cam:100"
    outbox.ack(item)
    _conserved(outbox)


def _written(path: Path, count: int) -> None:
    outbox = Outbox(path)
    _fill(outbox, count, size=200)
    outbox.close()


def test_a_garbage_file_is_moved_aside_and_a_new_outbox_started(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    outbox = Outbox(path)
    assert outbox.damaged is not None and outbox.damaged["lost"] is None
    moved = Path(outbox.damaged["moved_to"])
    assert moved.read_bytes() == b"this is not a database" * 100
    assert outbox.memory_reason is None and outbox.stats()["persistent"]
    assert [name for name, _ in outbox.startup_problems()] == ["outbox_damaged"]
    _works(outbox)


def test_a_truncated_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    _written(path, 2000)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size // 3)
    outbox = Outbox(path)
    assert outbox.damaged is not None and Path(outbox.damaged["moved_to"]).exists()
    assert outbox.stats()["queued"] == 0
    _works(outbox)


def test_a_foreign_table_is_moved_aside_with_its_count(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, text TEXT)")
        db.executemany("INSERT INTO outbox (text) VALUES (?)", [("a",), ("b",), ("c",)])
    outbox = Outbox(path)
    assert outbox.damaged is not None and outbox.damaged["lost"] == 3 and "unexpected" in outbox.damaged["reason"]
    _works(outbox)


def test_with_no_writable_place_the_outbox_lives_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state folder should be")
    outbox = Outbox(blocker / "outbox.sqlite")
    assert not outbox.stats()["persistent"] and "memory" in outbox.memory_reason
    assert [name for name, _ in outbox.startup_problems()] == ["outbox_in_memory"]
    _works(outbox)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB file system (tmpfs, mounted as root), for a disk that really fills."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_loses_messages_counted_by_reason_and_says_so(tiny_disk: Path) -> None:
    problems: list[tuple[str, dict]] = []
    outbox = Outbox(tiny_disk / "outbox.sqlite", on_problem=lambda name, d: problems.append((name, d)))
    _fill(outbox, 3000, size=2000)  # 6 MB of messages for a 2 MB disk
    outbox.report_problems()
    stats = outbox.stats()
    assert stats["dropped"].get("disk_full", 0) > 0, stats["dropped"]
    assert stats["queued"] > 100  # what fits is kept
    assert any(name == "outbox_dropped" and details["reason"] == "disk_full" for name, details in problems)
    assert outbox.disk_bytes() < 2 * 2**20
    _conserved(outbox)
    # The newest messages are the ones kept; the disk still takes new ones as old ones leave.
    assert outbox.oldest() is not None
    while (item := outbox.oldest()) is not None:
        outbox.ack(item)
    _fill(outbox, 10, size=2000, start=5000)
    assert len(outbox) == 10
    _conserved(outbox)


def test_the_disk_used_is_bounded_write_ahead_log_included(tmp_path: Path) -> None:
    limit = 1 * 2**20
    outbox = Outbox(tmp_path / "outbox.sqlite", OutboxLimits(max_messages=10**9, max_bytes=limit))
    largest = 0
    for start in range(0, 6000, 500):
        _fill(outbox, 500, size=1000, start=start)  # 6 MB through a 1 MB outbox
        largest = max(largest, outbox.disk_bytes())
    assert outbox.stats()["queued_bytes"] <= limit
    # The rows' limit, SQLite's page overhead (a quarter), and a write-ahead log cut to 2 MiB.
    assert largest <= limit * 1.25 + 3 * 2**20, largest
    _conserved(outbox)
    assert os.path.getsize(tmp_path / "outbox.sqlite") <= limit * 1.5
