"""The fleet state index: when each (company, entity) last synced and when it needs syncing again.

One small SQLite file (WAL mode) for the whole home, one row per (realm, entity): ``last_sync_at``
and ``fresh_until`` (``last_sync_at`` + the entity's warn window; 0 when never synced), indexed on
``fresh_until``. Every publication upserts its company's rows in one short transaction, so the
question sensors ask every tick -- "which (company, entity) pairs are stale?" -- is one index range
scan whose cost follows the number of stale pairs, not the size of the fleet. Each company's own
``snapshots/CURRENT`` stays the authority for the reader's freshness decision; this index is derived
from those files and can be rebuilt from them (``rebuild``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.home import Home

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entity_state (
    realm_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    last_sync_at REAL,                   -- unix seconds of the last successful sync; NULL: never
    fresh_until REAL NOT NULL,           -- last_sync_at + warn window; 0 when never synced
    PRIMARY KEY (realm_id, entity)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entity_state_due ON entity_state (fresh_until);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""
_WARN = {spec.name: spec.freshness.warn.total_seconds() for spec in ENTITIES}
_ORDER = {spec.name: i for i, spec in enumerate(ENTITIES)}


_writers: dict[tuple[int, str], tuple[sqlite3.Connection, int]] = {}
_MAX_WRITERS = 4
_writers_lock = threading.Lock()  # also serializes this process's writes through a shared connection


@dataclass(frozen=True)
class EntityFreshness:
    realm_id: str
    entity: str
    last_sync_at: datetime | None
    fresh_until: datetime


@dataclass(frozen=True)
class FleetView:
    """Every company's last sync per entity, shaped like a snapshot's state (realm -> entity -> row)."""

    state: dict[str, dict[str, dict[str, Any]]]

    @property
    def realms(self) -> list[str]:
        return sorted(self.state)


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.timestamp()


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class FleetState:
    """Reads and writes the fleet state index of one home (reads open SQLite per call; publications
    write through one kept connection per home and process, so descriptors stay bounded either way)."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.path = home.fleet_state_path

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.home.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = not self.path.exists()
        con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            if fresh:
                os.chmod(self.path, 0o600)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.executescript(_SCHEMA)
            self._follow_registry(con)
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def _writer(self) -> Iterator[sqlite3.Connection]:
        """The connection publications upsert through: one per home and process, kept open. Opening
        one per publication cost the schema statements and, on close, a WAL checkpoint with its fsyncs
        -- on every on-demand refresh (ARCHITECTURE.md, "Stale reads"). Reopened when the file was
        replaced or removed; a forked child opens its own."""
        key = (os.getpid(), str(self.path))
        with _writers_lock:
            try:
                inode = self.path.stat().st_ino
            except FileNotFoundError:
                inode = None
            held = _writers.get(key)
            if held is not None and held[1] != inode:
                held[0].close()
                held = None
            if held is None:
                for stale in [k for k in _writers if k[0] != key[0]]:
                    del _writers[stale]  # a parent's connections: never used (nor closed) in a child
                with self._connect() as probe:  # creates the file, the schema and follows the registry
                    del probe
                con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                con.execute("PRAGMA synchronous=NORMAL")
                held = _writers[key] = (con, self.path.stat().st_ino)
                while len(_writers) > _MAX_WRITERS:  # many homes in one process (tests): oldest first
                    _writers.pop(next(iter(_writers)))[0].close()
            yield held[0]

    def _follow_registry(self, con: sqlite3.Connection) -> None:
        """Recompute ``fresh_until`` when the registry's warn windows changed since it was written."""
        signature = json.dumps(_WARN, sort_keys=True)
        row = con.execute("SELECT value FROM meta WHERE key = 'warn_windows'").fetchone()
        if row is not None and row[0] == signature:
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'warn_windows'").fetchone()
            if row is None or row[0] != signature:
                for name, warn in _WARN.items():
                    con.execute(
                        "UPDATE entity_state SET fresh_until = last_sync_at + ? "
                        "WHERE entity = ? AND last_sync_at IS NOT NULL",
                        [warn, name],
                    )
                con.execute(
                    f"DELETE FROM entity_state WHERE entity NOT IN ({', '.join('?' * len(_WARN))})", list(_WARN)
                )
                con.execute("INSERT OR REPLACE INTO meta VALUES ('warn_windows', ?)", [signature])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    # -- writing -------------------------------------------------------------------------------

    def record(self, realm_id: str, state: Mapping[str, Mapping[str, Any]]) -> None:
        """Upsert one company's rows from its published sync state (entity -> sync_state row); every
        registry entity gets a row (never synced ones are due at once)."""
        self.record_many([(realm_id, state)])

    def record_many(self, states: Iterable[tuple[str, Mapping[str, Mapping[str, Any]]]]) -> None:
        """``record`` for many companies in one transaction."""
        rows = []
        for realm_id, state in states:
            for name, warn in _WARN.items():
                last = _seconds((state.get(name) or {}).get("last_sync_at"))
                rows.append((realm_id, name, last, 0.0 if last is None else last + warn))
        with self._writer() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany(
                    "INSERT INTO entity_state (realm_id, entity, last_sync_at, fresh_until) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (realm_id, entity) DO UPDATE SET last_sync_at = excluded.last_sync_at, "
                    "fresh_until = excluded.fresh_until "
                    "WHERE excluded.last_sync_at IS NOT NULL OR entity_state.last_sync_at IS NULL",
                    rows,
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def register(self, realm_id: str) -> None:
        """A newly connected company: every entity due now, unless it already has rows."""
        self.record(realm_id, {})

    def remove(self, realm_id: str) -> None:
        """A disconnected company: no sensor asks about it any more."""
        with self._connect() as con:
            con.execute("DELETE FROM entity_state WHERE realm_id = ?", [realm_id])

    def rebuild(self, states: Iterable[tuple[str, Mapping[str, Mapping[str, Any]]]]) -> None:
        """Replace the whole index with ``(realm, entity -> row)`` pairs (e.g. every company's CURRENT)."""
        with self._connect() as con:
            con.execute("DELETE FROM entity_state")
        self.record_many(states)

    # -- reading -------------------------------------------------------------------------------

    def stale(self, now: datetime) -> dict[str, list[str]]:
        """Companies with entities past their warn window (or never synced): realm -> entity names in
        registry order. One range scan of the ``fresh_until`` index: cost follows the answer."""
        out: dict[str, list[str]] = {}
        with self._connect() as con:
            for realm_id, name in con.execute(
                "SELECT realm_id, entity FROM entity_state WHERE fresh_until <= ?", [now.timestamp()]
            ):
                out.setdefault(realm_id, []).append(name)
        for names in out.values():
            names.sort(key=lambda n: _ORDER.get(n, len(_ORDER)))
        return dict(sorted(out.items()))

    def of(self, realm_id: str) -> dict[str, EntityFreshness]:
        """One company's rows (entity -> freshness); {} for a company the index does not know."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT entity, last_sync_at, fresh_until FROM entity_state WHERE realm_id = ?", [realm_id]
            ).fetchall()
        return {
            name: EntityFreshness(realm_id, name, _moment(last), _moment(until) or datetime.fromtimestamp(0, UTC))
            for name, last, until in sorted(rows, key=lambda r: _ORDER.get(r[0], len(_ORDER)))
        }

    def realms(self) -> list[str]:
        with self._connect() as con:
            return [r[0] for r in con.execute("SELECT DISTINCT realm_id FROM entity_state ORDER BY realm_id")]

    def view(self) -> FleetView:
        """Every row, as realm -> entity -> {"last_sync_at": ISO or None} (what today's freshness
        sensor and checks judge; it reads the whole fleet, ``stale`` does not)."""
        state: dict[str, dict[str, dict[str, Any]]] = {}
        with self._connect() as con:
            for realm_id, name, last in con.execute("SELECT realm_id, entity, last_sync_at FROM entity_state"):
                moment = _moment(last)
                state.setdefault(realm_id, {})[name] = {
                    "realm_id": realm_id,
                    "entity": name,
                    "last_sync_at": moment.isoformat() if moment else None,
                }
        return FleetView(state)
