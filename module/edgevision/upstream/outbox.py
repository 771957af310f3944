"""A bounded on-disk outbox for upstream messages: kept across outages and crashes, sent in order.

SQLite in WAL mode: each put is one small transaction that survives kill -9; a row is deleted
only after IoT Edge acknowledged the message, so a crash between the two sends it again once
(at-least-once; receivers de-duplicate on the message id).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MEMORY = ":memory:"


@dataclass(frozen=True)
class OutboxLimits:
    max_messages: int = 100_000
    max_bytes: int = 256 * 2**20
    max_age_s: float = 86_400.0


@dataclass(frozen=True)
class Stored:
    id: int
    output: str
    body: bytes
    properties: dict[str, str]
    message_id: str
    attempts: int
    # Written by an earlier run of the module (a restart or crash): its send is a resend.
    inherited: bool


class Outbox:
    """Thread-safe; oldest messages are dropped first, and counted, when a limit is reached."""

    def __init__(self, path: Path | str, limits: OutboxLimits | None = None) -> None:
        self.path = str(path)
        self.limits = limits or OutboxLimits()
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed row survives a process crash (not a power cut mid-write).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, output TEXT NOT NULL, "
            "body BLOB NOT NULL, properties TEXT NOT NULL, message_id TEXT NOT NULL, created REAL NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 0)"
        )
        self._first_own_id = self._max_id() + 1
        count, size = self._totals()
        self.inherited = count
        self._count, self._bytes = count, size
        self.dropped: dict[str, int] = {}
        self.enqueued = 0
        self.sent = 0
        self.resent = 0
        if count:
            log.info(
                "outbox %s holds %d message(s) (%d bytes) from an earlier run; sending them first",
                self.path,
                count,
                size,
            )

    def _max_id(self) -> int:
        return self._db.execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0]

    def _totals(self) -> tuple[int, int]:
        count, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM outbox").fetchone()
        return int(count), int(size)

    def put(self, output: str, body: bytes, properties: dict[str, str], message_id: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox (output, body, properties, message_id, created) VALUES (?, ?, ?, ?, ?)",
                (output, body, json.dumps(properties), message_id, time.time()),
            )
            self._count += 1
            self._bytes += len(body)
            self.enqueued += 1
            self._enforce()

    def _enforce(self) -> None:
        limits = self.limits
        cutoff = time.time() - limits.max_age_s
        # Rows are written in time order, so the oldest (by primary key) tells whether any expired;
        # this runs per message, and a scan of `created` would be one per message too.
        oldest = self._db.execute("SELECT created FROM outbox ORDER BY id LIMIT 1").fetchone()
        if oldest is not None and oldest[0] < cutoff:
            expired = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM outbox WHERE created < ?", (cutoff,)
            ).fetchone()
            self._db.execute("DELETE FROM outbox WHERE created < ?", (cutoff,))
            self._drop("age", expired[0], expired[1])
        while self._count > limits.max_messages or self._bytes > limits.max_bytes:
            reason = "count" if self._count > limits.max_messages else "size"
            # Drop in chunks: one statement per 1% rather than per message.
            excess = max(self._count - limits.max_messages, 1, self._count // 100)
            rows = self._db.execute("SELECT id, LENGTH(body) FROM outbox ORDER BY id LIMIT ?", (excess,)).fetchall()
            if not rows:
                break
            self._db.execute("DELETE FROM outbox WHERE id <= ?", (rows[-1][0],))
            self._drop(reason, len(rows), sum(r[1] for r in rows))

    def _drop(self, reason: str, count: int, size: int) -> None:
        self._count -= count
        self._bytes -= size
        self.dropped[reason] = self.dropped.get(reason, 0) + count
        total = sum(self.dropped.values())
        if total == count or total // 1000 != (total - count) // 1000:
            log.warning("outbox full (%s): dropped the %d oldest message(s), %d so far", reason, count, total)

    def oldest(self) -> Stored | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, output, body, properties, message_id, attempts FROM outbox ORDER BY id LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        return Stored(row[0], row[1], bytes(row[2]), json.loads(row[3]), row[4], row[5], row[0] < self._first_own_id)

    def attempted(self, item: Stored) -> None:
        with self._lock:
            self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (item.id,))

    def ack(self, item: Stored, retried: bool = False) -> None:
        """Sent and acknowledged: remove it. A retried or inherited message counts as resent."""
        with self._lock:
            deleted = self._db.execute("DELETE FROM outbox WHERE id = ?", (item.id,)).rowcount
            if deleted:
                self._count -= 1
                self._bytes -= len(item.body)
            self.sent += 1
            if retried or item.attempts or item.inherited:
                self.resent += 1

    def drop(self, item: Stored, reason: str) -> None:
        with self._lock:
            if self._db.execute("DELETE FROM outbox WHERE id = ?", (item.id,)).rowcount:
                self._drop(reason, 1, len(item.body))

    def __len__(self) -> int:
        return self._count

    def stats(self) -> dict[str, Any]:
        # enqueued + inherited == sent + queued + sum(dropped), always.
        return {
            "path": self.path,
            "enqueued": self.enqueued,
            "inherited": self.inherited,
            "queued": self._count,
            "queued_bytes": self._bytes,
            "sent": self.sent,
            "resent": self.resent,
            "dropped": dict(self.dropped),
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()
