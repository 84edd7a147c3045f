"""One in-memory DuckDB instance per process into which mirror and snapshot files are attached.

Creating a DuckDB instance (``duckdb.connect(path)``) costs tens of milliseconds and closing one as
much again, whatever the file; ``ATTACH``/``DETACH`` of the same file in an instance that already
exists costs about one. A stale read used to create three or four instances (the writer's state read,
its apply, the snapshot catch-up, the reader's new generation), which was most of its own time, so the
small, frequent work attaches instead (ARCHITECTURE.md, "Stale reads").

What does not change: ``DETACH`` releases DuckDB's file lock exactly like closing a connection, so
another process can open the file afterwards; DuckDB refuses to attach a file read-write that any
instance of this process holds ("Unique file handle conflict"), so the guarantees that relied on
that refusal still hold. Each attachment is used through its own cursor whose default catalog is the
attached file (``USE``), so unqualified table names and ``current_database()`` mean that file.

Instances are per process (a forked child never uses its parent's) and per configuration (the writer
keeps its memory limit, thread count and spill folder; readers use DuckDB's defaults).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from smartsync_pipeline.mirror.sql import sql_literal

_instances: dict[tuple[int, tuple[tuple[str, str], ...]], SharedInstance] = {}
_instances_lock = threading.Lock()


class SharedInstance:
    """An in-memory DuckDB instance that files are attached to and detached from."""

    def __init__(self, config: dict[str, str]) -> None:
        self.config = dict(config)
        self._con = duckdb.connect(":memory:", config=self.config)
        self._lock = threading.Lock()  # the base connection is not thread-safe; cursors are
        self._names = itertools.count(1)

    @classmethod
    def for_config(cls, config: dict[str, str] | None = None) -> SharedInstance:
        """This process's instance with ``config`` (created on first use)."""
        key = (os.getpid(), tuple(sorted((config or {}).items())))
        with _instances_lock:
            instance = _instances.get(key)
            if instance is None:
                # A forked child must not touch its parent's instances: forget them (never close).
                for stale in [k for k in _instances if k[0] != key[0]]:
                    del _instances[stale]
                instance = _instances[key] = cls(config or {})
            return instance

    def attach(self, path: Path | str, *, read_only: bool) -> tuple[str, duckdb.DuckDBPyConnection]:
        """Attach ``path``; returns its catalog name and a cursor whose default catalog it is.
        Raises what ``duckdb.connect`` would (a lock held by another process, a conflict in this one)."""
        name = f"file_{next(self._names)}"
        mode = " (READ_ONLY)" if read_only else ""
        with self._lock:
            self._con.execute(f"ATTACH {sql_literal(str(path))} AS {name}{mode}")
            try:
                cur = self._con.cursor()
                cur.execute(f"USE {name}")
            except BaseException:
                with suppress(duckdb.Error):
                    self._con.execute(f"DETACH {name}")
                raise
        return name, cur

    def detach(self, name: str, cur: duckdb.DuckDBPyConnection) -> None:
        """Close ``cur`` (rolling back anything it left open) and detach ``name``: its file lock is
        released and its memory freed."""
        with suppress(duckdb.Error):
            cur.close()
        with self._lock:
            self._con.execute(f"DETACH {name}")

    @contextmanager
    def attached(self, path: Path | str, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on ``path`` for the ``with`` block."""
        name, cur = self.attach(path, read_only=read_only)
        try:
            yield cur
        finally:
            self.detach(name, cur)

    def attached_files(self) -> list[str]:
        """Paths attached right now (tests and leak checks)."""
        with self._lock:
            rows = self._con.execute(
                "SELECT path FROM duckdb_databases() WHERE NOT internal AND path IS NOT NULL"
            ).fetchall()
        return [r[0] for r in rows]
