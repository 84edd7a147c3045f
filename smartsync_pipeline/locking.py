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
from dataclasses import dataclass, field
from pathlib import Path


class LockTimeout(TimeoutError):
    """The lock was still held by someone else when the bounded wait ran out."""


@dataclass
class LockStats:
    acquisitions: int = 0
    waits: int = 0
    wait_seconds: float = 0.0


@dataclass
class FileLock:
    """A named lock backed by ``path``; ``exclusive()`` for writers, ``shared()`` for readers."""

    path: Path
    what: str = ""  # human name used in timeout messages ("the mirror writer lock", ...)
    stats: LockStats = field(default_factory=LockStats)

    @contextmanager
    def exclusive(self, timeout: float | None = 600.0) -> Iterator[float]:
        with self._hold(fcntl.LOCK_EX, timeout) as waited:
            yield waited

    @contextmanager
    def shared(self, timeout: float | None = 600.0) -> Iterator[float]:
        with self._hold(fcntl.LOCK_SH, timeout) as waited:
            yield waited

    def try_exclusive(self) -> int | None:
        """Take the lock only if free; returns a handle for ``release`` or None."""
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @staticmethod
    def release(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def _hold(self, mode: int, timeout: float | None) -> Iterator[float]:
        fd = self._open()
        start = time.monotonic()
        delay = 0.002
        try:
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
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
            waited = time.monotonic() - start
            self.stats.acquisitions += 1
            if waited > 0.001:
                self.stats.waits += 1
                self.stats.wait_seconds += waited
            try:
                yield waited
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
