"""The state folder: what the module keeps across restarts (outbox, last known good configuration).

In the container it is a named volume ($EDGEVISION_STATE_DIR); files that may hold camera URIs
are written private (0600), whole (a temporary file renamed into place), and a damaged file is
moved aside and reported, never a reason to stop.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

STATE_DIR_ENV = "EDGEVISION_STATE_DIR"


def state_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get(STATE_DIR_ENV) or platformdirs.user_state_dir("edgevision"))


def private_folder(path: Path) -> None:
    """`path` made (with its parents) and readable by the owner only (0700): the outbox and the
    last known good configuration hold results and camera addresses. A folder someone else owns
    (a volume mounted as is) is left as it is."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError as exc:
        log.warning("cannot make %s private (0700): %s", path, exc.strerror)


def private_file(path: Path) -> None:
    """`path` readable by the owner only (0600): created empty if it does not exist (a database
    made in it keeps that mode, its journal files included: SQLite copies it), tightened if an
    earlier version left it readable by others."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    for each in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        try:
            if each.stat().st_uid == os.getuid() and each.stat().st_mode & 0o077:
                each.chmod(0o600)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot make %s private (0600): %s", each, exc.strerror)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` readable by the owner only, all or nothing."""
    private_folder(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def move_aside(path: Path, why: str) -> Path | None:
    """Rename a damaged file out of the way (kept for inspection); returns where it went."""
    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    try:
        os.replace(path, target)
    except OSError as exc:
        log.error("%s is damaged (%s) and cannot be moved aside: %s", path, why, exc.strerror)
        return None
    log.error("%s is damaged (%s): moved aside to %s", path, why, target)
    return target
