"""A named exclusive lock held as a PostgreSQL session advisory lock.

The lock lives as long as the holder's database session: released on exit of the ``with`` block, and
by the server when the holder's connection ends for any reason (process killed, host gone: see
``postgres.py``). Nothing is left to clean up and no lease has to be renewed. A session that released
its lock cleanly is kept for the process's next lock (``lock_sessions.py``). Same face as
``locking.FileLock``: ``exclusive(timeout)`` yields the seconds waited and raises ``LockTimeout``
naming the holder (host and pid) when the bounded wait runs out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import psycopg2.errors

from smartsync_pipeline.coordination.keys import advisory_key, lock_columns
from smartsync_pipeline.coordination.lock_sessions import borrow, give_back
from smartsync_pipeline.coordination.postgres import connect
from smartsync_pipeline.locking import LockTimeout


class LockLost(RuntimeError):
    """The database ended the session holding the lock (the host looked dead to it): another holder
    may already have it, so the holder must not commit what it did under it."""


@dataclass
class AdvisoryLock:
    """Exclusive lock ``name`` (already namespaced) in the database at ``url``."""

    url: str
    name: str
    what: str = ""
    key: int = field(init=False)
    _held: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.key = advisory_key(self.name)

    def __repr__(self) -> str:  # the URL may carry a password
        return f"AdvisoryLock(name={self.name!r})"

    @contextmanager
    def exclusive(self, timeout: float | None = 600.0) -> Iterator[float]:
        """Hold the lock for the ``with`` block; yields the seconds spent waiting for it."""
        start = time.monotonic()
        conn = borrow(self.url)
        holds_nothing = False
        try:
            try:
                acquired = self._acquire(conn, timeout)
            except (psycopg2.OperationalError, psycopg2.InterfaceError):  # a kept session died meanwhile
                with suppress(psycopg2.Error):
                    conn.close()
                conn = connect(self.url)
                acquired = self._acquire(conn, timeout)
            if not acquired:
                holds_nothing = True
                waited = time.monotonic() - start
                raise LockTimeout(
                    f"{self.what or self.name} is still held by another process after {waited:.1f} s"
                    f"{self._describe_holder(conn)}; try again later"
                )
            self._held = conn
            try:
                yield time.monotonic() - start
            finally:
                self._held = None
                with suppress(psycopg2.Error), conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_unlock(%s)", [self.key])
                    holds_nothing = bool(cur.fetchone()[0])
        finally:
            # Kept for the next lock only when it holds nothing; else closed, which ends the session and
            # the lock with it even if the unlock failed.
            give_back(self.url, conn, holds_nothing=holds_nothing)

    def confirm(self) -> None:
        """Raise ``LockLost`` unless the session holding the lock is still alive (and so still holds it):
        called just before a commit, so a host the database gave up on never commits after another host
        took the lock. One round trip on the holding session."""
        conn = self._held
        if conn is None:
            raise LockLost(f"{self.what or self.name} is not held")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            raise LockLost(
                f"{self.what or self.name} was lost: the coordination database ended its session; nothing was committed"
            ) from None

    def _acquire(self, conn, timeout: float | None) -> bool:
        with conn.cursor() as cur:
            if timeout is not None and timeout <= 0:
                cur.execute("SELECT pg_try_advisory_lock(%s)", [self.key])
                return bool(cur.fetchone()[0])
            # lock_timeout bounds the server-side wait (0 would mean "forever" to PostgreSQL).
            millis = 0 if timeout is None else max(1, int(timeout * 1000))
            cur.execute("SELECT set_config('lock_timeout', %s, false)", [f"{millis}ms"])
            try:
                cur.execute("SELECT pg_advisory_lock(%s)", [self.key])
            except psycopg2.errors.LockNotAvailable:
                return False
            cur.execute("SELECT set_config('lock_timeout', '0', false)")
            return True

    def _describe_holder(self, conn) -> str:
        classid, objid = lock_columns(self.key)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s "
                    "AND l.objsubid = 1",
                    [classid, objid],
                )
                names = [row[0] or "another session" for row in cur.fetchall()]
        except psycopg2.Error:
            return ""
        return f" (held by {', '.join(names[:3])})" if names else ""

    def is_held(self) -> bool:
        """True when someone holds the lock right now (a snapshot, for status displays and tests)."""
        try:
            with self.exclusive(timeout=0):
                return False
        except LockTimeout:
            return True
