"""QBO's per-realm limits: a sliding window of requests and a cap on requests in flight.

A sliding window (not a fixed minute) is what makes a client's own pacing meaningful: the request that
would be the 501st in the last 60 s is refused, and ``Retry-After`` says when the oldest one leaves
the window.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass
class Limits:
    """Shared by all realms; changed at start (CLI) or at run time (control API)."""

    per_window: int = 500
    window_seconds: float = 60.0
    max_concurrent: int = 10


@dataclass(frozen=True)
class Admission:
    admitted: bool
    retry_after: int = 0  # whole seconds until a slot frees (0 when admitted)
    reason: str = ""


class RealmThrottle:
    """Admission control for one realm."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._accepted: deque[float] = deque()
        self._in_flight = 0
        self.max_in_flight_seen = 0

    def try_acquire(self) -> Admission:
        now = time.monotonic()
        with self._lock:
            window = self.limits.window_seconds
            while self._accepted and self._accepted[0] <= now - window:
                self._accepted.popleft()
            if self._in_flight >= self.limits.max_concurrent:
                return Admission(False, 1, "concurrency")
            if len(self._accepted) >= self.limits.per_window:
                wait = self._accepted[0] + window - now
                return Admission(False, max(1, math.ceil(wait)), "window")
            self._accepted.append(now)
            self._in_flight += 1
            self.max_in_flight_seen = max(self.max_in_flight_seen, self._in_flight)
            return Admission(True)

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def reset_stats(self) -> None:
        with self._lock:
            self.max_in_flight_seen = self._in_flight

    def reset_window(self) -> None:
        with self._lock:
            self._accepted.clear()
