"""The sandbox clock: every sandbox time (MetaData, token expiry, the 30-day CDC rule) comes from here.

Real time keeps passing (monotonic elapsed since start) so tokens and freshness behave naturally, while
tests can jump ahead (``advance``), jump to a date (``set``) or stop time (``freeze``) without sleeping.
"""

from __future__ import annotations

import threading
import time


class SandboxClock:
    """Seconds since the Unix epoch, as the sandbox sees them: ``start + monotonic elapsed + skew``."""

    def __init__(self, start: float | None = None, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._wall0 = time.time() if start is None else float(start)
        self._mono0 = time.monotonic()
        self._skew = 0.0
        self._frozen_at: float | None = None
        if frozen:
            self._frozen_at = self._wall0

    def now(self) -> float:
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> float:
        if self._frozen_at is not None:
            return self._frozen_at
        return self._wall0 + (time.monotonic() - self._mono0) + self._skew

    def advance(self, seconds: float) -> float:
        """Move the clock forward (or back, for negative values) and return the new time."""
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._skew += seconds
            return self._now_locked()

    def set(self, epoch: float) -> float:
        """Jump to ``epoch``; real time keeps passing from there unless frozen."""
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at = float(epoch)
            else:
                self._skew += float(epoch) - self._now_locked()
            return self._now_locked()

    def freeze(self, frozen: bool) -> float:
        """Stop (or restart) the passing of real time at the current instant."""
        with self._lock:
            current = self._now_locked()
            if frozen and self._frozen_at is None:
                self._frozen_at = current
            elif not frozen and self._frozen_at is not None:
                self._frozen_at = None
                self._skew += current - self._now_locked()
            return current

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def state(self) -> dict[str, float | bool]:
        """What a restarted sandbox needs to continue this clock: the offset from real time."""
        with self._lock:
            now = self._now_locked()
            return {"offset_from_real": now - time.time(), "frozen": self._frozen_at is not None, "now": now}

    def restore(self, state: dict) -> None:
        """Continue a clock saved by ``state()`` (the offset from real time survives a restart)."""
        with self._lock:
            self._frozen_at = None
            self._skew = 0.0
            target = time.time() + float(state.get("offset_from_real", 0.0))
            self._skew = target - self._now_locked()
            if state.get("frozen"):
                self._frozen_at = float(state.get("now", target))
