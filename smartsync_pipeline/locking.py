"""Cross-process and cross-thread file locks with bounded waits, on the ``filelock`` package.

``filelock`` is the one lock implementation of the project (the credentials' token lock uses it
too); this module only adds what every smartsync wait needs: a bound, a ``LockTimeout`` that says what
was waited for, and the holder's pid when the kernel can tell (``/proc/locks``). Each acquisition
opens its own file description, so two threads of one process exclude each other exactly like two
processes do. ``flock`` locks die with their process, so a ``kill -9`` never leaves one held.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import filelock

from smartsync_pipeline.durable_files import make_private_dirs


class LockTimeout(TimeoutError):
    """The lock was still held by someone else when the bounded wait ran out."""


def lock_holders(path: Path) -> list[int]:
    """Pids holding a kernel lock (flock or POSIX) on ``path``, from ``/proc/locks``; [] when unknown."""
    try:
        st = os.stat(path)
        with open("/proc/locks") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids = []
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 2349 fd:00:1048608 0 EOF" (blocked waiters are marked "->")
        if len(parts) >= 6 and parts[1] != "->" and parts[5] == device:
            try:
                pids.append(int(parts[4]))
            except ValueError:
                continue
    return sorted(set(pids))


def describe_process(pid: int) -> str:
    """``pid 1234 (duckdb)``: the process name only, never its arguments (they may hold secrets)."""
    try:
        with open(f"/proc/{pid}/comm") as fh:
            name = fh.read().strip()
    except OSError:
        return f"pid {pid}"
    return f"pid {pid} ({name})"


def describe_holders(pids: list[int]) -> str:
    """`` (held by pid 1234 (python3))`` or an empty string."""
    pids = [p for p in pids if p != os.getpid()] or pids
    if not pids:
        return ""
    return " (held by " + ", ".join(describe_process(p) for p in pids[:3]) + ")"


@dataclass
class FileLock:
    """A named exclusive lock backed by ``path``."""

    path: Path
    what: str = ""  # human name used in timeout messages ("the sync of company 123", ...)

    @contextmanager
    def exclusive(self, timeout: float | None = 600.0) -> Iterator[float]:
        """Hold the lock for the ``with`` block; yields the seconds spent waiting for it."""
        make_private_dirs(self.path.parent)
        lock = filelock.FileLock(self.path, mode=0o600, thread_local=False, poll_interval=0.01)
        start = time.monotonic()
        try:
            lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout))
        except filelock.Timeout:
            waited = time.monotonic() - start
            raise LockTimeout(
                f"{self.what or self.path.name} is still held by another process after {waited:.1f} s"
                f"{describe_holders(lock_holders(self.path))}; try again later"
            ) from None
        try:
            yield time.monotonic() - start
        finally:
            lock.release()

    def is_held(self) -> bool:
        """True when someone holds the lock right now (a snapshot, for status displays and tests)."""
        try:
            with self.exclusive(timeout=0):
                return False
        except LockTimeout:
            return True
