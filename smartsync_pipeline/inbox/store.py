"""``WebhookInbox``: verified webhook events on disk before the endpoint answers 200.

SQLite (stdlib) rather than the DuckDB mirror: DuckDB locks the whole file against other processes,
while the receiver must append at any moment and the Dagster sensor must read at any moment. WAL mode
lets one writer and many readers work at once across processes; ``synchronous=FULL`` makes a commit
survive a power cut, which is what "stored durably before answering" means.

The sensor's cursor is ``seq`` (``INTEGER PRIMARY KEY AUTOINCREMENT``): SQLite serialises writers, so
rows become visible in ``seq`` order and a reader that has seen ``seq = n`` will never later find a new
row below ``n``. Redeliveries are dropped by a UNIQUE constraint on the event's ``dedupe_key``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.webhooks import WebhookEvent

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key   TEXT NOT NULL UNIQUE,
    realm_id     TEXT NOT NULL,
    entity       TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    operation    TEXT NOT NULL,
    last_updated TEXT,
    event_id     TEXT,
    received_at  TEXT NOT NULL
)
"""
# v2: how far the consumer (the Dagster sensor) has handled events, so handled old ones can be pruned.
_PROGRESS = """
CREATE TABLE IF NOT EXISTS progress (
    consumer       TEXT PRIMARY KEY,
    processed_seq  INTEGER NOT NULL,
    updated_at     TEXT NOT NULL
)
"""
CONSUMER = "sensor"
_COLUMNS = "seq, dedupe_key, realm_id, entity, entity_id, operation, last_updated, event_id, received_at"
MAX_READ = 100_000


class InboxError(RuntimeError):
    """The inbox file cannot be used as a durable, multi-process store."""


@dataclass(frozen=True)
class AddResult:
    """What one ``add`` did: events newly stored and redeliveries ignored."""

    stored: int
    duplicates: int


@dataclass(frozen=True)
class InboxRecord:
    """One stored event with its position in the inbox (``seq``, strictly increasing)."""

    seq: int
    realm_id: str
    entity: str
    entity_id: str
    operation: str
    last_updated: datetime | None
    event_id: str | None
    received_at: datetime
    dedupe_key: str

    @property
    def event(self) -> WebhookEvent:
        return WebhookEvent(
            self.realm_id, self.entity, self.entity_id, self.operation, self.last_updated, self.event_id
        )


class WebhookInbox:
    """The webhook inbox file. One instance may be shared by threads; any number of processes may open
    the same file at once (the receiver writes while the sensor reads)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, busy_timeout: float = 30.0) -> None:
        self._path = Path(path) if path is not None else Home.from_env().inbox_path
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        # Autocommit mode: every transaction below is explicit (BEGIN IMMEDIATE ... COMMIT).
        self._conn = sqlite3.connect(self._path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            self._prepare()
        except BaseException:
            self._conn.close()
            raise

    def _prepare(self) -> None:
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise InboxError(f"inbox {self._path} cannot use WAL mode (got {mode!r}); use a local disk")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute(_SCHEMA)
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version in (0, 1):  # v1 -> v2 only adds the progress table
                self._conn.execute(_PROGRESS)
                self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise InboxError(f"inbox {self._path} has schema version {version}, expected {SCHEMA_VERSION}")
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    @property
    def path(self) -> Path:
        return self._path

    def add(self, events: Iterable[WebhookEvent]) -> AddResult:
        """Store ``events`` in one transaction; an event already stored (same ``dedupe_key``) is counted
        as a duplicate. When this returns, the events are committed to disk."""
        rows = [
            (
                e.dedupe_key,
                e.realm_id,
                e.entity,
                e.entity_id,
                e.operation,
                e.last_updated.astimezone(UTC).isoformat() if e.last_updated is not None else None,
                e.event_id,
            )
            for e in events
        ]
        if not rows:
            return AddResult(0, 0)
        received_at = datetime.now(UTC).isoformat()
        stored = 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    # Look first: an ignored INSERT would still use up a seq number and leave a gap.
                    seen = self._conn.execute("SELECT 1 FROM events WHERE dedupe_key = ?", (row[0],))
                    if seen.fetchone() is not None:
                        continue
                    cursor = self._conn.execute(
                        "INSERT INTO events (dedupe_key, realm_id, entity, entity_id, operation,"
                        " last_updated, event_id, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (dedupe_key) DO NOTHING",
                        (*row, received_at),
                    )
                    stored += cursor.rowcount
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        return AddResult(stored=stored, duplicates=len(rows) - stored)

    def read_after(self, seq: int, limit: int = 1000) -> list[InboxRecord]:
        """Up to ``limit`` records with ``seq`` greater than the cursor, oldest first."""
        if not 1 <= limit <= MAX_READ:
            raise ValueError(f"limit must be between 1 and {MAX_READ}")
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (int(seq), limit)
            ).fetchall()
        return [_record(row) for row in rows]

    def latest_seq(self) -> int:
        """The newest ``seq`` stored, 0 when the inbox is empty."""
        with self._lock:
            return int(self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def mark_processed(self, seq: int) -> None:
        """The consumer has handled every event up to ``seq`` (never moves backwards)."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO progress (consumer, processed_seq, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (consumer) DO UPDATE SET processed_seq = max(processed_seq, excluded.processed_seq),"
                " updated_at = excluded.updated_at",
                (CONSUMER, int(seq), datetime.now(UTC).isoformat()),
            )

    def processed_seq(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT processed_seq FROM progress WHERE consumer = ?", (CONSUMER,)).fetchone()
        return int(row[0]) if row else 0

    def prune(self, older_than_seconds: float, now: datetime | None = None) -> int:
        """Delete events the consumer has handled that were received more than ``older_than_seconds``
        ago; returns how many. Unhandled events are never pruned, however old. ``seq`` keeps growing
        (AUTOINCREMENT never reuses a number), so the consumer's cursor stays valid. A redelivery of a
        pruned event would be stored again: keep the retention well beyond Intuit's retry window."""
        if older_than_seconds < 0:
            raise ValueError("older_than_seconds must be >= 0")
        cutoff = ((now or datetime.now(UTC)) - timedelta(seconds=older_than_seconds)).astimezone(UTC).isoformat()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(
                    "SELECT processed_seq FROM progress WHERE consumer = ?", (CONSUMER,)
                ).fetchone()
                through = int(row[0]) if row else 0
                cursor = self._conn.execute("DELETE FROM events WHERE seq <= ? AND received_at < ?", (through, cutoff))
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> WebhookInbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WebhookInbox({str(self._path)!r})"


def _record(row: tuple) -> InboxRecord:
    seq, dedupe_key, realm_id, entity, entity_id, operation, last_updated, event_id, received_at = row
    return InboxRecord(
        seq=seq,
        realm_id=realm_id,
        entity=entity,
        entity_id=entity_id,
        operation=operation,
        last_updated=datetime.fromisoformat(last_updated) if last_updated is not None else None,
        event_id=event_id,
        received_at=datetime.fromisoformat(received_at),
        dedupe_key=dedupe_key,
    )
