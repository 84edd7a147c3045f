"""One request budget per QBO company, shared by every thread and process of a SMARTSYNC_HOME.

QBO allows about 500 requests per minute and 10 concurrent requests per realm. A fixed-window budget
makes every worker sleep until the window edge and then stampede; here the window slides: a caller
waits only until the oldest request in the last ``window_seconds`` ages out. Dagster runs, the
reader and CLI processes all draw from the same budget through two kinds of files under
``home.locks_dir``:

- ``rate-<realm>.log``: the send times of the requests in the window (plus a "blocked until" time set
  when QBO answered 429 with Retry-After), read and rewritten under an exclusive ``flock``;
- ``rate-<realm>.slot<i>``: one file per concurrency slot; holding an ``flock`` on one is holding the
  slot, and the kernel releases it if the process dies.

A send time is recorded when the slot is granted, just before the request leaves, so the server
always sees it a little later than recorded; ``guard_seconds`` is added to the window to absorb that
delay (and clock granularity), so a client configured with the server's limits never gets a 429.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from smartsync_pipeline.coordination.request_budget import SlotTicket, WaitTooLong
from smartsync_pipeline.home import Home

_log = logging.getLogger("smartsync.qbo.rate_limit")
_DOUBLE = struct.Struct("<d")
_FUTURE_SLACK = 5.0  # send times further in the future than this are corrupt (clock jumped back)


class RealmRateLimiter:
    """Sliding-window log plus concurrency slots for one realm. Use ``with limiter.slot(): ...``."""

    def __init__(
        self,
        realm_id: str,
        *,
        home: Home | None = None,
        per_window: int = 500,
        window_seconds: float = 60.0,
        max_concurrent: int = 10,
        guard_seconds: float = 0.2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if per_window < 1 or window_seconds <= 0 or max_concurrent < 1 or guard_seconds < 0:
            raise ValueError("per_window, window_seconds and max_concurrent must be positive")
        self.realm_id = realm_id
        self.per_window = per_window
        self.window_seconds = float(window_seconds)
        self.max_concurrent = max_concurrent
        self.guard_seconds = float(guard_seconds)
        self._clock = clock
        folder = (home if home is not None else Home.from_env()).locks_dir
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in realm_id)
        self.log_path = folder / f"rate-{safe}.log"
        self._slot_paths = [folder / f"rate-{safe}.slot{i}" for i in range(max_concurrent)]
        self._file_lock = threading.Lock()  # flock does not exclude threads sharing one descriptor
        self._slots = threading.Condition()
        self._slot_busy = [False] * max_concurrent
        self._fds: dict[Path, int] = {}
        self._pid = os.getpid()
        self._stats_lock = threading.Lock()
        self.wait_seconds = 0.0

    def __repr__(self) -> str:
        return (
            f"RealmRateLimiter(realm_id={self.realm_id!r}, per_window={self.per_window}, "
            f"window_seconds={self.window_seconds}, max_concurrent={self.max_concurrent})"
        )

    # -- file plumbing --------------------------------------------------------------------------
    def _fd(self, path: Path) -> int:
        if os.getpid() != self._pid:  # forked: inherited descriptors would share our locks
            self._fds, self._pid = {}, os.getpid()
            self._slot_busy = [False] * self.max_concurrent
        fd = self._fds.get(path)
        if fd is None:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            self._fds[path] = fd
        return fd

    @contextlib.contextmanager
    def _log_locked(self) -> Iterator[int]:
        with self._file_lock:
            fd = self._fd(self.log_path)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield fd
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    @staticmethod
    def _read(fd: int) -> tuple[float, list[float]]:
        raw = os.pread(fd, 1 << 20, 0)
        count = len(raw) // _DOUBLE.size
        values = [v for (v,) in _DOUBLE.iter_unpack(raw[: count * _DOUBLE.size])]
        if not values:
            return 0.0, []
        return values[0], values[1:]

    @staticmethod
    def _write(fd: int, blocked_until: float, times: list[float]) -> None:
        data = struct.pack(f"<{len(times) + 1}d", blocked_until, *times)
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))

    # -- the window -----------------------------------------------------------------------------
    def _try_record(self) -> float:
        """Record a send now if the window allows it (returns 0), else return seconds to wait."""
        return self._try_record_why()[0]

    def _try_record_why(self) -> tuple[float, bool]:
        """``_try_record``, plus whether the wait is a block set after a 429 (else the window is full)."""
        with self._log_locked() as fd:
            blocked_until, times = self._read(fd)
            now = self._clock()
            horizon = now - self.window_seconds - self.guard_seconds
            times = sorted(t for t in times if horizon < t <= now + _FUTURE_SLACK)
            if blocked_until > now + 3600 * 24:
                blocked_until = 0.0
            blocked = blocked_until > now
            if blocked:
                wait = blocked_until - now
            elif len(times) < self.per_window:
                times.append(now)
                self._write(fd, blocked_until, times)
                return 0.0, False
            else:
                wait = times[len(times) - self.per_window] - horizon
            self._write(fd, blocked_until, times)
            return max(wait, 0.001), blocked

    def _wait_for_window(self, max_wait: float | None = None) -> float:
        waited = 0.0
        while True:
            wait, blocked = self._try_record_why()
            if wait <= 0:
                return waited
            if blocked and max_wait is not None and waited + wait > max_wait:
                raise WaitTooLong(wait, blocked)  # never sleep out a 429 block past the caller's bound
            time.sleep(wait)
            waited += wait

    def block_for(self, seconds: float) -> None:
        """QBO said "retry after ``seconds``": hold back every caller sharing this budget until then."""
        if seconds <= 0:
            return
        with self._log_locked() as fd:
            blocked_until, times = self._read(fd)
            self._write(fd, max(blocked_until, self._clock() + seconds), times)

    def in_window(self) -> int:
        """Requests recorded in the current window (all processes)."""
        with self._log_locked() as fd:
            _, times = self._read(fd)
        horizon = self._clock() - self.window_seconds - self.guard_seconds
        return sum(1 for t in times if t > horizon)

    # -- concurrency slots ----------------------------------------------------------------------
    def _acquire_slot(self) -> tuple[int, float]:
        started = time.monotonic()
        pause = 0.002
        while True:
            with self._slots:
                candidates = [i for i, busy in enumerate(self._slot_busy) if not busy]
                random.shuffle(candidates)
                # Slots whose file is already open first: a long-lived process keeps as few open as it uses.
                candidates.sort(key=lambda i: self._slot_paths[i] not in self._fds)
                for i in candidates:
                    fd = self._fd(self._slot_paths[i])
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # another process holds this slot
                    self._slot_busy[i] = True
                    return i, time.monotonic() - started
                # Woken early when a thread of this process frees a slot; polls for other processes.
                self._slots.wait(timeout=pause)
            pause = min(pause * 2, 0.05)

    def _release_slot(self, index: int) -> None:
        with self._slots:
            fcntl.flock(self._fd(self._slot_paths[index]), fcntl.LOCK_UN)
            self._slot_busy[index] = False
            self._slots.notify()

    @contextlib.contextmanager
    def slot(self, max_wait: float | None = None) -> Iterator[SlotTicket]:
        """Wait for a concurrency slot and room in the window, record the send, and hold the slot for
        the duration of the ``with`` block (the request). With ``max_wait``, a 429 block (QBO's Retry-After,
        shared by every caller) that would keep the caller waiting longer raises ``WaitTooLong`` at once
        instead of sleeping; the window's own pacing is always waited out."""
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
        """Close the limiter's files (locks held by this process are released with them)."""
        with self._file_lock, self._slots:
            if os.getpid() == self._pid:
                for fd in self._fds.values():
                    os.close(fd)
            self._fds = {}


def realm_limiter(realm_id: str, *, home: Home | None = None, **limits: float) -> RealmRateLimiter:
    """The limiter for ``realm_id``: these files on one machine, or the budget every host shares through
    PostgreSQL when ``SMARTSYNC_COORDINATION`` names one (``coordination/request_budget.py``)."""
    from smartsync_pipeline.coordination import SharedRateLimiter, coordination_url, home_namespace

    home = home if home is not None else Home.from_env()
    url = coordination_url()
    if url is None:
        return RealmRateLimiter(realm_id, home=home, **limits)  # type: ignore[arg-type]
    return SharedRateLimiter(url, home_namespace(home), realm_id, **limits)  # type: ignore[return-value, arg-type]


__all__ = ["RealmRateLimiter", "SlotTicket", "WaitTooLong", "realm_limiter"]
