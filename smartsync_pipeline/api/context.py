"""Everything one server process shares between requests: settings, the SmartReader, the blocking
pool, keys and rate limits, and what went wrong lately (for the sync status)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from smartsync_pipeline.api.keys import KeyStore
from smartsync_pipeline.api.pool import BlockingPool
from smartsync_pipeline.api.problems import ProblemError, business_not_found, problem_for
from smartsync_pipeline.api.rate_limit import KeyRateLimiter
from smartsync_pipeline.api.settings import ApiSettings
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.qbo.secrets import redact

if TYPE_CHECKING:
    from smartsync_pipeline.smart.reader import SmartReader

T = TypeVar("T")
log = logging.getLogger("smartsync.api")


@dataclass
class ApiContext:
    settings: ApiSettings
    _reader: SmartReader | None = None
    pool: BlockingPool = field(init=False)
    keys: KeyStore = field(init=False)
    limiter: KeyRateLimiter = field(default_factory=KeyRateLimiter)
    _realms: tuple[int, frozenset[str]] = (-1, frozenset())
    _errors: dict[tuple[str, str], tuple[datetime, str]] = field(default_factory=dict)
    _errors_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        home = self.settings.home
        self._reader_lock = threading.Lock()
        self.pool = BlockingPool(self.settings.workers)
        self.keys = KeyStore(home)

    @property
    def reader(self) -> SmartReader:
        """The one SmartReader of this process (created on first use: a webhook-only server never
        pays for the read path's imports)."""
        if self._reader is None:
            with self._reader_lock:
                if self._reader is None:
                    from smartsync_pipeline.smart.reader import SmartReader

                    self._reader = SmartReader(
                        smartsync_home=str(self.settings.home.root), **self.settings.reader_options
                    )
        return self._reader

    # -- businesses ------------------------------------------------------------------------------

    def connected(self) -> frozenset[str]:
        """Connected realm ids (re-listed only when the companies folder changed)."""
        folder = self.settings.home.companies_dir
        try:
            mtime = folder.stat().st_mtime_ns
        except FileNotFoundError:
            return frozenset()
        if mtime != self._realms[0]:
            self._realms = (mtime, frozenset(CompanyStore(self.settings.home).realms()))
        return self._realms[1]

    def require_business(self, business_id: str) -> None:
        if business_id not in self.connected():
            raise business_not_found(business_id)

    # -- running reads ---------------------------------------------------------------------------

    async def run(self, business_id: str | None, fn: Callable[..., T], *args: Any) -> T:
        """``fn`` in the blocking pool; failures become problems (and are remembered per business)."""
        try:
            return await self.pool.run(fn, *args)
        except ProblemError:
            raise
        except Exception as exc:
            problem = problem_for(exc, business_id)
            if business_id is not None and problem.status in (409, 503):
                self.note_error(business_id, "*", problem.detail)
            if problem.slug == "internal-error":
                log.error("unexpected %s: %s", type(exc).__name__, redact(" ".join(str(exc).split())))
            raise problem from None

    def note_error(self, business_id: str, entity: str, detail: str) -> None:
        with self._errors_lock:
            self._errors[(business_id, entity)] = (datetime.now(UTC), redact(detail)[:500])

    def note_provenance(self, business_id: str, provenances: Sequence[Any]) -> None:
        for p in provenances:
            if p.stale and "stale-if-error" in p.reason:
                self.note_error(business_id, p.entity, p.reason)

    def last_error(self, business_id: str, entity: str) -> tuple[datetime, str] | None:
        with self._errors_lock:
            found = [e for e in (self._errors.get((business_id, entity)), self._errors.get((business_id, "*"))) if e]
        return max(found) if found else None

    # -- the data behind an answer, for validators -----------------------------------------------

    def data_identity(self, business_id: str, provenances: Sequence[Any]) -> str:
        """What the answer was computed from: the business's own snapshot's content (schema version
        and data version) when every read used its current snapshot, else the generations used."""
        generations = sorted({p.snapshot_generation for p in provenances if p.snapshot_generation is not None})
        info = self.reader.snapshots().current(business_id)
        if info is not None and generations == [info.generation] and info.content_key:
            return info.content_key
        return "g" + ",".join(map(str, generations))

    def close(self) -> None:
        self.pool.shutdown()
        if self._reader is not None:
            self._reader.snapshots().close()
