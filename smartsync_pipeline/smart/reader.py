"""SmartReader: the one place that decides "mirror or QBO?" for every read.

Fresh → answer from the newest published snapshot (DuckDB, read-only, never blocked by a sync).
Stale → an incremental sync of that (entity, realm) through the sync engine (trigger ``on_demand``,
logged in the change log, recorded as a Dagster materialization of that asset partition), then answer
from the new snapshot. Concurrent stale reads of one (entity, realm), in threads or processes, share one
refresh (single flight). When QBO fails, stale data is served only inside an explicit bound and is
always flagged.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from smartsync_pipeline.entities import EntitySpec, entity
from smartsync_pipeline.entities import entity_names as entity_names_registered
from smartsync_pipeline.home import Home
from smartsync_pipeline.locking import FileLock, LockTimeout
from smartsync_pipeline.mirror.snapshots import SnapshotInfo, SnapshotReader
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.qbo.errors import QBOError, ReauthorizationRequired
from smartsync_pipeline.smart.errors import DataUnavailableError, RefreshStillRunning, UnknownCompanyError
from smartsync_pipeline.smart.materialization import DagsterTrail
from smartsync_pipeline.smart.provenance import Provenance, Source
from smartsync_pipeline.smart.rows import fetch_frame
from smartsync_pipeline.sync.engine import SyncEngine
from smartsync_pipeline.sync.report import SyncReport

log = logging.getLogger("smartsync.smart")

MAX_AGE_LIMIT = timedelta(days=3650)
_LOCK_MARGIN = 0.2  # a bounded refresh's lock waits end this long before the read's own bound


@dataclass(frozen=True)
class ReadResult:
    """Rows (a DataFrame with the mirror's typed columns) plus where they came from."""

    rows: pd.DataFrame
    provenance: Provenance


@dataclass(frozen=True, slots=True)
class _Request:
    """One read as asked: its query, and the freshness the caller allowed at the moment they asked."""

    spec: EntitySpec
    realm_id: str
    sql: str
    args: list[Any]
    requested_at: datetime
    limit: timedelta


def _select(spec: EntitySpec, where: str, columns: str, order_by: str) -> str:
    sql = f"SELECT {columns} FROM {spec.table} WHERE realm_id = ? AND NOT is_deleted"
    if where:
        sql += f" AND ({where})"
    if order_by:
        sql += f" ORDER BY {order_by}"
    return sql


def _default_home() -> str:
    return os.environ.get("SMARTSYNC_HOME", ".smartsync")


class SmartReader:
    """Reads business data from the mirror when it is fresh enough, refreshing it from QBO when not.

    A plain object (no Dagster): the definitions wrap it in ``defs/resources/smart_reader.py``. It owns
    what it opens (snapshot connections, the engine, the background refresh threads, the Dagster trail)
    and releases them in ``close()``; one reader per process serves every company and thread.
    """

    def __init__(
        self,
        smartsync_home: str | os.PathLike[str] | None = None,
        *,
        stale_if_error_seconds: float = 6 * 3600.0,
        stale_while_revalidate: bool = False,
        refresh_wait_seconds: float = 30.0,
        refresh_throttle_seconds: float = 15.0,
        stale_answer_after_seconds: float = 3.0,
        background_refreshes: int = 2,
        record_in_dagster: bool = True,
    ) -> None:
        """``smartsync_home``: SMARTSYNC_HOME of the mirror (default: the environment's, or ./.smartsync).
        ``stale_if_error_seconds``: when QBO fails, serve mirror data (flagged stale) if it is at most this
        old. ``stale_while_revalidate``: answer stale data at once (flagged) and refresh in the background.
        ``refresh_wait_seconds``: longest wait for another process's refresh or sync of the same company;
        then stale-if-error decides. ``refresh_throttle_seconds``: longest wait out of QBO throttling (429)
        per call during an on-demand refresh (a true bound: no wait goes past it).
        ``stale_answer_after_seconds``: when the mirror holds data inside the stale-if-error bound, the
        longest a read waits for its refresh (or for another process's sync of the company) before it
        answers that data flagged stale; the refresh goes on in the background and serves the next read.
        ``background_refreshes``: threads for those refreshes and for stale-while-revalidate (bounded:
        one refresh per (company, entity) in flight, the rest queue). ``record_in_dagster``: record
        on-demand refreshes as materializations when DAGSTER_HOME is set."""
        self.smartsync_home = str(smartsync_home) if smartsync_home else _default_home()
        self.stale_if_error_seconds = _number(stale_if_error_seconds, "stale_if_error_seconds", minimum=0)
        self.stale_while_revalidate = bool(stale_while_revalidate)
        self.refresh_wait_seconds = _number(refresh_wait_seconds, "refresh_wait_seconds", minimum=0, open_min=True)
        self.refresh_throttle_seconds = _number(refresh_throttle_seconds, "refresh_throttle_seconds", minimum=0)
        self.stale_answer_after_seconds = _number(stale_answer_after_seconds, "stale_answer_after_seconds", minimum=0)
        if type(background_refreshes) is not int or background_refreshes < 1:
            raise ValueError(f"background_refreshes must be a whole number >= 1, got {background_refreshes!r}")
        self.background_refreshes = background_refreshes
        self.record_in_dagster = bool(record_in_dagster)
        self._snapshots: SnapshotReader | None = None
        self._engine: SyncEngine | None = None
        self._clock: Callable[[], datetime] | None = None
        self._trail = DagsterTrail(background=True)  # a read never waits for Dagster's storage
        self._init_lock = threading.RLock()
        self._realms: tuple[float, frozenset[str]] = (-1.0, frozenset())
        self._stats: dict[str, int] = {}
        self._background: ThreadPoolExecutor | None = None
        self._revalidating: set[tuple[str, str]] = set()
        self._in_flight: dict[tuple[str, str], Future[SyncReport | None]] = {}

    def __repr__(self) -> str:
        return (
            f"SmartReader(smartsync_home={self.smartsync_home!r}, refresh_wait_seconds={self.refresh_wait_seconds}, "
            f"stale_if_error_seconds={self.stale_if_error_seconds})"
        )

    def __enter__(self) -> SmartReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release what this reader opened: background refreshes (waited for), snapshot connections
        and the Dagster instance."""
        with self._init_lock:
            background, self._background = self._background, None
        if background is not None:
            background.shutdown(wait=True, cancel_futures=True)
        with self._init_lock:
            snapshots, self._snapshots = self._snapshots, None
        if snapshots is not None:
            snapshots.close()
        self._trail.close()

    # -- wiring ----------------------------------------------------------------------------------

    @property
    def home(self) -> Home:
        return Home(os.path.abspath(self.smartsync_home))  # type: ignore[arg-type]

    def with_clock(self, clock: Callable[[], datetime]) -> SmartReader:
        """Use another clock for freshness decisions (tests, simulations)."""
        self._clock = clock
        return self

    def _now(self) -> datetime:
        return self._clock() if self._clock is not None else datetime.now(UTC)

    def with_engine(self, engine: SyncEngine) -> SmartReader:
        self._engine = engine
        return self

    def snapshots(self) -> SnapshotReader:
        if self._snapshots is None:
            with self._init_lock:
                if self._snapshots is None:
                    self._snapshots = SnapshotReader(self.home.ensure())
        return self._snapshots

    def engine(self) -> SyncEngine:
        if self._engine is None:
            with self._init_lock:
                if self._engine is None:
                    self._engine = SyncEngine(self.home, throttle_budget=self.refresh_throttle_seconds)
        return self._engine

    @property
    def stats(self) -> dict[str, int]:
        """How reads were answered in this process: fresh, refresh, refresh_reused, stale_if_error, ..."""
        return dict(self._stats)

    def _count(self, what: str) -> None:
        self._stats[what] = self._stats.get(what, 0) + 1

    # -- the read path ---------------------------------------------------------------------------

    def read(
        self,
        entity_name: str,
        realm_id: str,
        *,
        where: str = "",
        params: Sequence[Any] = (),
        columns: str = "*",
        order_by: str = "",
        max_age: float | timedelta | None = None,
    ) -> ReadResult:
        """Live rows of one entity of one company, from a mirror at most ``max_age`` old.

        ``max_age`` defaults to the entity's freshness window (the asset's FreshnessPolicy fail
        window); 0 means live (always refresh first). ``where`` is a SQL predicate over the mirror
        table's columns with ``?`` placeholders for ``params``.
        """
        spec = entity(entity_name)
        limit = self._max_age(spec, max_age)
        requested_at = self._now()
        info = self.snapshots().current(realm_id)
        as_of = info.last_sync_at(realm_id, spec.name) if info else None
        if as_of is None:
            self._check_company(realm_id)
        sql = _select(spec, where, columns, order_by)
        req = _Request(spec, realm_id, sql, [realm_id, *params], requested_at, limit)
        if as_of is not None and limit > timedelta(0) and requested_at - as_of <= limit:
            self._count("fresh")
            return self._query(req, info, "mirror")
        if self.stale_while_revalidate and as_of is not None and requested_at - as_of <= self._error_bound():
            self._count("stale_while_revalidate")
            self._revalidate(req)
            return self._query(req, info, "mirror", reason="stale-while-revalidate: refreshing in the background")
        return self._read_after_refresh(req)

    def together(
        self, realm_id: str, entity_names: Sequence[str], *, max_age: float | timedelta | None = None
    ) -> RefreshedTogether:
        """Refresh every stale one of ``entity_names`` of one company in one sync, with one bounded wait
        for all of them (a digest reads six entities: one refresh, not six timeouts), and return a reader
        whose reads of those entities at this ``max_age`` answer from that refresh (or, when it failed,
        stale-if-error at once, without asking QBO again)."""
        known = set(entity_names_registered())  # names this build does not mirror are read as usual
        return RefreshedTogether(self, realm_id, [entity(n) for n in entity_names if n in known], max_age)

    def _read_after_refresh(self, req: _Request) -> ReadResult:
        try:
            if self._stale_answer_possible(req):
                report = self._refresh_within(req, min(self.stale_answer_after_seconds, self.refresh_wait_seconds))
            else:
                report = self._refresh(req, time.monotonic() + self.refresh_wait_seconds)
        except ReauthorizationRequired:
            raise
        except (QBOError, LockTimeout, OSError, RefreshStillRunning) as exc:
            return self._stale_if_error(req, exc)
        info = self.snapshots().current(req.realm_id)
        if report is None:
            return self._query(req, info, "mirror", reason="refreshed by a concurrent read or run")
        with report.timed("answer"):  # the stale read's last phase (bench/bench_reads.py)
            return self._query(req, info, "api", report=report)

    def _answer(self, req: _Request, report: SyncReport | None, error: BaseException | None) -> ReadResult:
        """The answer to ``req`` after a refresh done for it (by ``together``)."""
        if error is not None:
            if isinstance(error, ReauthorizationRequired):
                raise error
            return self._stale_if_error(req, error)
        info = self.snapshots().current(req.realm_id)
        if report is None or req.spec.name not in report.entities:
            return self._query(req, info, "mirror")
        return self._query(req, info, "api", report=report)

    def _refresh_group(self, realm_id: str, specs: list[EntitySpec], stale_possible: bool) -> SyncReport:
        """One sync of ``specs``, waited for as one read would be: ``stale_answer_after_seconds`` when
        every entity has data to answer stale with, else ``refresh_wait_seconds``."""
        bound = min(self.stale_answer_after_seconds, self.refresh_wait_seconds)

        def sync(deadline: float) -> SyncReport:
            report = self.engine().sync(
                realm_id,
                [s.name for s in specs],
                mode="auto",
                trigger="on_demand",
                lock_timeout=max(0.0, deadline - time.monotonic()),
            )
            self._count("refresh")
            if self.record_in_dagster:
                self._trail.record_quietly(report, [s.name for s in specs if s.name in report.entities])
            return report

        if not stale_possible:
            return sync(time.monotonic() + self.refresh_wait_seconds)
        deadline = time.monotonic() + bound
        future = self._pool().submit(sync, deadline - _LOCK_MARGIN)
        try:
            return future.result(timeout=bound)
        except FutureTimeout:
            if future.done():
                raise
            self._count("refresh_still_running")
            raise RefreshStillRunning(
                f"the refresh from QBO was not done after {bound:g} s (stale_answer_after_seconds); it goes on "
                "in the background and serves the next read"
            ) from None

    def _stale_answer_possible(self, req: _Request) -> bool:
        info = self.snapshots().current(req.realm_id)
        as_of = info.last_sync_at(req.realm_id, req.spec.name) if info else None
        return as_of is not None and self._now() - as_of <= self._error_bound()

    def _pool(self) -> ThreadPoolExecutor:
        """The reader's background threads (the caller may hold ``_init_lock``)."""
        if self._background is None:
            self._background = ThreadPoolExecutor(self.background_refreshes, thread_name_prefix="smartsync-refresh")
        return self._background

    def _refresh_within(self, req: _Request, seconds: float) -> SyncReport | None:
        """The refresh, waited for at most ``seconds`` (lock waits included); past that it goes on in a
        background thread and ``RefreshStillRunning`` lets the caller answer stale (flagged). Reads of
        this process asking while a refresh of the same (company, entity) runs wait for that one first."""
        deadline = time.monotonic() + seconds
        key = (req.realm_id, req.spec.name)
        while True:
            with self._init_lock:
                future = self._in_flight.get(key)
                mine = future is None or future.done()
                if mine:
                    # Lock waits end a little before the caller's bound, so a held lock is reported as such.
                    future = self._pool().submit(self._refresh, req, deadline - _LOCK_MARGIN)
                    self._in_flight[key] = future
                    future.add_done_callback(lambda f, key=key: self._landed(key, f))
            try:
                result = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                if future.done():  # the refresh's own timeout (a LockTimeout is a TimeoutError too)
                    raise
                self._count("refresh_still_running")
                raise RefreshStillRunning(
                    f"the refresh from QBO was not done after {seconds:g} s (stale_answer_after_seconds); it "
                    "goes on in the background and serves the next read"
                ) from None
            if mine:
                return result
            # Another read's refresh landed: ours now finds the mirror fresh enough, or syncs again.

    def _landed(self, key: tuple[str, str], future: Future[SyncReport | None]) -> None:
        with self._init_lock:
            if self._in_flight.get(key) is future:
                del self._in_flight[key]

    def _revalidate(self, req: _Request) -> None:
        """Stale-while-revalidate: one background refresh per (company, entity) at a time, on the
        reader's bounded pool."""
        key = (req.realm_id, req.spec.name)
        with self._init_lock:
            if key in self._revalidating:
                return
            self._revalidating.add(key)
            try:
                self._pool().submit(self._refresh_quietly, req, key)
            except RuntimeError:  # shutting down
                self._revalidating.discard(key)

    def _refresh(self, req: _Request, deadline: float) -> SyncReport | None:
        """Single flight per (realm, entity): the first caller syncs, the others wait for the lock and
        then reuse the result if it is new enough for them. Lock waits (this refresh's and the
        company's sync lock) end by ``deadline`` (``time.monotonic()``). Returns the sync's report, or
        None when another caller's refresh was reused."""
        spec, realm_id, requested_at, limit = req.spec, req.realm_id, req.requested_at, req.limit
        lock = FileLock(
            self.home.locks_dir / f"refresh-{realm_id}-{spec.table}.lock",
            what=f"the refresh of {spec.name} for company {realm_id}",
        )
        with lock.exclusive(max(0.0, deadline - time.monotonic())) as waited:
            info = self.snapshots().current(realm_id)
            as_of = info.last_sync_at(realm_id, spec.name) if info else None
            # Good enough if someone refreshed after our deadline: for max_age=0, after we asked.
            needed_since = requested_at - limit
            if as_of is not None and as_of >= needed_since and (limit > timedelta(0) or as_of >= requested_at):
                self._count("refresh_reused")
                return None
            self._count("refresh")
            report = self.engine().sync(
                realm_id,
                [spec.name],
                mode="auto",
                trigger="on_demand",
                lock_timeout=max(0.0, deadline - time.monotonic()),
            )
            report.lock_wait_seconds += waited
            with report.timed("record"):
                self._record(report, spec)
            return report

    def _refresh_quietly(self, req: _Request, key: tuple[str, str]) -> None:
        try:
            self._refresh(req, time.monotonic() + self.refresh_wait_seconds)
        except Exception as exc:  # background: the next read will try again and report properly
            log.warning("background refresh of %s for company %s failed: %s", req.spec.name, req.realm_id, exc)
        finally:
            with self._init_lock:
                self._revalidating.discard(key)

    def _stale_if_error(self, req: _Request, exc: BaseException) -> ReadResult:
        spec, realm_id = req.spec, req.realm_id
        info = self.snapshots().current(realm_id)
        as_of = info.last_sync_at(realm_id, spec.name) if info else None
        cause = " ".join(str(exc).split()) or type(exc).__name__
        if as_of is None:
            raise DataUnavailableError(
                f"company {realm_id}: no {spec.name} data in the mirror yet and the refresh from QBO failed: {cause}"
            ) from exc
        age = self._now() - as_of
        if age > self._error_bound():
            raise DataUnavailableError(
                f"company {realm_id}: {spec.name} data is {_human(age)} old (allowed {_human(req.limit)}, "
                f"stale-if-error bound {_human(self._error_bound())}) and the refresh from QBO failed: {cause}"
            ) from exc
        self._count("stale_if_error")
        log.warning("serving stale %s for company %s (%s old): %s", spec.name, realm_id, _human(age), cause)
        what = "QBO refresh still running" if isinstance(exc, RefreshStillRunning) else "QBO refresh failed"
        return self._query(req, info, "mirror", reason=f"stale-if-error: {what} ({cause})")

    def _query(
        self,
        req: _Request,
        info: SnapshotInfo | None,
        source: Source,
        *,
        report: SyncReport | None = None,
        reason: str = "",
    ) -> ReadResult:
        with self.snapshots().cursor(info, realm_id=req.realm_id) as (cur, used):
            rows = fetch_frame(cur, req.sql, req.args)  # money stays exact: smart/rows.py
        spec = req.spec
        as_of = used.last_sync_at(req.realm_id, spec.name)
        age = (self._now() - as_of).total_seconds() if as_of else None
        # Stale means older than the caller allowed at the moment they asked (for max_age=0: from
        # before they asked).
        stale = as_of is None or as_of < req.requested_at - req.limit
        entity_report = report.entities.get(spec.name) if report else None
        return ReadResult(
            rows,
            Provenance(
                source=source,
                realm_id=req.realm_id,
                entity=spec.name,
                as_of=as_of,
                age_seconds=age,
                max_age_seconds=req.limit.total_seconds(),
                stale=stale,
                snapshot_generation=used.generation,
                sync_id=report.sync_id if report else None,
                changes=entity_report.changed if entity_report else None,
                reason=reason,
            ),
        )

    # -- details ---------------------------------------------------------------------------------

    def _max_age(self, spec: EntitySpec, max_age: float | timedelta | None) -> timedelta:
        if max_age is None:
            return spec.freshness.fail
        value = max_age if isinstance(max_age, timedelta) else timedelta(seconds=_number(max_age, "max_age"))
        if value < timedelta(0) or value > MAX_AGE_LIMIT:
            raise ValueError(f"max_age must be between 0 and {MAX_AGE_LIMIT.days} days, got {value}")
        return value

    def _error_bound(self) -> timedelta:
        return timedelta(seconds=self.stale_if_error_seconds)

    def _check_company(self, realm_id: str) -> None:
        folder = self.home.companies_dir
        try:
            mtime = folder.stat().st_mtime
        except FileNotFoundError:
            mtime = 0.0
        cached_mtime, realms = self._realms
        if mtime != cached_mtime:
            realms = frozenset(CompanyStore(self.home).realms())
            self._realms = (mtime, realms)
        if realm_id not in realms:
            known = ", ".join(sorted(realms)) or "none"
            raise UnknownCompanyError(f"company {realm_id!r} is not connected (connected: {known})")

    def _record(self, report: SyncReport, spec: EntitySpec) -> None:
        """Show the on-demand refresh in Dagster beside scheduled ones; never fail the read for it."""
        if self.record_in_dagster and spec.name in report.entities:
            self._trail.record_quietly(report, [spec.name], requested_mode="auto")


class RefreshedTogether:
    """A SmartReader view after one refresh of several entities of one company (``SmartReader.together``):
    reads of those entities at the same ``max_age`` answer from that refresh; any other read goes to the
    reader as usual."""

    def __init__(
        self, reader: SmartReader, realm_id: str, specs: list[EntitySpec], max_age: float | timedelta | None
    ) -> None:
        self.reader = reader
        self.realm_id = realm_id
        self.max_age = max_age
        self.requested_at = reader._now()
        info = reader.snapshots().current(realm_id)
        if info is None:
            reader._check_company(realm_id)
        self.stale: dict[str, EntitySpec] = {}
        stale_possible = True
        for spec in specs:
            limit = reader._max_age(spec, max_age)
            as_of = info.last_sync_at(realm_id, spec.name) if info else None
            if as_of is None or limit <= timedelta(0) or self.requested_at - as_of > limit:
                self.stale[spec.name] = spec
                bounded = as_of is not None and self.requested_at - as_of <= reader._error_bound()
                stale_possible = stale_possible and bounded
        self.report: SyncReport | None = None
        self.error: BaseException | None = None
        if self.stale:
            try:
                self.report = reader._refresh_group(realm_id, list(self.stale.values()), stale_possible)
            except ReauthorizationRequired:
                raise
            except (QBOError, LockTimeout, OSError, RefreshStillRunning) as exc:
                self.error = exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)

    def read(
        self,
        entity_name: str,
        realm_id: str,
        *,
        where: str = "",
        params: Sequence[Any] = (),
        columns: str = "*",
        order_by: str = "",
        max_age: float | timedelta | None = None,
    ) -> ReadResult:
        spec = entity(entity_name)
        if realm_id != self.realm_id or spec.name not in self.stale or max_age != self.max_age:
            return self.reader.read(
                entity_name, realm_id, where=where, params=params, columns=columns, order_by=order_by, max_age=max_age
            )
        limit = self.reader._max_age(spec, max_age)
        sql = _select(spec, where, columns, order_by)
        req = _Request(spec, realm_id, sql, [realm_id, *params], self.requested_at, limit)
        return self.reader._answer(req, self.report, self.error)


def _number(value: Any, name: str, *, minimum: float | None = None, open_min: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if minimum is not None and (value < minimum or (open_min and value == minimum)):
        bound = "greater than" if open_min else "at least"
        raise ValueError(f"{name} must be {bound} {minimum:g} seconds, got {value!r}")
    return float(value)


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
