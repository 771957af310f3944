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


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` readable by the owner only, all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
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
