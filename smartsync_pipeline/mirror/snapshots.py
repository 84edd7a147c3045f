"""Published read-only snapshots of the mirror: how readers and writers never block each other.

After a sync commits, the writer (still holding the writer lock) copies the checkpointed mirror file
to ``snapshots/mirror-<generation>.duckdb`` and atomically points ``snapshots/CURRENT`` and the
``analyst.duckdb`` link at it. A reader opens whatever generation is current and may keep it open for
as long as it likes: the writer never touches a published file again, it only publishes new ones.
Old generations are removed after a grace period; a process that still has one open keeps reading it
(POSIX keeps the inode alive).

``CURRENT`` also carries the sync state (per realm and entity: last sync, watermark, counts), so the
freshness decision, sensors and the webserver never need to open a DuckDB file at all. A sync that
changed no rows republishes ``CURRENT`` with new state but the same data file: no copy.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from smartsync_pipeline.entities import entity
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror.apply import id_key
from smartsync_pipeline.mirror.files import fsync_file
from smartsync_pipeline.mirror.reports import copy_reports, report_head
from smartsync_pipeline.mirror.sql import fetch_one, sql_literal

CURRENT = "CURRENT"


@dataclass(frozen=True)
class SnapshotInfo:
    """One published generation: the data file and the sync state as of publication."""

    generation: int
    file: str
    published_at: datetime
    data_published_at: datetime
    state: dict[str, dict[str, dict[str, Any]]]  # realm -> entity -> sync_state row (JSON-ready)
    path: Path
    content_key: str = ""  # schema version and change-log head of the data file

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
    """What the data file holds, in one string: schema version and change-log head."""
    return content_key_of(con, "main")


@dataclass
class SnapshotStore:
    """Publishes and finds snapshots under ``home.snapshots_dir``."""

    home: Home
    keep: int = 3
    grace_seconds: float = 120.0
    last_method: str | None = None  # how the last publish made its file: "copy", "catch-up" or None

    @property
    def dir(self) -> Path:
        return self.home.snapshots_dir

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
        )

    def publish(
        self, mirror_path: Path, state: dict[str, dict[str, dict[str, Any]]], *, content_key: str
    ) -> SnapshotInfo:
        """Make the current mirror file visible to readers. Call while holding the writer lock, after
        the writer's connection is closed (checkpointed). ``content_key`` identifies the data (schema
        version + change-log head): the file is copied only when it differs from the published one,
        which also republishes data a crashed writer committed but never published."""
        self.dir.mkdir(parents=True, exist_ok=True)
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
                tmp = self.dir / (name + ".tmp")
                shutil.copyfile(mirror_path, tmp)
                fsync_file(tmp)
                os.replace(tmp, self.dir / name)
                self.last_method = "copy"
            data_published_at = now
            self._point_analyst_link(name)
        else:
            name = previous.file
            data_published_at = previous.data_published_at
        doc = {
            "generation": generation,
            "file": name,
            "published_at": now.isoformat(),
            "data_published_at": data_published_at.isoformat(),
            "content_key": content_key,
            "state": state,
        }
        text = json.dumps(doc, indent=1, sort_keys=True)
        _atomic_write(self.dir / CURRENT, text)
        self._collect_garbage(keep_file=name)
        return self._info(json.loads(text))  # what readers of CURRENT see, without reading it back

    def _catch_up_standby(
        self, mirror_path: Path, previous: SnapshotInfo | None, name: str, content_key: str
    ) -> str | None:
        """Turn an older snapshot nobody has open into the new one by copying only what changed since
        it was published (rows named in the change log after its head, the new change-log rows, the
        sync state): O(changes) instead of a full copy of a large mirror. Returns "catch-up", or None
        when no older snapshot can be reused (held open by a reader, other schema, too far behind)."""
        if previous is None:
            return None
        candidates = sorted((f for f in self.dir.glob("mirror-*.duckdb") if f.name != previous.file), reverse=True)[:2]
        for standby in candidates:
            try:
                con = duckdb.connect(str(standby), config={"threads": "1", "memory_limit": "192MB"})
            except duckdb.Error:
                continue  # open in some reader (DuckDB's file lock) or unreadable: not reusable now
            try:
                if _catch_up(con, mirror_path) != content_key:
                    continue
            except duckdb.Error:
                continue
            finally:
                con.close()
            fsync_file(standby)
            os.replace(standby, self.dir / name)
            return "catch-up"
        return None

    def _point_analyst_link(self, name: str) -> None:
        link = self.home.analyst_path
        tmp = link.with_name(link.name + ".tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(os.path.relpath(self.dir / name, link.parent), tmp)
        os.replace(tmp, link)

    def _collect_garbage(self, keep_file: str) -> None:
        files = sorted(self.dir.glob("mirror-*.duckdb"))
        old = [f for f in files if f.name != keep_file][: max(0, len(files) - self.keep)]
        cutoff = time.time() - self.grace_seconds
        for f in old:
            if f.stat().st_mtime < cutoff:
                f.unlink(missing_ok=True)


MAX_CATCH_UP_CHANGES = 200_000  # beyond this a full copy is cheaper than replaying rows


def _catch_up(con: duckdb.DuckDBPyConnection, mirror_path: Path) -> str:
    """Bring the snapshot open on ``con`` level with the mirror, in one transaction. Returns the
    snapshot's content key afterwards (the caller checks it equals the mirror's)."""
    con.execute(f"ATTACH {sql_literal(str(mirror_path))} AS m (READ_ONLY)")
    try:
        key = content_key(con)
        if key == content_key_of(con, "m"):
            return key
        if fetch_one(con, "SELECT max(version) FROM schema_version") != fetch_one(
            con, "SELECT max(version) FROM m.schema_version"
        ):
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
            con.execute("DELETE FROM sync_state")
            con.execute("INSERT INTO sync_state BY NAME SELECT * FROM m.sync_state")
            copy_reports(con, "m")  # reports do not move the change log: copied whole (they are small)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("CHECKPOINT")
        return content_key(con)
    finally:
        con.execute("DETACH m")


def content_key_of(con: duckdb.DuckDBPyConnection, catalog: str) -> str:
    version = fetch_one(con, f"SELECT max(version) FROM {catalog}.schema_version")
    head = fetch_one(con, f"SELECT max(change_id) FROM {catalog}.change_log")
    key = f"v{version[0] if version else 0}:c{head[0] if head and head[0] is not None else 0}"
    runs = report_head(con, catalog)  # a stored report run changes the data without a change-log row
    return f"{key}:r{runs}" if runs else key


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass
class SnapshotReader:
    """Read-only access to the newest snapshot, with one cached connection per generation.

    Connections are opened read-only on a file nobody writes, so holding them never blocks a sync.
    Threads get their own cursor. When a newer generation appears, new reads move to it and the old
    connection is closed once its last user is done.
    """

    home: Home
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _open: dict[str, tuple[duckdb.DuckDBPyConnection, list[int]]] = field(default_factory=dict, repr=False)
    _state_cache: tuple[float, int, SnapshotInfo | None] = field(default=(0.0, 0, None), repr=False)

    def __post_init__(self) -> None:
        self.store = SnapshotStore(self.home)

    def current(self) -> SnapshotInfo | None:
        """The newest published snapshot (re-read only when CURRENT changed on disk)."""
        path = self.store.dir / CURRENT
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        mtime, ino, cached = self._state_cache
        if cached is not None and st.st_mtime_ns == mtime and st.st_ino == ino:
            return cached
        info = self.store.current()
        self._state_cache = (st.st_mtime_ns, st.st_ino, info)
        return info

    @contextmanager
    def cursor(self, info: SnapshotInfo | None = None) -> Iterator[tuple[duckdb.DuckDBPyConnection, SnapshotInfo]]:
        """A cursor on ``info`` (default: the current snapshot)."""
        for attempt in range(3):
            info = info if (info is not None and attempt == 0) else self.current()
            if info is None:
                raise FileNotFoundError(
                    f"no published mirror snapshot under {self.store.dir}; run `smartsync sync` first"
                )
            try:
                con = self._acquire(info)
                break
            except (duckdb.IOException, FileNotFoundError):
                # Collected between reading CURRENT and opening it: read CURRENT again.
                info = None
                if attempt == 2:
                    raise
        try:
            cur = con.cursor()
            try:
                yield cur, info
            finally:
                cur.close()
        finally:
            self._release(info)

    def _acquire(self, info: SnapshotInfo) -> duckdb.DuckDBPyConnection:
        with self._lock:
            entry = self._open.get(info.file)
            if entry is None:
                # Default configuration, so a connection the caller opened to the same file can coexist.
                con = duckdb.connect(str(info.path), read_only=True)
                entry = (con, [0])
                self._open[info.file] = entry
            entry[1][0] += 1
            return entry[0]

    def _release(self, info: SnapshotInfo) -> None:
        with self._lock:
            entry = self._open.get(info.file)
            if entry is None:
                return
            entry[1][0] -= 1
            newest = self.current()
            if entry[1][0] == 0 and (newest is None or newest.file != info.file):
                entry[0].close()
                del self._open[info.file]

    def close(self) -> None:
        with self._lock:
            for con, _ in self._open.values():
                con.close()
            self._open.clear()
