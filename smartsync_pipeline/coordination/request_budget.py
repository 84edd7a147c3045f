"""QBO's request budget per company (500/min, 10 concurrent), shared by every host through PostgreSQL.

The same sliding window and concurrency slots as ``qbo/rate_limit.py``, kept in the coordination
database instead of files, so workers on several hosts draw from one budget:

- the window is a table of send times per (home namespace, realm), read and trimmed under a
  transaction-scoped advisory lock; times come from the database's clock (``clock_timestamp()``), so
  hosts whose clocks disagree still count one window;
- a "blocked until" row per realm records QBO's Retry-After for everyone;
- a concurrency slot is a session advisory lock ``<namespace>/<realm>/slot<i>`` held on the process's
  one coordination session (``process_session.py``) for the duration of the request, released by the
  server if the process or host dies.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from smartsync_pipeline.coordination.keys import advisory_key
from smartsync_pipeline.coordination.process_session import process_session

_log = logging.getLogger("smartsync.coordination.request_budget")


class WaitTooLong(Exception):
    """The budget asks the caller to wait longer than it allows (``slot(max_wait=...)``); ``wait`` is
    the wait that was refused, in seconds. One class for both limiters (``qbo.rate_limit`` re-exports it),
    so the client catches one thing whichever limiter a process uses."""

    def __init__(self, wait: float, blocked: bool) -> None:
        self.wait = wait
        self.blocked = blocked  # QBO's Retry-After holds everyone back (else: the window is full)
        super().__init__(f"the request budget asks for a wait of {wait:.1f} s")


@dataclass(frozen=True)
class SlotTicket:
    """What one ``slot()`` cost: seconds spent waiting for a concurrency slot and for the window (both
    limiters return it)."""

    waited_for_slot: float
    waited_for_window: float

    @property
    def waited(self) -> float:
        return self.waited_for_slot + self.waited_for_window


class SharedRateLimiter:
    """Drop-in for ``RealmRateLimiter`` (``slot()``, ``block_for``, ``in_window``, ``close``)."""

    def __init__(
        self,
        url: str,
        namespace: str,
        realm_id: str,
        *,
        per_window: int = 500,
        window_seconds: float = 60.0,
        max_concurrent: int = 10,
        guard_seconds: float = 0.2,
    ) -> None:
        if per_window < 1 or window_seconds <= 0 or max_concurrent < 1 or guard_seconds < 0:
            raise ValueError("per_window, window_seconds and max_concurrent must be positive")
        self._url = url
        self.namespace = namespace
        self.realm_id = realm_id
        self.per_window = per_window
        self.window_seconds = float(window_seconds)
        self.max_concurrent = max_concurrent
        self.guard_seconds = float(guard_seconds)
        self._window_key = advisory_key(f"{namespace}/{realm_id}/window")
        self._slot_keys = [advisory_key(f"{namespace}/{realm_id}/slot{i}") for i in range(max_concurrent)]
        self._url = url
        self._slots = threading.Condition()  # wakes this limiter's waiters when one of its threads frees a slot
        self._stats_lock = threading.Lock()
        self.wait_seconds = 0.0

    def __repr__(self) -> str:
        return (
            f"SharedRateLimiter(realm_id={self.realm_id!r}, per_window={self.per_window}, "
            f"window_seconds={self.window_seconds}, max_concurrent={self.max_concurrent})"
        )

    def _execute(self, sql: str, params: Any) -> list[tuple]:
        return process_session(self._url).execute(sql, params)

    # -- the window -----------------------------------------------------------------------------
    def _try_record(self) -> tuple[float, bool]:
        """Record a send now if the window allows it (0), else the seconds to wait and whether they are a
        Retry-After block (else the window is full)."""
        span = self.window_seconds + self.guard_seconds
        rows = self._execute(
            """
            SELECT pg_advisory_xact_lock(%(key)s);
            DELETE FROM smartsync_qbo_requests WHERE namespace = %(ns)s AND realm_id = %(realm)s
                AND sent_at <= clock_timestamp() - make_interval(secs => %(span)s);
            WITH now AS (SELECT clock_timestamp() AS t),
            blocked AS (SELECT extract(epoch FROM blocked_until - (SELECT t FROM now)) AS wait
                        FROM smartsync_qbo_blocks WHERE namespace = %(ns)s AND realm_id = %(realm)s
                        AND blocked_until > (SELECT t FROM now)),
            recent AS (SELECT sent_at FROM smartsync_qbo_requests WHERE namespace = %(ns)s
                       AND realm_id = %(realm)s ORDER BY sent_at),
            verdict AS (SELECT
                (SELECT wait FROM blocked) AS blocked_wait,
                (SELECT count(*) FROM recent) AS used,
                (SELECT extract(epoch FROM sent_at + make_interval(secs => %(span)s) - (SELECT t FROM now))
                 FROM recent OFFSET greatest((SELECT count(*) FROM recent) - %(limit)s, 0) LIMIT 1) AS window_wait),
            recorded AS (INSERT INTO smartsync_qbo_requests (namespace, realm_id, sent_at)
                SELECT %(ns)s, %(realm)s, (SELECT t FROM now) FROM verdict
                WHERE blocked_wait IS NULL AND used < %(limit)s RETURNING 1)
            SELECT blocked_wait, used, window_wait, (SELECT count(*) FROM recorded) FROM verdict
            """,
            {
                "key": self._window_key,
                "ns": self.namespace,
                "realm": self.realm_id,
                "span": span,
                "limit": self.per_window,
            },
        )
        blocked_wait, _used, window_wait, recorded = rows[0]
        if recorded:
            return 0.0, False
        if blocked_wait is not None:
            return max(float(blocked_wait), 0.001), True
        return max(float(window_wait or 0.0), 0.001), False

    def _wait_for_window(self, max_wait: float | None = None) -> float:
        waited = 0.0
        while True:
            wait, blocked = self._try_record()
            if wait <= 0:
                return waited
            if blocked and max_wait is not None and waited + wait > max_wait:
                raise WaitTooLong(wait, blocked)  # never sleep out a 429 block past the caller's bound
            time.sleep(wait)
            waited += wait

    def block_for(self, seconds: float) -> None:
        """QBO said "retry after ``seconds``": hold back every caller on every host until then."""
        if seconds <= 0:
            return
        self._execute(
            "INSERT INTO smartsync_qbo_blocks AS b (namespace, realm_id, blocked_until) "
            "VALUES (%s, %s, clock_timestamp() + make_interval(secs => %s)) "
            "ON CONFLICT (namespace, realm_id) DO UPDATE SET "
            "blocked_until = greatest(b.blocked_until, EXCLUDED.blocked_until)",
            [self.namespace, self.realm_id, float(seconds)],
        )

    def in_window(self) -> int:
        """Requests recorded in the current window (all hosts)."""
        rows = self._execute(
            "SELECT count(*) FROM smartsync_qbo_requests WHERE namespace = %s AND realm_id = %s "
            "AND sent_at > clock_timestamp() - make_interval(secs => %s)",
            [self.namespace, self.realm_id, self.window_seconds + self.guard_seconds],
        )
        return int(rows[0][0])

    # -- concurrency slots ----------------------------------------------------------------------
    def _try_slot(self, index: int) -> bool:
        return process_session(self._url).try_hold(self._slot_keys[index])

    def _acquire_slot(self) -> tuple[int, float]:
        started = time.monotonic()
        pause = 0.002
        while True:
            with self._slots:
                candidates = list(range(self.max_concurrent))
                random.shuffle(candidates)
                for i in candidates:
                    if self._try_slot(i):
                        return i, time.monotonic() - started
                self._slots.wait(timeout=pause)  # woken by a thread of ours; polls for other hosts
            pause = min(pause * 2, 0.05)

    def _release_slot(self, index: int) -> None:
        with self._slots:
            try:
                process_session(self._url).release(self._slot_keys[index])
            finally:
                self._slots.notify()

    @contextlib.contextmanager
    def slot(self, max_wait: float | None = None) -> Iterator[SlotTicket]:
        """Wait for a concurrency slot and room in the window, record the send, and hold the slot for
        the duration of the ``with`` block (the request). With ``max_wait``, a Retry-After block that
        would keep the caller waiting longer raises ``WaitTooLong`` at once instead of sleeping."""
        index, slot_wait = self._acquire_slot()
        try:
            window_wait = self._wait_for_window(None if max_wait is None else max(0.0, max_wait - slot_wait))
            ticket = SlotTicket(slot_wait, window_wait)
            with self._stats_lock:
                self.wait_seconds += ticket.waited
            if ticket.waited > 1.0:
                _log.debug("realm %s: waited %.2f s for the request budget", self.realm_id, ticket.waited)
            yield ticket
        finally:
            self._release_slot(index)

    def close(self) -> None:
        """Nothing of its own to close: the process's session (``process_session.py``) outlives limiters;
        slots are given back when each request ends."""
