"""The write side of the mirror: one DuckDB file, opened read-write only by the sync engine.

DuckDB locks a database file for the whole process that opens it read-write, so nobody reads this
file directly: readers (the smart reader, analysts, Dagster checks) read published snapshots
(``snapshots.py``). Writers take ``mirror.write.lock`` first, so two syncs never collide on the file;
the second one waits (bounded) instead of failing on DuckDB's own lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb

from smartsync_pipeline.home import Home
from smartsync_pipeline.locking import FileLock
from smartsync_pipeline.mirror.schema import migrate


@dataclass
class MirrorDatabase:
    """Opens the mirror for writing, under the writer lock, with bounded memory."""

    home: Home
    memory_limit: str = "384MB"
    threads: int = 2
    lock_timeout: float = 600.0

    def __post_init__(self) -> None:
        self.home.ensure()
        self.lock = FileLock(self.home.locks_dir / "mirror.write.lock", what="the mirror writer lock")

    @property
    def path(self):
        return self.home.mirror_path

    @contextmanager
    def locked(self, timeout: float | None = None) -> Iterator[float]:
        """Exclusive right to write the mirror file (and to publish snapshots of it)."""
        with self.lock.exclusive(self.lock_timeout if timeout is None else timeout) as waited:
            yield waited

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection; call only while holding ``locked()``.

        The connection is checkpointed and closed on the way out (even on error), so the file on disk
        is complete and can be copied into a snapshot, and DuckDB's own file lock is released.
        """
        con = duckdb.connect(str(self.path), config=self._config())
        try:
            migrate(con)
            yield con
            con.execute("CHECKPOINT")
        finally:
            con.close()

    @contextmanager
    def inspect(self, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only look at the authoritative file (audit, reconciliation of the write side).

        Holds the writer lock meanwhile, so keep it short; ordinary reads use snapshots instead."""
        with self.locked(timeout):
            if not self.path.exists():
                raise FileNotFoundError(f"no mirror at {self.path} yet; run `smartsync sync` first")
            con = duckdb.connect(str(self.path), read_only=True)
            try:
                yield con
            finally:
                con.close()

    def _config(self) -> dict[str, str]:
        tmp = self.home.root / "duckdb_tmp"
        tmp.mkdir(exist_ok=True)
        return {
            "memory_limit": self.memory_limit,
            "threads": str(self.threads),
            "preserve_insertion_order": "false",
            "temp_directory": str(tmp),
        }
