"""Coordination between the processes and hosts that sync one SMARTSYNC_HOME.

Two things must hold across every worker: one writer per company at a time, and QBO's request
budget per company (500 requests/min, 10 concurrent). On one machine ``flock`` gives both
(``locking.py``, ``qbo/rate_limit.py``); with ``SMARTSYNC_COORDINATION=postgresql://...`` the same
promises come from PostgreSQL, so workers on several hosts sharing the storage path share them too.
ARCHITECTURE.md ("Running on several machines") says why PostgreSQL and how a dead host lets go.
"""

from smartsync_pipeline.coordination.advisory_lock import AdvisoryLock, LockLost
from smartsync_pipeline.coordination.company_locks import company_lock, confirm_held, cross_host_lock
from smartsync_pipeline.coordination.lock_journal import LockJournal
from smartsync_pipeline.coordination.request_budget import SharedRateLimiter
from smartsync_pipeline.coordination.settings import COORDINATION_ENV, coordination_url, home_namespace

__all__ = [
    "COORDINATION_ENV",
    "AdvisoryLock",
    "LockJournal",
    "LockLost",
    "SharedRateLimiter",
    "company_lock",
    "confirm_held",
    "coordination_url",
    "cross_host_lock",
    "home_namespace",
]
