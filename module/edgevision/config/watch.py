"""A configuration file that changes while the module runs: polled, and reported when its content
changed. Polling follows symlinks, which is how Kubernetes updates a mounted ConfigMap (it
writes a new folder and renames the `..data` symlink over the old one); inotify on the file
itself would miss that. A file that disappears is said once and the running configuration stays.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

# Bytes read to tell whether the content changed, at most (the loader has its own, smaller cap).
_MAX_READ = 8 * 1024 * 1024


class FileWatch:
    def __init__(self, path: Path, on_change: Callable[[], None], interval_s: float = 2.0) -> None:
        self.path = path
        self._on_change = on_change
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stat: tuple[int, ...] | None = self._fingerprint()
        self._digest = self._content()
        self._missing_said = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="config-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _fingerprint(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)  # follows the symlinks
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def _content(self) -> str | None:
        try:
            with open(self.path, "rb") as handle:
                return hashlib.sha256(handle.read(_MAX_READ)).hexdigest()
        except OSError:
            return None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            stat = self._fingerprint()
            if stat is None:
                if not self._missing_said:
                    log.warning("configuration file %s is gone; the running configuration stays", self.path)
                    self._missing_said = True
                continue
            self._missing_said = False
            if stat == self._stat:
                continue
            self._stat = stat
            digest = self._content()
            if digest is None or digest == self._digest:
                continue
            self._digest = digest
            log.info("configuration file %s changed", self.path)
            try:
                self._on_change()
            except Exception:
                log.exception("applying the changed configuration file failed")
