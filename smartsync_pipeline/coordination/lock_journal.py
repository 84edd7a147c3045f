"""An optional journal of company-lock holds: who held which lock, from when to when.

Set ``SMARTSYNC_LOCK_JOURNAL=/shared/path/locks.jsonl`` and every company lock (sync, full, write)
appends one JSON line when it is granted and one when it is released: lock name, host, pid, and the
wall-clock time. Lines are written by the holder while it holds the lock, so two overlapping
intervals in the journal prove two holders at once. A holder killed with SIGKILL writes no
``released`` line; its interval ends when the process died. For diagnosing contention across hosts,
and for the distributed test's "never two writers" check.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

JOURNAL_ENV = "SMARTSYNC_LOCK_JOURNAL"


@dataclass(frozen=True)
class LockJournal:
    path: Path

    @classmethod
    def from_env(cls) -> LockJournal | None:
        value = os.environ.get(JOURNAL_ENV, "").strip()
        return cls(Path(value)) if value else None

    def write(self, lock: str, event: str) -> None:
        line = json.dumps(
            {"lock": lock, "event": event, "host": socket.gethostname(), "pid": os.getpid(), "t": time.time()}
        )
        # One write() of a short line with O_APPEND: lines of concurrent holders never interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    @contextmanager
    def held(self, lock: str) -> Iterator[None]:
        self.write(lock, "acquired")
        try:
            yield
        finally:
            self.write(lock, "released")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
