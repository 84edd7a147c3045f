"""The write side of one company's mirror: one DuckDB file, opened read-write only by the sync engine.

DuckDB locks a database file for the whole process that opens it read-write, so nobody reads this
file directly: readers (the smart reader, analysts, Dagster checks) read published snapshots
(``snapshots.py``). Writers of a company take its ``write.lock`` first, so two syncs of that company
never collide on the file; the second one waits (bounded) instead of failing on DuckDB's own lock.
Companies never share a file or a lock (ARCHITECTURE.md, "Storage layout: one shard per company").

When something else holds the file anyway (an analyst who opened ``mirror.duckdb`` instead of a
snapshot), opening it waits a bounded time and then raises ``MirrorBusy`` naming the holder's pid;
readers answer stale-if-error meanwhile. The file is 0600 and lives in a 0700 folder, so only the
account that runs smartsync can make that mistake.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import duckdb

from smartsync_pipeline.coordination import company_lock, confirm_held
from smartsync_pipeline.durable_files import install
from smartsync_pipeline.home import Home, RealmHome
from smartsync_pipeline.locking import LockTimeout, describe_holders, lock_holders
from smartsync_pipeline.mirror.schema import migrate
from smartsync_pipeline.mirror.shared_instance import SharedInstance
from smartsync_pipeline.mirror.sql import sql_literal

_T = TypeVar("_T")

# Mirror files this process left migrated: path -> the file's key when it last detached one. Any other
# writer (another process, a restored copy) changes that key, and the file is migrated again.
FileKey = tuple[int, int, int, int, bytes]
_migrated: dict[str, FileKey | None] = {}
_HEADERS = 3 * 4096  # DuckDB's file header and its two database headers (a checkpoint counter in each)


# 128 MB rather than 192: the same speed on a `medium` backfill, ~55 MB less peak RSS (bench_backfill.py).
WRITER_MEMORY_LIMIT = "128MB"
# A shadow (a backfill's private copy) is checkpointed by DuckDB itself once this much is committed
# since the last checkpoint: committed rows stay in memory until then, so this bounds memory, and a
# commit past it skips the WAL and is written once. Checkpointing after every unit instead recompressed
# the change log's open row group each time: ~1 CPU-s more on a `medium` backfill, a 35 % larger file.
SHADOW_CHECKPOINT_THRESHOLD = "64MiB"
# Row groups a shadow appends are this long (DuckDB's default is 122,880 rows): a unit of a backfill
# (up to 50,000 rows) then fills whole row groups, which DuckDB writes straight to the file while the
# unit runs instead of through the WAL and a checkpoint; the change log's open row group, rewritten by
# every checkpoint, stays small. ~20 % less write work on `medium`, a 5 % larger file.
SHADOW_ROW_GROUP_SIZE = 16_384
SHADOW = "shadow"  # the shadow's name on its connection (the connection's current database)


def _file_key(path: Path) -> FileKey | None:
    """Inode, size, mtime, the WAL's size and DuckDB's headers: mtimes are coarse (a few ms), but every
    checkpoint rewrites a header with a new iteration count and every commit without one grows the WAL."""
    try:
        st = os.stat(path)
        with open(path, "rb") as fh:
            headers = fh.read(_HEADERS)
    except FileNotFoundError:
        return None
    try:
        wal = os.stat(path.with_name(path.name + ".wal")).st_size
    except FileNotFoundError:
        wal = 0
    return (st.st_ino, st.st_size, st.st_mtime_ns, wal, headers)


_HOLDER_PID = re.compile(r"\(PID (\d+)\)")


class MirrorBusy(LockTimeout):
    """Another process (not a smartsync writer) holds the company's mirror file open."""


@dataclass
class MirrorDatabase:
    """Opens one company's mirror for writing, under its writer lock, with bounded memory.

    ``realm_id`` may be left out when the home has exactly one company (the CLI's convenience)."""

    home: Home
    realm_id: str | None = None
    # A large backfill commits hundreds of MB in one transaction; one thread and a firm limit keep the
    # syncing process well under 500 MB (DuckDB spills what it can to temp_directory).
    memory_limit: str = WRITER_MEMORY_LIMIT
    threads: int = 1
    lock_timeout: float = 600.0
    busy_timeout: float = 60.0  # how long to wait for a foreign process holding the file
    shard: RealmHome = field(init=False)
    left_as: FileKey | None = field(init=False, default=None)  # file key after connect()

    def __post_init__(self) -> None:
        from smartsync_pipeline.mirror.upgrade import ensure_upgraded

        ensure_upgraded(self.home)
        self.shard = self.home.only_realm(self.realm_id)
        self.realm_id = self.shard.realm_id
        self.lock = company_lock(self.shard, "write", f"the mirror writer lock of company {self.realm_id}")

    @property
    def path(self) -> Path:
        return self.shard.mirror_path

    @contextmanager
    def locked(self, timeout: float | None = None) -> Iterator[float]:
        """Exclusive right to write the mirror file (and to publish snapshots of it)."""
        with self.lock.exclusive(self.lock_timeout if timeout is None else timeout) as waited:
            yield waited

    def confirm_locked(self) -> None:
        """Just before a commit: raise ``coordination.LockLost`` if the writer lock was lost meanwhile (an
        advisory lock whose session the coordination database ended); a no-op for file locks."""
        confirm_held(self.lock)

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
            install(shadow, self.path, mode=0o600)
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
    def connect(
        self, path: Path | None = None, *, busy_timeout: float | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection (to the mirror, or to ``path``, its shadow); call only while
        holding ``locked()``.

        The connection is checkpointed and closed on the way out (even on error), so the file on disk
        is complete and can be copied into a snapshot, and DuckDB's own file lock is released.
        """
        self.shard.ensure()
        if path is not None:  # a full sync's shadow: its own instance, with its own memory limit
            con = self._open(path, read_only=False, busy_timeout=busy_timeout)
            try:
                os.chmod(path, 0o600)
                migrate(con)
                yield con
                # Nothing else runs by now (pages fetched, lanes done): the last checkpoint, a backfill's
                # serial tail, writes its row groups on every core.
                con.execute(f"SET threads = {os.cpu_count() or 1}")
                con.execute("CHECKPOINT")
            finally:
                con.close()
            return
        # The mirror itself (incremental syncs, on-demand refreshes): attached to this process's
        # writer instance, which costs ~1 ms instead of creating and closing an instance.
        instance = SharedInstance.for_config(self._shared_config())
        left_as = _file_key(self.path)
        name, con = self._open_with(
            lambda: instance.attach(self.path, read_only=False), self.path, busy_timeout=busy_timeout
        )
        done = False
        try:
            if os.stat(self.path).st_mode & 0o777 != 0o600:
                os.chmod(self.path, 0o600)
            # Unchanged since this process migrated, checkpointed and detached it: nothing to migrate.
            if left_as is None or _migrated.get(str(self.path)) != left_as:
                migrate(con)
            yield con
            con.execute(f"CHECKPOINT {name}")
            done = True
        finally:
            _migrated.pop(str(self.path), None)
            instance.detach(name, con)
        if done:
            self.left_as = _migrated[str(self.path)] = _file_key(self.path)

    def unchanged_since(self, key: FileKey | None) -> bool:
        """True when the mirror file is exactly as this process left it with ``key`` (``left_as`` of
        a finished ``connect()``): no writer touched it since."""
        return key is not None and _file_key(self.path) == key

    @contextmanager
    def peek(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only cursor on the mirror, attached to this process's writer instance (no migration,
        no checkpoint: the cheapest look); call while holding ``locked()``. Raises ``duckdb.Error`` or
        ``FileNotFoundError`` when that is not possible (no mirror yet, held by another process): the
        caller then uses ``connect()``."""
        if not self.path.exists():
            raise FileNotFoundError(self.path)
        instance = SharedInstance.for_config(self._shared_config())
        name, con = instance.attach(self.path, read_only=True)
        try:
            yield con
        finally:
            instance.detach(name, con)

    @contextmanager
    def inspect(self, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only look at the authoritative file (audit, reconciliation of the write side).

        Holds the writer lock meanwhile, so keep it short; ordinary reads use snapshots instead."""
        if not self.path.exists():
            raise FileNotFoundError(
                f"no mirror for company {self.realm_id} at {self.path} yet; run `smartsync sync` first"
            )
        with self.locked(timeout):
            con = self._open(self.path, read_only=True)
            try:
                yield con
            finally:
                con.close()

    def _open(self, path: Path, *, read_only: bool, busy_timeout: float | None = None) -> duckdb.DuckDBPyConnection:
        """Open ``path``, waiting out (bounded) a foreign process that holds it; our own writers are
        already excluded by the writer lock, so whoever holds it now is not one of them."""
        if read_only:
            return self._open_with(lambda: duckdb.connect(str(path), read_only=True), path, busy_timeout=busy_timeout)
        config = self._config()

        def attached() -> duckdb.DuckDBPyConnection:
            # Attached rather than opened: the row group size is an option of ATTACH, not of the file.
            con = duckdb.connect(config=config)
            try:
                con.execute(f"ATTACH {sql_literal(str(path))} AS {SHADOW} (ROW_GROUP_SIZE {SHADOW_ROW_GROUP_SIZE})")
                con.execute(f"USE {SHADOW}")
            except BaseException:
                con.close()
                raise
            return con

        return self._open_with(attached, path, busy_timeout=busy_timeout)

    def _open_with(self, opener: Callable[[], _T], path: Path, *, busy_timeout: float | None = None) -> _T:
        """``opener()``, retried while a foreign process holds ``path`` (bounded by the busy timeout)."""
        bound = self.busy_timeout if busy_timeout is None else busy_timeout
        start = time.monotonic()
        delay = 0.01
        while True:
            try:
                return opener()
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                waited = time.monotonic() - start
                if waited >= bound:
                    raise MirrorBusy(self._busy_message(path, str(exc), waited)) from None
                time.sleep(min(delay, max(0.0, bound - waited)))
                delay = min(delay * 2, 0.25)

    def _busy_message(self, path: Path, error: str, waited: float) -> str:
        found = _HOLDER_PID.search(error)
        pids = [int(found.group(1))] if found else lock_holders(path)
        return (
            f"the mirror of company {self.realm_id} is held open by another process{describe_holders(pids)} "
            f"after {waited:.1f} s: only smartsync may open {path}. Point analysts at "
            f"{self.home.analyst_script_path.name} (`smartsync sql`, `duckdb -init`) or a snapshot instead"
        )

    def _config(self) -> dict[str, str]:
        tmp = self.shard.root / "duckdb_tmp"
        tmp.mkdir(exist_ok=True, mode=0o700)
        return {
            "memory_limit": self.memory_limit,
            "threads": str(self.threads),
            "preserve_insertion_order": "false",
            "temp_directory": str(tmp),
            "checkpoint_threshold": SHADOW_CHECKPOINT_THRESHOLD,
        }

    def _shared_config(self) -> dict[str, str]:
        """The writer instance of this process: every company's (and every home's) small writes share
        it, so a process serving many companies holds one instance (~5 MB each)."""
        return shared_writer_config(self.memory_limit, self.threads)


_spill_dirs: dict[int, str] = {}


def shared_writer_config(memory_limit: str = WRITER_MEMORY_LIMIT, threads: int = 1) -> dict[str, str]:
    """Configuration of the writer instance mirror writes and snapshot publication attach to. It may
    serve several homes, so what it spills goes to a private (0700) folder of this process, removed
    at exit."""
    pid = os.getpid()
    if pid not in _spill_dirs:
        _spill_dirs.clear()  # a forked child: the parent's folder is the parent's
        folder = tempfile.mkdtemp(prefix=f"smartsync-duckdb-{pid}-")
        atexit.register(shutil.rmtree, folder, True)
        _spill_dirs[pid] = folder
    return {
        "memory_limit": memory_limit,
        "threads": str(threads),
        "preserve_insertion_order": "false",
        "temp_directory": _spill_dirs[pid],
    }
