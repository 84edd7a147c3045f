"""Per-key rate limits, announced with the IETF ``RateLimit-Policy`` / ``RateLimit`` headers
(draft-ietf-httpapi-ratelimit-headers): a fixed window of 60 s per key, quota from the key's record.
Over the quota: 429 with ``Retry-After``. Counted in this process, in memory."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_SECONDS = 60
POLICY = "per-key"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    quota: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Policy": f'"{POLICY}";q={self.quota};w={WINDOW_SECONDS}',
            "RateLimit": f'"{POLICY}";r={self.remaining};t={self.reset_seconds}',
        }


class KeyRateLimiter:
    """Counts requests per key in fixed windows. Idle keys are forgotten at each new window."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}  # key id -> (window number, requests)

    def take(self, key_id: str, quota: int) -> Decision:
        now = self._clock()
        window = int(now // WINDOW_SECONDS)
        reset = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
        with self._lock:
            seen_window, used = self._counts.get(key_id, (window, 0))
            if seen_window != window:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
                used = 0
            if used >= quota:
                return Decision(False, quota, 0, reset)
            self._counts[key_id] = (window, used + 1)
            return Decision(True, quota, quota - used - 1, reset)
