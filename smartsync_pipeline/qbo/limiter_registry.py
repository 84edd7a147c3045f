"""One rate limiter per company per process: every QBOClient of a realm shares it.

A limiter holds open descriptors (its window log and concurrency slots), so a limiter per client
leaked them and split the process's view of the budget. The registry keeps one per (SMARTSYNC_HOME,
realm) for the life of the process; clients borrow it and never close it (see ARCHITECTURE.md).
"""

from __future__ import annotations

import threading

from smartsync_pipeline.coordination.settings import coordination_url
from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.rate_limit import RealmRateLimiter, realm_limiter

_lock = threading.Lock()
_limiters: dict[tuple[str, str, str], RealmRateLimiter] = {}


def shared_limiter(realm_id: str, home: Home | None = None) -> RealmRateLimiter:
    """The process's limiter of ``realm_id`` in ``home`` (default: SMARTSYNC_HOME), created on first use
    by ``realm_limiter`` (the files of this machine, or the budget shared through PostgreSQL)."""
    home = home if home is not None else Home.from_env()
    key = (str(home.locks_dir.resolve()), realm_id, coordination_url() or "")
    with _lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = realm_limiter(realm_id, home=home)
        return limiter


def shared_limiter_count() -> int:
    """How many limiters this process holds (one per company it talked to)."""
    with _lock:
        return len(_limiters)


def close_shared_limiters() -> None:
    """Close every shared limiter (tests, and a process that is done with QBO)."""
    with _lock:
        limiters = list(_limiters.values())
        _limiters.clear()
    for limiter in limiters:
        limiter.close()


__all__ = ["close_shared_limiters", "shared_limiter", "shared_limiter_count"]
