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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgevision.upstream.outbox_file import MEMORY, limit_pages, open_database

log = logging.getLogger(__name__)


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
    """Thread-safe; oldest messages are dropped first, and counted, when a limit is reached.

    Opening never fails (see outbox_file.py); a message that cannot be stored (the disk is full,
    the file became unwritable) is counted by reason and reported through `on_problem` (see
    report_problems), once per reason and then every 1000.
    """

    def __init__(
        self,
        path: Path | str,
        limits: OutboxLimits | None = None,
        on_problem: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.limits = limits or OutboxLimits()
        self.on_problem = on_problem
        opened = open_database(str(path), self.limits.max_bytes)
        self._db = opened.db
        self.path = opened.path
        self.memory_reason = opened.memory_reason
        self.damaged = opened.damaged
        self._lock = threading.Lock()
        self._first_own_id = self._max_id() + 1
        count, size = self._totals()
        self.inherited = count
        self._count, self._bytes = count, size
        self.dropped: dict[str, int] = {}
        self._problems: list[tuple[str, dict[str, Any]]] = []
        self._disk_bound = limit_pages(self._db, self.limits.max_bytes, self.path)
        self._puts = 0
        self._last_write_error = -60.0
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

    def counts(self) -> dict[str, Any]:
        """For reported properties and metrics: what waits, what was lost and why."""
        return {
            "outbox_queued": len(self),
            "outbox_dropped": sum(self.dropped.values()),
            "outbox_dropped_by_reason": dict(self.dropped) or None,
            "outbox_persistent": self.memory_reason is None,
            # A damaged file met at start: where it went, and how many messages it held (null: unknown).
            "outbox_damaged": {k: self.damaged[k] for k in ("moved_to", "lost")} if self.damaged else None,
        }

    def startup_problems(self) -> list[tuple[str, dict[str, Any]]]:
        """What opening met, as events to raise once the module can send them."""
        problems = []
        if self.damaged is not None:
            problems.append(("outbox_damaged", dict(self.damaged)))
        if self.memory_reason is not None:
            problems.append(("outbox_in_memory", {"reason": self.memory_reason}))
        return problems

    def set_limits(self, limits: OutboxLimits) -> None:
        with self._lock:
            self.limits = limits
            self._disk_bound = limit_pages(self._db, limits.max_bytes, self.path)
            self._enforce()

    def _max_id(self) -> int:
        return self._db.execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0]

    def _totals(self) -> tuple[int, int]:
        count, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM outbox").fetchone()
        return int(count), int(size)

    def put(self, output: str, body: bytes, properties: dict[str, str], message_id: str) -> None:
        self._store((output, body, json.dumps(properties), message_id, time.time()))

    def report_problems(self) -> None:
        """Hand what went wrong to `on_problem`. Called by the sender's thread, never from put():
        the problem becomes an event, and the event a message put here by the same publisher."""
        with self._lock:
            problems, self._problems = self._problems, []
        if self.on_problem is not None:
            for name, details in problems:
                self.on_problem(name, details)

    def _store(self, row: tuple[str, bytes, str, str, float]) -> None:
        body = row[1]
        with self._lock:
            self.enqueued += 1
            self._puts += 1
            if self._puts % 200 == 0:  # others write to the same disk (the local sink, logs)
                self._disk_bound = limit_pages(self._db, self.limits.max_bytes, self.path)
            for _attempt in range(20):
                try:
                    self._db.execute(
                        "INSERT INTO outbox (output, body, properties, message_id, created) VALUES (?, ?, ?, ?, ?)",
                        row,
                    )
                except sqlite3.OperationalError as exc:
                    if "full" in str(exc).lower():
                        self._disk_bound = limit_pages(self._db, self.limits.max_bytes, self.path)
                    if "full" in str(exc).lower() and self._make_room():
                        continue  # freed pages are reused: the file need not grow
                    self._lost("disk_full" if "full" in str(exc).lower() else "write_failed", str(exc))
                    return
                except sqlite3.DatabaseError as exc:
                    self._lost("write_failed", str(exc))
                    return
                self._count += 1
                self._bytes += len(body)
                self._enforce()
                return
            self._lost("disk_full", "no room after dropping the oldest messages")

    def _make_room(self) -> bool:
        """Drop the oldest 1% to let a new message in; False if there is nothing left to drop."""
        if self._count == 0:
            return False
        excess = max(1, self._count // 100)
        rows = self._db.execute("SELECT id, LENGTH(body) FROM outbox ORDER BY id LIMIT ?", (excess,)).fetchall()
        try:
            self._db.execute("DELETE FROM outbox WHERE id <= ?", (rows[-1][0],))
        except sqlite3.DatabaseError:
            return False
        # Bound by the free disk, not by the outbox's own limit: the disk is full.
        self._drop("disk_full" if self._disk_bound else "size", len(rows), sum(r[1] for r in rows))
        return True

    def _lost(self, reason: str, detail: str) -> None:
        """A message that could not be stored at all."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        total = self.dropped[reason]
        if total == 1 or total % 1000 == 0:
            log.error("outbox %s: a message could not be stored (%s): %d so far", self.path, detail, total)
            self._problems.append(("outbox_write_failed", {"reason": reason, "detail": detail, "dropped": total}))

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
        total = self.dropped[reason]
        if total == count or total // 1000 != (total - count) // 1000:
            log.warning("outbox full (%s): dropped the %d oldest message(s), %d so far", reason, count, total)
            if reason != "refused":  # refusals are edgeHub's answer, counted in their own figures
                self._problems.append(("outbox_dropped", {"reason": reason, "dropped": total}))

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
            self._write("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", item.id)

    def ack(self, item: Stored, retried: bool = False) -> None:
        """Sent and acknowledged: remove it. A retried or inherited message counts as resent.
        If the file takes no write, the row stays and is sent again later (at least once)."""
        with self._lock:
            # Not deleted: a limit dropped it while it was on its way (counted there), or the file
            # refused the write (it stays, and counts when it is sent again).
            if self._write("DELETE FROM outbox WHERE id = ?", item.id):
                self._count -= 1
                self._bytes -= len(item.body)
                self.sent += 1
                if retried or item.attempts or item.inherited:
                    self.resent += 1

    def drop(self, item: Stored, reason: str) -> None:
        with self._lock:
            if self._write("DELETE FROM outbox WHERE id = ?", item.id):
                self._drop(reason, 1, len(item.body))

    def _write(self, statement: str, row_id: int) -> int:
        """Rows changed; 0 when the file refuses the write (logged once a minute, not per message)."""
        try:
            return self._db.execute(statement, (row_id,)).rowcount
        except sqlite3.DatabaseError as exc:
            now = time.monotonic()
            if now - self._last_write_error >= 60:
                self._last_write_error = now
                log.error("outbox %s: cannot update (%s)", self.path, exc)
            return 0

    def __len__(self) -> int:
        return self._count

    def disk_bytes(self) -> int:
        """What the outbox takes on disk, its write-ahead log included."""
        if self.path == MEMORY:
            return 0
        return sum(p.stat().st_size for p in (Path(self.path + s) for s in ("", "-wal", "-shm")) if p.exists())

    def stats(self) -> dict[str, Any]:
        # enqueued + inherited == sent + queued + sum(dropped), always (read under the lock).
        with self._lock:
            counts = {
                "enqueued": self.enqueued,
                "inherited": self.inherited,
                "queued": self._count,
                "queued_bytes": self._bytes,
                "sent": self.sent,
                "resent": self.resent,
                "dropped": dict(self.dropped),
            }
        return {
            "path": self.path,
            "persistent": self.memory_reason is None,
            "memory_reason": self.memory_reason,
            "damaged": self.damaged,
            "disk_bytes": self.disk_bytes(),
            **counts,
        }

    def close(self) -> None:
        with self._lock:
            self._db.close()
