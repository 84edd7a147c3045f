"""The locks of one company (``sync``, ``full``, ``write``), from the configured backend.

Without configuration a company lock is a ``flock`` file in the company's shard (``locking.FileLock``);
with ``SMARTSYNC_COORDINATION=postgresql://...`` it is a session advisory lock named
``<home namespace>/<realm>/<lock>``, which excludes holders on every host that shares the home.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from smartsync_pipeline.coordination.advisory_lock import AdvisoryLock
from smartsync_pipeline.coordination.lock_journal import LockJournal
from smartsync_pipeline.coordination.settings import coordination_url, home_namespace
from smartsync_pipeline.home import RealmHome
from smartsync_pipeline.locking import FileLock


class ExclusiveLock(Protocol):
    what: str

    def exclusive(self, timeout: float | None = 600.0): ...

    def is_held(self) -> bool: ...


@dataclass
class JournaledLock:
    """A company lock whose holds are written to the lock journal (``lock_journal.py``)."""

    inner: ExclusiveLock
    label: str
    journal: LockJournal

    @property
    def what(self) -> str:
        return self.inner.what

    @property
    def path(self):  # the file backend's path, for callers that report it
        return getattr(self.inner, "path", None)

    @contextmanager
    def exclusive(self, timeout: float | None = 600.0) -> Iterator[float]:
        with self.inner.exclusive(timeout) as waited, self.journal.held(self.label):
            yield waited

    def is_held(self) -> bool:
        return self.inner.is_held()

    def confirm(self) -> None:
        confirm_held(self.inner)


def confirm_held(lock: object) -> None:
    """Before a commit: raise ``LockLost`` if ``lock`` (held) was lost. A file lock cannot be lost while
    its process lives; an advisory lock can, when the database gave up on the holder's session."""
    confirm = getattr(lock, "confirm", None)
    if confirm is not None:
        confirm()


def cross_host_lock(shard: RealmHome, name: str, what: str) -> AdvisoryLock | None:
    """Company ``shard.realm_id``'s lock ``name`` in PostgreSQL when coordination is configured, else None:
    for a lock that already has its own file lock on one machine (the token refresh lock), taken in
    addition to it so hosts exclude each other too."""
    url = coordination_url()
    if url is None:
        return None
    return AdvisoryLock(url, f"{home_namespace(shard.home)}/{shard.realm_id}/{name}", what=what)


def company_lock(shard: RealmHome, name: str, what: str) -> ExclusiveLock:
    """Company ``shard.realm_id``'s lock ``name`` (``sync``, ``full`` or ``write``)."""
    url = coordination_url()
    lock: ExclusiveLock
    if url is None:
        lock = FileLock(shard.locks_dir / f"{name}.lock", what=what)
    else:
        lock = AdvisoryLock(url, f"{home_namespace(shard.home)}/{shard.realm_id}/{name}", what=what)
    journal = LockJournal.from_env()
    return lock if journal is None else JournaledLock(lock, f"{shard.realm_id}/{name}", journal)
