"""Opening the outbox's SQLite file so that nothing on disk can stop the module: a damaged file
is moved aside (and what it held counted, when that can be read) and a new one started; with no
writable place the outbox lives in memory and says so."""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgevision.state import move_aside, private_file, private_folder

log = logging.getLogger(__name__)

MEMORY = ":memory:"
COLUMNS = ("id", "output", "body", "properties", "message_id", "created", "attempts")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, output TEXT NOT NULL, "
    "body BLOB NOT NULL, properties TEXT NOT NULL, message_id TEXT NOT NULL, created REAL NOT NULL, "
    "attempts INTEGER NOT NULL DEFAULT 0)"
)
# Bounds on what SQLite writes besides the rows: the write-ahead log is checkpointed every
# 64 pages (256 KiB) and cut back to this size after each checkpoint.
WAL_PAGES = 64
WAL_LIMIT_BYTES = 512 * 2**10
# Left free on the disk for the write-ahead log and the shared-memory index: with it, old rows
# can still be deleted (a delete is a write) when the file may grow no further.
DISK_RESERVE_BYTES = WAL_LIMIT_BYTES + 256 * 2**10


@dataclass
class Opened:
    db: sqlite3.Connection
    path: str
    # Why the outbox is in memory (None: on disk as asked).
    memory_reason: str | None = None
    # A damaged file met at start: where it went and how many messages it held (None: unknown).
    damaged: dict[str, Any] | None = None


def open_database(path: str, max_bytes: int) -> Opened:
    if path == MEMORY:
        return Opened(_connect(MEMORY, max_bytes), MEMORY)
    damaged = None
    try:
        private_folder(Path(path).parent)
        private_file(Path(path))
        try:
            return Opened(_connect(path, max_bytes), path)
        except sqlite3.DatabaseError as exc:
            if _unwritable(exc):
                raise
            damaged = _set_aside(Path(path), str(exc))
        private_file(Path(path))
        return Opened(_connect(path, max_bytes), path, damaged=damaged)
    except (OSError, sqlite3.DatabaseError) as exc:
        reason = f"{path} cannot be written ({_why(exc)}): messages are kept in memory only, lost on a restart"
        log.error("outbox: %s", reason)
        return Opened(_connect(MEMORY, max_bytes), MEMORY, memory_reason=reason, damaged=damaged)


def _connect(path: str, max_bytes: int) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed row survives a process crash (not a power cut mid-write).
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
        db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        limit_pages(db, max_bytes, path)
        if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check failed: the file is damaged")
        db.execute(_SCHEMA)
        columns = tuple(row[1] for row in db.execute("PRAGMA table_info(outbox)"))
        if columns != COLUMNS:
            raise sqlite3.DatabaseError(f"unexpected outbox table {columns}")
        db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0), COALESCE(MAX(id), 0) FROM outbox").fetchone()
        # Written once at open: a file that takes no write (read-only) fails here, not per message.
        db.execute("BEGIN IMMEDIATE")
        db.execute("COMMIT")
    except BaseException:
        db.close()
        raise
    return db


def limit_pages(db: sqlite3.Connection, max_bytes: int, path: str = MEMORY) -> bool:
    """The file may grow to the outbox's byte limit plus room for SQLite's own pages, and never
    into the disk's last DISK_RESERVE_BYTES. True when the disk, not the limit, is the bound."""
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    pages = (max_bytes + max_bytes // 4 + 64 * page_size) // page_size
    by_disk = False
    if path != MEMORY:
        try:
            disk = os.statvfs(Path(path).parent)
            file_bytes = Path(path).stat().st_size if Path(path).exists() else 0
        except OSError:
            pass
        else:
            room = (file_bytes + disk.f_bavail * disk.f_frsize - DISK_RESERVE_BYTES) // page_size
            if room < pages:
                pages, by_disk = room, True
    db.execute(f"PRAGMA max_page_count={max(pages, 8)}")
    return by_disk


def _unwritable(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return "readonly" in text or "unable to open" in text or "disk i/o" in text or "permission" in text


def _why(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _set_aside(path: Path, why: str) -> dict[str, Any]:
    lost = _count_rows(path)
    moved = move_aside(path, why)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            if moved is not None:
                extra.replace(moved.with_name(moved.name + suffix))
            else:
                extra.unlink(missing_ok=True)
    if moved is None:
        # Could not be renamed: removed, so the module can run at all.
        path.unlink(missing_ok=True)
    return {"path": str(path), "moved_to": str(moved) if moved else None, "reason": why, "lost": lost}


def _count_rows(path: Path) -> int | None:
    """How many messages a damaged file held, if it can still tell."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        finally:
            db.close()
    except (sqlite3.Error, OSError):
        return None
