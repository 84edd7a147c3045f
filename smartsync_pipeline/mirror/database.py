"""The write side of the mirror: one DuckDB file, opened read-write only by the sync engine.

DuckDB locks a database file for the whole process that opens it read-write, so nobody reads this
file directly: readers (the smart reader, analysts, Dagster checks) read published snapshots
(``snapshots.py``). Writers take ``mirror.write.lock`` first, so two syncs never collide on the file;
the second one waits (bounded) instead of failing on DuckDB's own lock.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from smartsync_pipeline.home import Home
from smartsync_pipeline.locking import FileLock
from smartsync_pipeline.mirror.files import fsync_file
from smartsync_pipeline.mirror.schema import migrate


@dataclass
class MirrorDatabase:
    """Opens the mirror for writing, under the writer lock, with bounded memory."""

    home: Home
    # A large backfill commits hundreds of MB in one transaction; one thread and a firm limit keep the
    # syncing process well under 500 MB (DuckDB spills what it can to temp_directory).
    memory_limit: str = "192MB"
    threads: int = 1
    lock_timeout: float = 600.0

    def __post_init__(self) -> None:
        self.home.ensure()
        self.lock = FileLock(self.home.locks_dir / "mirror.write.lock", what="the mirror writer lock")

    @property
    def path(self) -> Path:
        return self.home.mirror_path

    @contextmanager
    def locked(self, timeout: float | None = None) -> Iterator[float]:
        """Exclusive right to write the mirror file (and to publish snapshots of it)."""
        with self.lock.exclusive(self.lock_timeout if timeout is None else timeout) as waited:
            yield waited

    @property
    def shadow_path(self) -> Path:
        return self.path.with_name(self.path.stem + ".next.duckdb")

    @contextmanager
    def shadow(self) -> Iterator[Path]:
        """A private copy of the mirror that replaces it atomically when the block succeeds.

        For work too big for one DuckDB transaction in bounded memory (a full backfill): it is applied
        to the copy in several transactions, and only the final ``rename`` makes it the mirror. A crash
        or ``kill -9`` before that leaves the mirror untouched; the copy is discarded next time. Call
        while holding ``locked()``."""
        shadow = self.shadow_path
        self.discard_shadow()
        if self.path.exists():
            if self._wal(self.path).exists() and self._wal(self.path).stat().st_size > 0:
                raise RuntimeError(f"{self.path} has an unapplied WAL; open it once to recover before copying")
            shutil.copyfile(self.path, shadow)
        try:
            yield shadow
            fsync_file(shadow)
            os.replace(shadow, self.path)
            self._wal(self.path).unlink(missing_ok=True)
        except BaseException:
            self.discard_shadow()
            raise

    def discard_shadow(self) -> None:
        """Remove what a crashed shadow apply left behind."""
        for leftover in (self.shadow_path, self._wal(self.shadow_path)):
            leftover.unlink(missing_ok=True)

    @staticmethod
    def _wal(path: Path) -> Path:
        return path.with_name(path.name + ".wal")

    @contextmanager
    def connect(self, path: Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection (to the mirror, or to ``path``, its shadow); call only while
        holding ``locked()``.

        The connection is checkpointed and closed on the way out (even on error), so the file on disk
        is complete and can be copied into a snapshot, and DuckDB's own file lock is released.
        """
        con = duckdb.connect(str(path or self.path), config=self._config())
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
