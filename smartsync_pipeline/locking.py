"""Cross-process and cross-thread file locks (``flock``), with bounded waits.

Each acquisition opens its own file description, so two threads of one process exclude each other
exactly like two processes do. Locks die with their process, so a ``kill -9`` never leaves one held.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class LockTimeout(TimeoutError):
    """The lock was still held by someone else when the bounded wait ran out."""


@dataclass
class FileLock:
    """A named exclusive lock backed by ``path``."""

    path: Path
    what: str = ""  # human name used in timeout messages ("the mirror writer lock", ...)

    @contextmanager
    def exclusive(self, timeout: float | None = 600.0) -> Iterator[float]:
        """Hold the lock for the ``with`` block; yields the seconds spent waiting for it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        start = time.monotonic()
        delay = 0.002
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    waited = time.monotonic() - start
                    if timeout is not None and waited >= timeout:
                        raise LockTimeout(
                            f"{self.what or self.path.name} is still held by another process after "
                            f"{waited:.1f} s; try again later"
                        ) from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
            try:
                yield time.monotonic() - start
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
