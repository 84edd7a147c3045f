"""Published read-only snapshots of one company's mirror: how readers and writers never block each other.

After a sync commits, the writer (still holding the company's writer lock) copies the checkpointed
mirror file to ``realms/<realm>/snapshots/mirror-<generation>.duckdb`` (mode 0444) and atomically
points that folder's ``CURRENT`` and the company's ``current.duckdb`` link at it. A reader opens
whatever generation is current and may keep it open for as long as it likes: the writer never touches
a published file again, it only publishes new ones. Old generations are removed after a grace period;
a process that still has one open keeps reading it (POSIX keeps the inode alive).

``CURRENT`` also carries the company's sync state (per entity: last sync, watermark, counts), so the
freshness decision never needs to open a DuckDB file; every publication also upserts the company's
rows of the fleet state index (``fleet_state.py``) that sensors scan.

What decides whether a new data file is needed is the mirror's data version (``schema.py``): bumped by
every transaction that writes data, whether or not the change log moved. A sync that changed nothing
republishes ``CURRENT`` with new state but the same data file: no copy.

A publication may reuse an older generation nobody has open as the base of the new one ("catch-up":
only the rows the change log names are copied). It does so only when that file is exactly as it was
published: each file is sealed when published (inode, size, mtime, ctime and mode, in a ``.seal``
file) and a file whose ctime moved -- a chmod or any write does that, and no unprivileged process can
set ctime back -- is never reused, and ``smartsync audit verify --snapshot`` reports it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import duckdb

from smartsync_pipeline.durable_files import (
    fsync_dir,
    install,
    point_symlink,
    remove_leftovers,
    temp_path,
    write_atomically,
)
from smartsync_pipeline.entities import entity
from smartsync_pipeline.home import Home, RealmHome, RealmNotFound
from smartsync_pipeline.mirror.apply import id_key
from smartsync_pipeline.mirror.database import shared_writer_config
from smartsync_pipeline.mirror.reports import copy_reports
from smartsync_pipeline.mirror.schema import data_version
from smartsync_pipeline.mirror.shared_instance import SharedInstance
from smartsync_pipeline.mirror.sql import fetch_one, sql_literal

log = logging.getLogger("smartsync.mirror")

CURRENT = "CURRENT"
SEAL = ".seal"
SNAPSHOT_GLOB = "mirror-*.duckdb"


@dataclass(frozen=True)
class SnapshotInfo:
    """One published generation of one company: the data file and the sync state as of publication."""

    generation: int
    file: str
    published_at: datetime
    data_published_at: datetime
    state: dict[str, dict[str, dict[str, Any]]]  # realm -> entity -> sync_state row (JSON-ready)
    path: Path
    content_key: str = ""  # schema version and data version of the data file
    realm_id: str = ""
    tables: list[str] = field(default_factory=list)  # what the analyst script may union over

    def entity_state(self, realm_id: str, entity: str) -> dict[str, Any] | None:
        return self.state.get(realm_id, {}).get(entity)

    def last_sync_at(self, realm_id: str, entity: str) -> datetime | None:
        row = self.entity_state(realm_id, entity)
        value = row and row.get("last_sync_at")
        return datetime.fromisoformat(value) if value else None

    @property
    def realms(self) -> list[str]:
        return sorted(self.state)


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def read_state_rows(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, dict[str, Any]]]:
    """The sync_state table as realm -> entity -> row, JSON-ready."""
    cur = con.execute("SELECT * FROM sync_state ORDER BY realm_id, entity")
    names = [d[0] for d in cur.description]
    state: dict[str, dict[str, dict[str, Any]]] = {}
    for row in cur.fetchall():
        rec = {k: _iso(v) for k, v in zip(names, row, strict=True)}
        state.setdefault(rec["realm_id"], {})[rec["entity"]] = rec
    return state


def content_key(con: duckdb.DuckDBPyConnection) -> str:
    """What the data file holds, in one string: schema version and data version."""
    return content_key_of(con, "main")


def content_key_of(con: duckdb.DuckDBPyConnection, catalog: str) -> str:
    version = fetch_one(con, f"SELECT max(version) FROM {catalog}.schema_version")
    return f"v{version[0] if version else 0}:d{data_version(con, catalog)}"


def _stat_seal(path: Path) -> dict[str, int]:
    st = os.stat(path)
    return {
        "ino": st.st_ino,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "mode": st.st_mode & 0o7777,
    }


def seal_path(path: Path) -> Path:
    return path.with_name(path.name + SEAL)


def seal(path: Path, *, sync_dir: bool = True) -> None:
    """Record what ``path`` looks like now (call after its final chmod and rename). ``sync_dir=False``
    when the caller flushes the folder right after (publication: CURRENT's own rename does)."""
    write_atomically(seal_path(path), json.dumps(_stat_seal(path)), mode=0o444, sync_dir=sync_dir)


def is_intact(path: Path) -> bool:
    """True when ``path`` is exactly as it was sealed: same inode, size, times and a read-only mode."""
    try:
        recorded = json.loads(seal_path(path).read_text())
        now = _stat_seal(path)
    except (OSError, ValueError):
        return False
    return recorded == now and not now["mode"] & 0o222


@dataclass
class SnapshotStore:
    """Publishes and finds one company's snapshots under ``realms/<realm>/snapshots``.

    ``realm_id`` may be left out when the home has exactly one company."""

    home: Home
    realm_id: str | None = None
    keep: int = 3
    grace_seconds: float = 120.0
    last_method: str | None = None  # how the last publish made its file: "copy", "catch-up" or None
    shard: RealmHome = field(init=False)

    def __post_init__(self) -> None:
        from smartsync_pipeline.mirror.upgrade import ensure_upgraded

        ensure_upgraded(self.home)
        self.shard = self.home.only_realm(self.realm_id)
        self.realm_id = self.shard.realm_id

    @property
    def dir(self) -> Path:
        return self.shard.snapshots_dir

    def current(self) -> SnapshotInfo | None:
        try:
            doc = json.loads((self.dir / CURRENT).read_text())
        except FileNotFoundError:
            return None
        return self._info(doc)

    def _info(self, doc: dict[str, Any]) -> SnapshotInfo:
        return SnapshotInfo(
            generation=doc["generation"],
            file=doc["file"],
            published_at=datetime.fromisoformat(doc["published_at"]),
            data_published_at=datetime.fromisoformat(doc["data_published_at"]),
            state=doc["state"],
            path=self.dir / doc["file"],
            content_key=doc.get("content_key", ""),
            realm_id=self.shard.realm_id,
            tables=list(doc.get("tables") or []),
        )

    def publish(
        self,
        mirror_path: Path,
        state: dict[str, dict[str, dict[str, Any]]],
        *,
        content_key: str,
        tables: list[str] | None = None,
    ) -> SnapshotInfo:
        """Make the current mirror file visible to readers. Call while holding the company's writer
        lock, after the writer's connection is closed (checkpointed). ``content_key`` identifies the
        data (schema + data version): the file is copied only when it differs from the published one,
        which also republishes data a crashed writer committed but never published. ``tables`` (the
        mirror's tables, read from the file when not given) feed the analyst script."""
        self.shard.ensure()
        # Under the writer lock nobody else writes here: any temporary file is a killed writer's.
        remove_leftovers(self.dir, all_writers_done=True)
        remove_leftovers(self.shard.root, all_writers_done=True)
        previous = self.current()
        now = datetime.now(UTC)
        generation = (previous.generation if previous else 0) + 1
        if previous is None or previous.content_key != content_key or not previous.path.exists():
            wal = mirror_path.with_name(mirror_path.name + ".wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise RuntimeError(f"mirror {mirror_path} was not checkpointed; refusing to publish a partial copy")
            name = f"mirror-{generation:08d}.duckdb"
            self.last_method = self._catch_up_standby(mirror_path, previous, name, content_key)
            if self.last_method is None:
                tmp = temp_path(self.dir / name)
                try:
                    shutil.copyfile(mirror_path, tmp)
                    install(tmp, self.dir / name, mode=0o444)
                finally:
                    tmp.unlink(missing_ok=True)
                self.last_method = "copy"
            seal(self.dir / name, sync_dir=False)  # CURRENT's write below flushes the folder
            data_published_at = now
            tables = sorted(tables) if tables is not None else _tables_of(self.dir / name)
        else:
            name = previous.file
            data_published_at = previous.data_published_at
            self.last_method = None
            tables = previous.tables
        doc = {
            "generation": generation,
            "file": name,
            "published_at": now.isoformat(),
            "data_published_at": data_published_at.isoformat(),
            "content_key": content_key,
            "tables": tables,
            "state": state,
        }
        text = json.dumps(doc, indent=1, sort_keys=True)
        write_atomically(self.dir / CURRENT, text, mode=0o644)
        first_publication = self._point_current_link(name)
        self._record_fleet_state(state)
        if first_publication or previous is None or previous.tables != tables:
            from smartsync_pipeline.mirror.analyst import write_script

            write_script(self.home)
        self._collect_garbage(keep_file=name)
        return self._info(json.loads(text))  # what readers of CURRENT see, without reading it back

    def _record_fleet_state(self, state: dict[str, dict[str, dict[str, Any]]]) -> None:
        from smartsync_pipeline.mirror.fleet_state import FleetState

        try:
            FleetState(self.home).record(self.shard.realm_id, state.get(self.shard.realm_id, {}))
        except Exception as exc:  # derived data: sensors may sync this company once more, nothing is lost
            log.warning("could not update the fleet state index for company %s: %s", self.shard.realm_id, exc)

    def _catch_up_standby(
        self, mirror_path: Path, previous: SnapshotInfo | None, name: str, content_key: str
    ) -> str | None:
        """Turn an older snapshot nobody has open into the new one by copying only what changed since
        it was published (rows named in the change log after its head, the new change-log rows, the
        sync state): O(changes) instead of a full copy of a large mirror. Returns "catch-up", or None
        when no older snapshot can be reused (modified since it was sealed, held open by a reader,
        another schema, too far behind, or data written that the change log does not describe)."""
        if previous is None:
            return None
        candidates = sorted((f for f in self.dir.glob(SNAPSHOT_GLOB) if f.name != previous.file), reverse=True)[:2]
        for standby in candidates:
            if not is_intact(standby):
                log.warning("snapshot %s was modified after it was published; it is not reused", standby)
                continue
            os.chmod(standby, 0o644)
            # Attached to this process's writer instance (no instance to create and close).
            instance = SharedInstance.for_config(shared_writer_config())
            try:
                attached, con = instance.attach(standby, read_only=False)
            except duckdb.Error:
                # Open in some reader (DuckDB's file lock, or this process's own readers): untouched,
                # so it stays sealed as it was.
                os.chmod(standby, 0o444)
                seal(standby)
                continue
            try:
                # Read-only before the checkpoint, whose fsync then makes the mode durable with the data.
                caught_up = _catch_up(con, mirror_path, partial(os.chmod, standby, 0o444)) == content_key
            except duckdb.Error:
                caught_up = False
            finally:
                instance.detach(attached, con)
            if not caught_up:
                self._remove(standby)  # half-written or unusable now; an old generation anyway
                continue
            target = self.dir / name
            if os.stat(standby).st_mode & 0o777 != 0o444:  # already level: no checkpoint ran
                install(standby, standby, mode=0o444)
            # Data and mode are on disk (the checkpoint's fsync): only the rename is left to flush.
            os.replace(standby, target)
            fsync_dir(self.dir)
            seal_path(standby).unlink(missing_ok=True)
            return "catch-up"
        return None

    def _point_current_link(self, name: str) -> bool:
        """Point ``current.duckdb`` at ``snapshots/<name>``; True when the link did not exist before."""
        return point_symlink(self.shard.current_link, self.dir / name)

    def _remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        seal_path(path).unlink(missing_ok=True)

    def _collect_garbage(self, keep_file: str) -> None:
        files = sorted(self.dir.glob(SNAPSHOT_GLOB))
        old = [f for f in files if f.name != keep_file][: max(0, len(files) - self.keep)]
        cutoff = time.time() - self.grace_seconds
        for f in old:
            if f.stat().st_mtime < cutoff:
                self._remove(f)
        for orphan in self.dir.glob(SNAPSHOT_GLOB + SEAL):
            if not orphan.with_name(orphan.name.removesuffix(SEAL)).exists():
                orphan.unlink(missing_ok=True)

    def problems(self) -> list[str]:
        """Every way the published files differ from what was published: a sealed file modified since,
        or CURRENT naming a file that is gone. [] when all is as published."""
        found = []
        info = self.current()
        if info is not None and not info.path.exists():
            found.append(f"CURRENT names {info.file}, which does not exist")
        for path in sorted(self.dir.glob(SNAPSHOT_GLOB)):
            if not is_intact(path):
                found.append(f"snapshot {path.name} was modified after it was published (permissions, size or times)")
        return found


def _tables_of(path: Path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(
            r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()
        )
    finally:
        con.close()


def mirror_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The tables of the mirror open on ``con`` (passed to ``publish`` to spare it opening the file)."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall()
    return sorted(r[0] for r in rows)


MAX_CATCH_UP_CHANGES = 200_000  # beyond this a full copy is cheaper than replaying rows


def _catch_up(
    con: duckdb.DuckDBPyConnection, mirror_path: Path, before_checkpoint: Callable[[], None] | None = None
) -> str:
    """Bring the snapshot open on ``con`` level with the mirror, in one transaction. Returns the
    snapshot's content key afterwards (the caller checks it equals the mirror's), or "" when the
    change log cannot describe the difference."""
    own = fetch_one(con, "SELECT current_database()")[0]
    con.execute(f"ATTACH {sql_literal(str(mirror_path))} AS m (READ_ONLY)")
    try:
        key = content_key(con)
        if key == content_key_of(con, "m"):
            return key
        if fetch_one(con, "SELECT max(version) FROM schema_version") != fetch_one(
            con, "SELECT max(version) FROM m.schema_version"
        ):
            return ""
        since = data_version(con)
        # Everything written since must be described by the change log, or be a stored report run (the
        # report tables are small and copied whole); a migration, an upgrade or any other writer that
        # logged nothing forces a full copy.
        kinds = {
            r[0] for r in con.execute("SELECT DISTINCT kind FROM m.data_versions WHERE version > ?", [since]).fetchall()
        }
        if kinds - {"changes", "reports"}:
            return ""
        head = fetch_one(con, "SELECT coalesce(max(change_id), 0) FROM change_log")[0]
        newest = fetch_one(con, "SELECT coalesce(max(change_id), 0) FROM m.change_log")[0]
        if newest - head > MAX_CATCH_UP_CHANGES or newest < head:
            return ""
        touched: dict[tuple[str, str], list[str]] = {}
        for realm_id, name, entity_id in con.execute(
            "SELECT DISTINCT realm_id, entity, entity_id FROM m.change_log WHERE change_id > ?", [head]
        ).fetchall():
            touched.setdefault((realm_id, name), []).append(entity_id)
        # The same BIGINT id_key lookups as the sync's apply: cost follows the changes, not the rows.
        where = "realm_id = ? AND id_key IN (SELECT unnest(?::BIGINT[])) AND id IN (SELECT unnest(?::VARCHAR[]))"
        con.execute("BEGIN TRANSACTION")
        try:
            for (realm_id, name), ids in touched.items():
                params = [realm_id, [id_key(i) for i in ids], ids]
                table = entity(name).table
                con.execute(f"DELETE FROM {table} WHERE {where}", params)
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM m.{table} WHERE {where}", params)
            con.execute("INSERT INTO change_log BY NAME SELECT * FROM m.change_log WHERE change_id > ?", [head])
            con.execute("INSERT INTO data_versions BY NAME SELECT * FROM m.data_versions WHERE version > ?", [since])
            con.execute("DELETE FROM sync_state")
            con.execute("INSERT INTO sync_state BY NAME SELECT * FROM m.sync_state")
            if "reports" in kinds:
                copy_reports(con, "m")  # report runs do not move the change log: copied whole
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if before_checkpoint is not None:
            before_checkpoint()
        con.execute(f"CHECKPOINT {own}")
        return content_key(con)
    finally:
        con.execute("DETACH m")


@dataclass
class _Open:
    name: str  # its catalog in the shared reader instance
    con: duckdb.DuckDBPyConnection  # the attachment's own cursor
    users: int = 0
    last_used: float = 0.0


@dataclass
class SnapshotReader:
    """Read-only access to every company's newest snapshot, with one cached connection per
    (company, generation).

    Connections are opened read-only on files nobody writes, so holding them never blocks a sync.
    Threads get their own cursor. When a newer generation appears, new reads move to it and the old
    connection is closed once its last user is done; at most ``max_idle`` idle connections stay open
    (least recently used closed first), so a process serving thousands of companies stays bounded.
    """

    home: Home
    max_idle: int = 32
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _open: dict[tuple[str, str], _Open] = field(default_factory=dict, repr=False)
    _state_cache: dict[str, tuple[int, int, SnapshotInfo | None]] = field(default_factory=dict, repr=False)
    _stores: dict[str, SnapshotStore] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        from smartsync_pipeline.mirror.upgrade import ensure_upgraded

        ensure_upgraded(self.home)

    def store(self, realm_id: str | None = None) -> SnapshotStore:
        """The company's snapshot store (``realm_id`` may be left out with exactly one company)."""
        realm = self.home.only_realm(realm_id).realm_id
        store = self._stores.get(realm)
        if store is None:
            store = self._stores[realm] = SnapshotStore(self.home, realm)
        return store

    def current(self, realm_id: str | None = None) -> SnapshotInfo | None:
        """The company's newest published snapshot (CURRENT re-read only when it changed on disk);
        None while nothing is published (or, without ``realm_id``, while no company has a mirror)."""
        if realm_id is None and not self.home.realm_ids():
            return None
        try:
            store = self.store(realm_id)
        except ValueError:  # not a realm id at all (e.g. "../x"): no company can have published it
            return None
        path = store.dir / CURRENT
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        cached = self._state_cache.get(store.shard.realm_id)
        if cached is not None and cached[2] is not None and st.st_mtime_ns == cached[0] and st.st_ino == cached[1]:
            return cached[2]
        info = store.current()
        self._state_cache[store.shard.realm_id] = (st.st_mtime_ns, st.st_ino, info)
        return info

    @contextmanager
    def cursor(
        self, info: SnapshotInfo | None = None, *, realm_id: str | None = None
    ) -> Iterator[tuple[duckdb.DuckDBPyConnection, SnapshotInfo]]:
        """A cursor on ``info`` (default: the current snapshot of ``realm_id``)."""
        realm = info.realm_id if info is not None else realm_id
        for attempt in range(3):
            info = info if (info is not None and attempt == 0) else self.current(realm)
            if info is None:
                where = self.home.realm(realm).snapshots_dir if realm else self.home.realms_dir
                raise FileNotFoundError(f"no published mirror snapshot under {where}; run `smartsync sync` first")
            realm = info.realm_id
            try:
                entry = self._acquire(info)
                break
            except (duckdb.IOException, FileNotFoundError):
                # Collected between reading CURRENT and opening it: read CURRENT again.
                info = None
                if attempt == 2:
                    raise
        try:
            cur = entry.con.cursor()
            try:
                cur.execute(f"USE {entry.name}")
                yield cur, info
            finally:
                cur.close()
        finally:
            self._release(info)

    def _acquire(self, info: SnapshotInfo) -> _Open:
        key = (info.realm_id, info.file)
        with self._lock:
            entry = self._open.get(key)
            if entry is None:
                # Attached read-only to this process's reader instance (default configuration, so a
                # connection the caller opened to the same file can coexist): ~1 ms, where creating
                # an instance per generation cost tens.
                entry = _Open(*self._instance().attach(info.path, read_only=True))
                self._open[key] = entry
            entry.users += 1
            entry.last_used = time.monotonic()
            return entry

    @staticmethod
    def _instance() -> SharedInstance:
        return SharedInstance.for_config({})

    def _close(self, entry: _Open) -> None:
        self._instance().detach(entry.name, entry.con)

    def attached(self) -> list[str]:
        """Files this reader holds open right now (tests, leak checks)."""
        with self._lock:
            return sorted(f"{realm}/{file}" for realm, file in self._open)

    def _release(self, info: SnapshotInfo) -> None:
        key = (info.realm_id, info.file)
        newest = self.current(info.realm_id)
        with self._lock:
            entry = self._open.get(key)
            if entry is None:
                return
            entry.users -= 1
            # Idle connections to superseded generations of this company go now, not when the LRU
            # bound is reached: each holds descriptors and memory, and an open file can never be
            # caught up by the next publication (DuckDB refuses a writer on it), which then falls
            # back to copying the whole mirror.
            for k, e in list(self._open.items()):
                if k[0] == info.realm_id and e.users == 0 and (newest is None or newest.file != k[1]):
                    self._close(e)
                    del self._open[k]
            idle = sorted((e.last_used, k) for k, e in self._open.items() if e.users == 0)
            for _, k in idle[: max(0, len(idle) - self.max_idle)]:
                self._close(self._open.pop(k))

    def close(self) -> None:
        with self._lock:
            for entry in self._open.values():
                self._close(entry)
            self._open.clear()


__all__ = [
    "CURRENT",
    "RealmNotFound",
    "SnapshotInfo",
    "SnapshotReader",
    "SnapshotStore",
    "content_key",
    "is_intact",
    "read_state_rows",
]
