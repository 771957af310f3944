"""The on-disk outbox: order, limits, and what survives a kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from edgevision.upstream.outbox import Outbox, OutboxLimits
from edgevision.upstream.outbox_file import open_database


def _fill(outbox: Outbox, count: int, size: int = 10, start: int = 0) -> None:
    for i in range(start, start + count):
        outbox.put("results", b"x" * size, {"type": "result"}, f"run:cam:{i}")


def _conserved(outbox: Outbox) -> None:
    stats = outbox.stats()
    assert stats["enqueued"] + stats["inherited"] == stats["sent"] + stats["queued"] + sum(stats["dropped"].values())


def test_messages_come_out_oldest_first_and_leave_when_acknowledged(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    _fill(outbox, 5)
    seen = []
    while (item := outbox.oldest()) is not None:
        seen.append(item.message_id)
        assert item.properties == {"type": "result"} and not item.inherited
        outbox.ack(item)
    assert seen == [f"run:cam:{i}" for i in range(5)]
    assert len(outbox) == 0 and outbox.stats()["sent"] == 5 and outbox.stats()["resent"] == 0
    _conserved(outbox)


def test_limits_drop_the_oldest_and_count_them(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite", OutboxLimits(max_messages=100, max_bytes=10**9))
    _fill(outbox, 250)
    assert len(outbox) == 100 and outbox.dropped == {"count": 150}
    assert outbox.oldest().message_id == "run:cam:150"
    outbox.limits = OutboxLimits(max_messages=10**6, max_bytes=5000)
    _fill(outbox, 10, size=1000, start=250)
    assert outbox.stats()["queued_bytes"] <= 5000 and outbox.dropped["size"] > 0
    # The newest survive.
    ids = []
    while (item := outbox.oldest()) is not None:
        ids.append(item.message_id)
        outbox.ack(item)
    assert ids == [f"run:cam:{i}" for i in range(255, 260)]
    _conserved(outbox)


def test_old_messages_expire(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite", OutboxLimits(max_age_s=0.2))
    _fill(outbox, 3)
    time.sleep(0.3)
    _fill(outbox, 1, start=3)
    assert outbox.dropped == {"age": 3} and outbox.oldest().message_id == "run:cam:3"
    _conserved(outbox)


def test_what_was_written_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    writer = (
        "import os, signal, sys\n"
        "from edgevision.upstream.outbox import Outbox\n"
        f"outbox = Outbox({str(path)!r})\n"
        "for i in range(500):\n"
        "    outbox.put('results', b'{}', {'type': 'result'}, f'run1:cam:{i}')\n"
        "    if i == 99:\n"
        "        outbox.ack(outbox.oldest())\n"
        "print('written', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", writer],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "module")},
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL and "written" in proc.stdout
    reopened = Outbox(path)
    assert len(reopened) == 499 and reopened.inherited == 499
    item = reopened.oldest()
    assert item.message_id == "run1:cam:1" and item.inherited
    reopened.ack(item)
    assert reopened.stats()["resent"] == 1
    # WAL mode, so readers (an operator's sqlite3) do not block the module.
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_outbox_is_private_to_the_module(tmp_path: Path) -> None:
    """It holds results (and camera ids); the README calls the state private: 0600 in 0700."""
    folder = tmp_path / "state" / "upstream"
    opened = open_database(str(folder / "outbox.sqlite"), 1 << 20)
    opened.db.execute("CREATE TABLE t (x)")
    opened.db.execute("INSERT INTO t VALUES (1)")
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert folder.stat().st_mode & 0o777 == 0o700
    assert modes["outbox.sqlite"] == 0o600 and all(mode == 0o600 for mode in modes.values()), modes
    opened.db.close()
    # One an earlier version left readable by others is made private when opened again.
    (folder / "outbox.sqlite").chmod(0o644)
    open_database(str(folder / "outbox.sqlite"), 1 << 20).db.close()
    assert (folder / "outbox.sqlite").stat().st_mode & 0o777 == 0o600
