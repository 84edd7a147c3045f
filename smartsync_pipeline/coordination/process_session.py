"""One coordination session per process (per database URL), shared by every limiter of the process.

A process that talks to thousands of companies keeps one limiter per company (``qbo/limiter_registry``);
a connection each would exhaust the server's connections. Here every limiter of the process shares one
session, its statements one at a time. Session advisory locks are re-entrant within a session, so the
session also remembers which keys this process holds: a second grant of a held key is refused here, as
another process would be refused by the server. After a fork the child starts a session of its own (the
parent's connection is left alone: closing it in the child would end the parent's session).
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

import psycopg2

from smartsync_pipeline.coordination.keys import advisory_key
from smartsync_pipeline.coordination.postgres import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS smartsync_qbo_requests (
    namespace text NOT NULL, realm_id text NOT NULL, sent_at timestamptz NOT NULL);
CREATE INDEX IF NOT EXISTS smartsync_qbo_requests_window ON smartsync_qbo_requests (namespace, realm_id, sent_at);
CREATE TABLE IF NOT EXISTS smartsync_qbo_blocks (
    namespace text NOT NULL, realm_id text NOT NULL, blocked_until timestamptz NOT NULL,
    PRIMARY KEY (namespace, realm_id));
"""
_SCHEMA_KEY = advisory_key("smartsync/coordination/schema")

_sessions: dict[tuple[str, int], ProcessSession] = {}
_sessions_lock = threading.Lock()
_inherited: list[Any] = []  # a parent's connections seen after fork: kept referenced, never closed


class ProcessSession:
    """The process's connection to the coordination database and the advisory keys it holds."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._conn: Any = None
        self.held: set[int] = set()

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            conn = connect(self._url)
            with conn.cursor() as cur:  # tables created once, by whoever comes first
                cur.execute("SELECT pg_advisory_lock(%s)", [_SCHEMA_KEY])
                try:
                    cur.execute(SCHEMA)
                finally:
                    cur.execute("SELECT pg_advisory_unlock(%s)", [_SCHEMA_KEY])
            self._conn = conn
            self.held.clear()  # a new session holds nothing
        return self._conn

    def execute(self, sql: str, params: Any) -> list[tuple]:
        """Run ``sql`` (several statements run as one transaction); the rows of the last one."""
        with self._lock:
            conn = self._connection()
            with conn.cursor() as cur:
                try:
                    cur.execute(sql, params)
                except (psycopg2.OperationalError, psycopg2.InterfaceError):
                    with contextlib.suppress(psycopg2.Error):
                        conn.close()
                    raise
                return cur.fetchall() if cur.description else []

    def try_hold(self, key: int) -> bool:
        """Take session advisory lock ``key`` unless anyone, this process included, holds it."""
        with self._lock:
            if key in self.held:
                return False
            conn = self._connection()
            with conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
                granted = bool(cur.fetchone()[0])
            if granted:
                self.held.add(key)
            return granted

    def release(self, key: int) -> None:
        with self._lock:
            if key not in self.held:
                return
            self.held.discard(key)
            if self._conn is not None and not self._conn.closed:
                with self._conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", [key])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and not self._conn.closed:
                self._conn.close()
            self._conn = None
            self.held.clear()


def process_session(url: str) -> ProcessSession:
    """This process's session for ``url`` (a forked child gets its own)."""
    key = (url, os.getpid())
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            for (other_url, pid), inherited in list(_sessions.items()):
                if pid != os.getpid():
                    _inherited.append(inherited)
                    del _sessions[(other_url, pid)]
            session = _sessions[key] = ProcessSession(url)
        return session


def close_process_sessions() -> None:
    """End this process's coordination sessions (tests; a process done with QBO)."""
    with _sessions_lock:
        mine = [s for (_, pid), s in _sessions.items() if pid == os.getpid()]
        _sessions.clear()
    for session in mine:
        session.close()
