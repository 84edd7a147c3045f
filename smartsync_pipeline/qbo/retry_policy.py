"""When a failed QBO call is worth repeating, and how long to wait first.

Throttling (429 / 3001) and server errors (5xx) are retried with exponential backoff and full jitter
(a random wait between 0 and ``base * 2**(attempt-1)``, capped), so many workers spread out instead of
retrying in lockstep. A ``Retry-After`` from the server wins over the backoff. Throttling is waited out
by time, as QBO advises (wait up to 60 s): a 429 is retried (beyond ``max_attempts``) until the call's
``throttle_budget`` deadline, which no wait passes: when the next wait would end after it, the call
stops at once (QBOClient keeps the deadline). Transport failures are retried only when repeating cannot
duplicate an effect: reads, or writes that never left the machine (connect timeout).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from smartsync_pipeline.qbo.errors import QBOError, ServerError, ThrottledError, TransportError


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: up to ``max_attempts`` failed attempts other than throttling; 429s are bounded
    by time alone (the caller's ``throttle_budget`` deadline; a 429 does not use up the 5xx budget),
    waits from ``backoff_base`` up to ``backoff_cap`` seconds; a ``Retry-After`` longer than
    ``max_retry_after`` is not waited out."""

    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_retry_after: float = 60.0
    throttle_budget: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.backoff_base < 0 or self.backoff_cap < 0 or self.throttle_budget < 0:
            raise ValueError("max_attempts must be >= 1 and backoff times and the throttle budget >= 0")

    def allows_another(self, error: QBOError, *, failures: int, throttles: int) -> bool:
        """Whether one more attempt may follow this retryable failure. ``failures`` counts the failed
        attempts other than throttling so far (including this one). A 429 always may, as far as counts
        go: the time budget decides (before, the attempt count could extend the budget: with
        ``Retry-After: 60`` one call waited ~300 s)."""
        if isinstance(error, ThrottledError):
            return self.throttle_budget > 0
        return failures < self.max_attempts

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full-jitter wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** max(attempt - 1, 0))
        return (rng or random).uniform(0.0, ceiling)

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before the next attempt, or None when the server asks for longer than we
        are willing to block. A Retry-After gets a small random extra so waiters do not return together."""
        if retry_after is None:
            return self.backoff(attempt, rng)
        if retry_after > self.max_retry_after:
            return None
        return retry_after + (rng or random).uniform(0.0, min(self.backoff_base, 0.25))

    @staticmethod
    def is_retryable(error: QBOError, *, idempotent: bool, sent: bool = True) -> bool:
        """Throttling and 5xx always (writes carry a ``requestid`` so QBO de-duplicates them);
        transport errors only for idempotent requests or when nothing was sent."""
        if isinstance(error, ThrottledError | ServerError):
            return True
        if isinstance(error, TransportError):
            return idempotent or not sent
        return False


__all__ = ["RetryPolicy"]
