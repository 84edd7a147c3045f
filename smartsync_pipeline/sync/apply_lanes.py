"""Apply lanes: a shadow's entities applied on several DuckDB cursors at once.

A full listing is applied to a private copy of the mirror (the shadow) that replaces the mirror only
when everything succeeded, so its entities need not share one transaction. DuckDB runs each statement
of our single-threaded writer on the calling thread, and its own intra-statement threads only
competed here (ARCHITECTURE.md, "Backfill"); two cursors applying two entities at once use a core
the backfill's tail otherwise leaves idle. Each entity stays in one lane, its units in order (a later
unit must see the rows of an earlier one); the change log stays one gap-free chain because
``ChangeLogAppender`` hands out id ranges and chains them in id order.

Lanes also keep the time every lane was waiting for pages (nothing to apply yet), which the sync
report charges to ``fetch`` instead of ``apply``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from typing import Generic, TypeVar

import duckdb

T = TypeVar("T")

MAX_APPLY_LANES = 4


@dataclass
class LaneTimes:
    """Where the lanes' wall time went."""

    wall: float = 0.0
    all_waiting: float = 0.0  # every lane was waiting for pages at once
    busy_lane_seconds: float = 0.0  # summed over lanes, waits excluded

    @property
    def busy_wall(self) -> float:
        return max(0.0, self.wall - self.all_waiting)


class ApplyLanes(Generic[T]):
    """Run ``work(cursor, job)`` on ``lanes`` cursors of ``con`` for every job ``take`` hands out.

    ``work`` owns its transactions on the cursor it is given. The first error stops the lanes (no new
    jobs, running statements interrupted, ``on_error`` unblocks whatever they wait on), every lane rolls
    back what it had open, and ``run`` raises that error."""

    def __init__(self, con: duckdb.DuckDBPyConnection, lanes: int, on_error: Callable[[BaseException], None]) -> None:
        if not 1 <= lanes <= MAX_APPLY_LANES:
            raise ValueError(f"apply lanes must be between 1 and {MAX_APPLY_LANES}, not {lanes}")
        self.con, self.lanes, self.on_error = con, lanes, on_error
        self.times = LaneTimes()
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._waiting = 0  # lanes inside waiting()
        self._running = lanes  # lanes that have not run out of jobs
        self._all_waiting_since: float | None = None
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._waited = threading.local()  # per lane: seconds spent in waiting()

    def run(
        self,
        take: Callable[[ApplyLanes[T]], T | None],
        work: Callable[[duckdb.DuckDBPyConnection, T, ApplyLanes[T]], None],
    ) -> None:
        """``take(lanes)`` hands each lane its next job (None: no more), safely from several lanes at
        once; it may wait (inside ``lanes.waiting()`` when it waits for pages)."""
        started = time.perf_counter()
        cursors = self._cursors = [self._cursor() for _ in range(self.lanes)]
        threads = [
            threading.Thread(target=self._lane, args=(cursor, take, work), name=f"smartsync-apply_{n}", daemon=True)
            for n, cursor in enumerate(cursors)
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        except BaseException as exc:  # Ctrl-C in the caller: stop the lanes before the connection closes
            self._fail(exc)
            for thread in threads:
                thread.join()
            raise
        finally:
            for cursor in cursors:
                cursor.close()
            self.times.wall = time.perf_counter() - started
        if self._error is not None:
            raise self._error

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor working where the connection works (a new cursor starts in the instance's default
        database, not in the one the connection USEs)."""
        database = self.con.execute("SELECT current_database()").fetchone()[0]
        cursor = self.con.cursor()
        cursor.execute(f'USE "{database}"')
        return cursor

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Mark the calling lane as waiting for pages while the block runs."""
        began = time.perf_counter()
        with self._lock:
            self._waiting += 1
            self._note_all_waiting()
        try:
            yield
        finally:
            self._waited.seconds = getattr(self._waited, "seconds", 0.0) + time.perf_counter() - began
            with self._lock:
                if self._all_waiting_since is not None:
                    self.times.all_waiting += time.perf_counter() - self._all_waiting_since
                    self._all_waiting_since = None
                self._waiting -= 1

    def _lane(
        self,
        cursor: duckdb.DuckDBPyConnection,
        take: Callable[[ApplyLanes[T]], T | None],
        work: Callable[[duckdb.DuckDBPyConnection, T, ApplyLanes[T]], None],
    ) -> None:
        began = time.perf_counter()
        self._waited.seconds = 0.0
        try:
            while self._error is None:
                job = take(self)
                if job is None or self._error is not None:
                    return
                work(cursor, job, self)
        except BaseException as exc:
            with suppress(duckdb.Error):  # an open unit is discarded with the shadow anyway
                cursor.execute("ROLLBACK")
            self._fail(exc)
        finally:
            busy = time.perf_counter() - began - self._waited.seconds
            with self._lock:
                self.times.busy_lane_seconds += busy
                self._running -= 1
                self._note_all_waiting()

    def _note_all_waiting(self) -> None:
        """(Under the lock) every lane still running waits: the time until one stops is all_waiting."""
        if self._waiting and self._waiting == self._running and self._all_waiting_since is None:
            self._all_waiting_since = time.perf_counter()

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            first = self._error is None
            if first:
                self._error = exc
        if first:
            for cursor in self._cursors:
                with suppress(duckdb.Error):
                    cursor.interrupt()  # a lane's long statement stops now, not when it is done
            self.on_error(exc)


class LanePhases:
    """What a lane's work calls where a sequential apply switches its phase clock: "fetch" marks the
    lane as waiting for pages until the next switch."""

    def __init__(self, lanes: ApplyLanes) -> None:
        self.lanes = lanes
        self._wait = ExitStack()

    def switch(self, phase: str) -> None:
        self._wait.close()
        if phase == "fetch":
            self._wait.enter_context(self.lanes.waiting())
