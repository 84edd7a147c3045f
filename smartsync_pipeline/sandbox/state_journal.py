"""``--state-file``: a JSON-lines journal that lets a restarted sandbox continue where it stopped.

The first line is a header (seed, scale, realms, start time and the app credentials); then every
write's after-images, every token change (a snapshot of the token table) and every clock change, in
order. Replaying it over the same seeded base gives the same company and the same valid tokens. The
file holds secrets, so it is created 0600.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


class StateFileMismatch(RuntimeError):
    """The state file belongs to a sandbox with another seed, scale or realm count."""


class StateJournal:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._handle: Any = None

    def __repr__(self) -> str:
        return f"StateJournal({str(self.path)!r})"

    def read(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """(header, records) of an existing journal; (None, []) when there is none yet. A torn last
        line (the process died mid-write) is ignored."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return None, []
        header: dict[str, Any] | None = None
        records: list[dict[str, Any]] = []
        with self.path.open("r", encoding="utf-8") as handle:
            for line in handle:
                if not line.endswith("\n"):
                    break
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break
                if header is None:
                    header = record
                else:
                    records.append(record)
        return header, records

    def open(self, header: dict[str, Any] | None) -> None:
        """Start appending; writes ``header`` first when the file is new."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._handle = os.fdopen(fd, "a", encoding="utf-8")
        if header is not None:
            self.append(header)

    def append(self, record: dict[str, Any]) -> None:
        if self._handle is None:
            return
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            self._handle.write(line)
            self._handle.flush()

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
