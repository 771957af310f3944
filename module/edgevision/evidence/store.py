"""Evidence on the state volume: each file beside a small JSON record of what it shows and where
it was delivered. Bounded by size and age (the oldest go first, counted by reason), and never
written when the volume runs short: a full disk drops evidence, never results."""

from __future__ import annotations

import errno
import json
import logging
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgevision.config.evidence import EvidenceConfig
from edgevision.errors import first_line
from edgevision.publish.messages import iso_time
from edgevision.state import private_folder

log = logging.getLogger(__name__)

_RECORD = ".json"
# A record is small; one larger than this was not written by the module.
_MAX_RECORD_BYTES = 64 * 1024


@dataclass
class Item:
    """One file of evidence: `name` is its path under the store, also its blob name."""

    name: str
    size: int
    created: float
    meta: dict[str, Any] = field(default_factory=dict)
    delivered: str | None = None


class EvidenceStore:
    def __init__(self, root: Path, config: EvidenceConfig) -> None:
        self.root = root
        self.config = config
        self._lock = threading.Lock()
        self._items: dict[str, Item] = {}
        self.dropped: Counter[str] = Counter()
        self.damaged: list[str] = []
        self.written = 0
        self.delivered = 0
        self.last_delivery: float | None = None
        self.last_error: str | None = None
        self._wake = threading.Condition(self._lock)
        self._scan()

    # -- on disk ---------------------------------------------------------------------------------

    def _scan(self) -> None:
        """What an earlier run left: each record with its file; a record that does not parse is
        moved aside (and said), a file without a record or a record without a file is removed."""
        if not self.root.is_dir():
            return
        for record in sorted(self.root.rglob(f"*{_RECORD}")):
            if record.is_symlink() or not record.is_file():
                continue
            name = record.relative_to(self.root).as_posix()[: -len(_RECORD)]
            target = self.root / name
            try:
                if record.stat().st_size > _MAX_RECORD_BYTES:
                    raise ValueError("too large for a record")
                document = json.loads(record.read_text())
                if not isinstance(document, dict) or not isinstance(document.get("meta"), dict):
                    raise ValueError("not a record")
                stat = target.stat()
            except FileNotFoundError:
                record.unlink(missing_ok=True)
                continue
            except (OSError, ValueError, RecursionError) as exc:
                aside = record.with_name(record.name + ".damaged")
                record.replace(aside)
                self.damaged.append(str(aside))
                log.warning("evidence record %s is damaged (%s): moved aside", record, first_line(exc))
                continue
            delivered = document.get("delivered")
            self._items[name] = Item(
                name,
                stat.st_size,
                float(document.get("created") or stat.st_mtime),
                document["meta"],
                delivered if isinstance(delivered, str) else None,
            )
        self._enforce()

    def _write_record(self, item: Item) -> None:
        record = self.root / (item.name + _RECORD)
        part = record.with_name(record.name + ".part")
        part.write_text(json.dumps({"created": item.created, "meta": item.meta, "delivered": item.delivered}))
        part.replace(record)

    def _free_mb(self) -> float:
        self.root.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.root).free / 2**20

    def put(self, name: str, data: bytes | Path, meta: dict[str, Any]) -> Item | None:
        """Keep `data` (bytes, or a finished file on the same volume, moved in) as `name`; None
        when it was dropped (the volume short of space, or the disk full), counted."""
        size = len(data) if isinstance(data, bytes) else data.stat().st_size
        try:
            if self._free_mb() - size / 2**20 < self.config.min_free_mb:
                return self._drop(name, data, "disk_full")
            target = self.root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, bytes):
                part = target.with_name(target.name + ".part")
                with open(part, "wb") as out:
                    out.write(data)
                part.replace(target)
            else:
                data.replace(target)
            item = Item(name, size, time.time(), meta)
            self._write_record(item)
        except OSError as exc:
            reason = "disk_full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "write_failed"
            log.warning("evidence %s not kept: %s", name, first_line(exc))
            (self.root / name).unlink(missing_ok=True)
            return self._drop(name, data, reason)
        with self._lock:
            self._items[name] = item
            self.written += 1
            self._enforce()
            self._wake.notify_all()
        return item

    def _drop(self, name: str, data: bytes | Path, reason: str) -> None:
        if isinstance(data, Path):
            data.unlink(missing_ok=True)
        with self._lock:
            self.dropped[reason] += 1
        return None

    def _remove(self, item: Item, reason: str) -> None:
        self._items.pop(item.name, None)
        for path in (self.root / item.name, self.root / (item.name + _RECORD)):
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot remove evidence %s: %s", path, first_line(exc))
        self.dropped[reason] += 1
        if item.delivered is None:
            log.warning("evidence %s dropped before it was delivered (%s)", item.name, reason)

    def _enforce(self) -> None:
        """The oldest first: past max_age_s, then while over max_mb (lock held)."""
        oldest_allowed = time.time() - self.config.max_age_s
        for item in sorted(self._items.values(), key=lambda i: i.created):
            if item.created < oldest_allowed:
                self._remove(item, "age")
        limit = self.config.max_mb * 2**20
        total = sum(i.size for i in self._items.values())
        for item in sorted(self._items.values(), key=lambda i: i.created):
            if total <= limit:
                break
            total -= item.size
            self._remove(item, "size_cap")

    def enforce(self) -> None:
        with self._lock:
            self._enforce()

    # -- delivery --------------------------------------------------------------------------------

    def next_pending(self, timeout: float) -> Item | None:
        """The oldest file not delivered yet, waiting up to `timeout` for one."""
        with self._lock:
            self._wake.wait_for(lambda: any(i.delivered is None for i in self._items.values()), timeout)
            pending = [i for i in self._items.values() if i.delivered is None]
            return min(pending, key=lambda i: i.created) if pending else None

    def wake(self) -> None:
        """Wake a sender waiting in next_pending (it is stopping)."""
        with self._wake:
            self._wake.notify_all()

    def path(self, item: Item) -> Path:
        return self.root / item.name

    def mark_delivered(self, item: Item, location: str) -> None:
        with self._lock:
            if self._items.get(item.name) is not item:
                return  # dropped meanwhile
            item.delivered = location
            self.delivered += 1
            self.last_delivery = time.time()
            self.last_error = None
        try:
            self._write_record(item)
        except OSError as exc:
            # Delivered again at the next start, at worst: an overwrite of the same name.
            log.warning("evidence %s delivered, its record not updated: %s", item.name, first_line(exc))

    def latest(self, camera: str) -> dict[str, Item]:
        """The newest snapshot and clip of `camera`, by kind."""
        with self._lock:
            found: dict[str, Item] = {}
            for item in self._items.values():
                kind = item.meta.get("kind")
                if (
                    item.meta.get("camera") == camera
                    and isinstance(kind, str)
                    and (kind not in found or item.created >= found[kind].created)
                ):
                    found[kind] = item
            return found

    def stats(self) -> dict[str, Any]:
        with self._lock:
            items = list(self._items.values())
            pending = [i for i in items if i.delivered is None]
            return {
                "files": len(items),
                "bytes": sum(i.size for i in items),
                "pending": len(pending),
                "pending_bytes": sum(i.size for i in pending),
                "oldest": _iso(min((i.created for i in items), default=None)),
                "oldest_pending": _iso(min((i.created for i in pending), default=None)),
                "written": self.written,
                "delivered": self.delivered,
                "last_delivery": _iso(self.last_delivery),
                "last_error": self.last_error,
                "dropped": dict(self.dropped),
                "damaged": list(self.damaged),
            }


def _iso(at: float | None) -> str | None:
    return iso_time(at) if at is not None else None


def private_root(state: Path) -> Path:
    root = state / "evidence"
    private_folder(root)
    return root
