"""The sync engine: the only writer of mirror rows, the change log and sync state.

Dagster assets, schedules, webhook-driven runs, on-demand refreshes from the smart reader and the
CLI all call ``SyncEngine.sync``. Per realm it (1) fetches from QBO without touching the mirror, then
(2) applies everything in ONE DuckDB transaction (rows + change log + watermarks) under the company's
writer lock, then (3) publishes a snapshot for readers. Full listings are paged concurrently
(``full_listings.py``) into a shadow copy that replaces the mirror in one rename; a first sync applies
each entity to the shadow as soon as it is listed, two at once (``apply_lanes.py``), while later ones
are still being paged (ARCHITECTURE.md, "Backfill").
A sync killed at any point leaves the mirror as it was before it; the next sync converges. Every
company is its own shard (own file, chain, snapshots and locks), so syncs of different companies run
in parallel and never wait for each other.

Locks of one company: incremental syncs take its ``sync`` lock for the whole sync (single flight: a
second one waits and then finds a tiny CDC window); an explicit full sync (the daily reconciliation)
takes its ``full`` lock instead, so its long fetch never stops incremental refreshes; both take the
short ``write`` lock only to apply and publish. A full listing fetched before an incremental sync
applied newer versions never regresses them: the apply keeps a row whose SyncToken is newer and a
tombstone deleted after the listing was read.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from smartsync_pipeline.coordination import company_lock
from smartsync_pipeline.coordination.company_locks import ExclusiveLock
from smartsync_pipeline.entities import EntitySpec, entity, iter_entities
from smartsync_pipeline.home import Home, RealmHome
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.anchors import AnchoredCommit, AnchorMismatch, AnchorStore
from smartsync_pipeline.mirror.apply import (
    ApplyContext,
    EntityApplyResult,
    apply_staged,
    id_key,
    stage,
    tombstone_stubs,
)
from smartsync_pipeline.mirror.database import FileKey, MirrorDatabase
from smartsync_pipeline.mirror.schema import record_data_version
from smartsync_pipeline.mirror.snapshots import SnapshotStore, content_key, mirror_tables, read_state_rows
from smartsync_pipeline.mirror.sql import fetch_one
from smartsync_pipeline.mirror.sync_state import EntityState, load_state, record_sync
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.qbo.errors import CDCWindowTooOldError
from smartsync_pipeline.sync.apply_lanes import MAX_APPLY_LANES, ApplyLanes, LanePhases, LaneTimes
from smartsync_pipeline.sync.errors import SyncError
from smartsync_pipeline.sync.fetch import (
    CDCFetch,
    FullFetch,
    Progress,
    StagingArea,
    confirm_missing,
    fetch_cdc,
)
from smartsync_pipeline.sync.full_listings import FullListings
from smartsync_pipeline.sync.report import EntitySyncReport, SyncReport

log = logging.getLogger("smartsync.sync")

CDC_MAX_LOOKBACK = timedelta(days=30)
MODES = ("auto", "full", "incremental")


def resolve_realm(home: Home, realm_id: str | None) -> str:
    """The realm to use: the given one (must be connected) or the only connected one. Checking a
    given realm costs one ``stat`` whatever the size of the fleet."""
    store = CompanyStore(home)
    if realm_id:
        if not store.connection_path(realm_id).exists():
            realms = store.realms()
            known = ", ".join(realms[:20]) + (f" and {len(realms) - 20} more" if len(realms) > 20 else "")
            hint = (
                "it was disconnected; `smartsync connect` it again to resume"
                if _is_disconnected(home, realm_id)
                else "run `smartsync connect` first"
            )
            raise SyncError(f"company {realm_id!r} is not connected (connected: {known or 'none'}); {hint}")
        return realm_id
    realms = store.realms()
    if len(realms) == 1:
        return realms[0]
    if not realms:
        raise SyncError("no company is connected; run `smartsync connect` first")
    shown = ", ".join(realms[:10]) + (", …" if len(realms) > 10 else "")
    raise SyncError(f"{len(realms)} companies are connected ({shown}); choose one with --realm")


def _is_disconnected(home: Home, realm_id: str) -> bool:
    try:
        return home.realm(realm_id).disconnected_marker.exists()
    except ValueError:
        return False


# Triggers of routine sweeps: they list an entity outside CDC only when its warn window has passed.
# A person, a reader or a webhook naming the entity (manual, on_demand, webhook, ...) gets a listing.
LIST_WHEN_DUE = frozenset({"schedule", "sensor"})


@dataclass
class Listing:
    """A whole listing of one entity outside CDC, staged with its confirmed deletes."""

    staged: pa.Table
    fetched: int
    started_server_time: datetime | None


def _not_due(spec: EntitySpec, st: EntityState) -> EntitySyncReport:
    """A routine sweep left this entity alone: its last listing is within its warn window."""
    return EntitySyncReport(
        spec.name, "not_due", rows_active=st.rows_active, rows_deleted=st.rows_deleted,
        watermark_before=st.watermark, watermark_after=st.watermark,
    )  # fmt: skip


# Per mirror file: the file key this process left it with and the sync state it had committed then.
_committed_states: dict[str, tuple[FileKey | None, dict[str, dict[str, dict[str, Any]]]]] = {}


def _state_of(realm_id: str, spec: EntitySpec, row: dict[str, Any]) -> EntityState:
    """An ``EntityState`` from a JSON-ready sync_state row (``read_state_rows``)."""

    def moment(value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return EntityState(
        realm_id, spec.name, moment(row.get("last_sync_at")), moment(row.get("last_full_sync_at")),
        moment(row.get("watermark")), row.get("last_mode"), row.get("rows_active") or 0, row.get("rows_deleted") or 0,
    )  # fmt: skip


class _PhaseClock:
    """Charges elapsed time to one phase of ``report`` at a time (the phases of one ``with`` block)."""

    def __init__(self, report: SyncReport, phase: str) -> None:
        self.report, self.phase, self.since = report, phase, time.perf_counter()

    def switch(self, phase: str) -> None:
        now = time.perf_counter()
        if self.phase:
            self.report.add_time(self.phase, now - self.since)
        self.phase, self.since = phase, now

    def stop(self) -> None:
        self.switch("")

    @contextmanager
    def until_exit(self, phase: str) -> Iterator[None]:
        """Charge the block's exit (the connection's checkpoint and close) to ``phase``."""
        try:
            yield
        finally:
            self.switch(phase)


@dataclass
class _Shard:
    """What one sync works on: the company's shard, its mirror file, snapshot store and staging area."""

    realm: RealmHome
    db: MirrorDatabase
    snapshots: SnapshotStore
    staging: str  # "sync" or "full": each lock owns its own staging folder


DEFAULT_PAGE_WORKERS = 6
DEFAULT_APPLY_LANES = 2


def page_workers_from_env() -> int:
    """``SMARTSYNC_PAGE_WORKERS`` (1-10): pages of a full listing in flight at once. 6 keep up with
    QBO's 500 requests a minute at ~300 ms a page and keep a 1.2 M-object backfill under 500 MB of
    RSS; each more holds one more decoded page (README, "Configuration")."""
    return _whole_number_from_env("SMARTSYNC_PAGE_WORKERS", DEFAULT_PAGE_WORKERS, 10, " (QBO's limit)")


def apply_lanes_from_env() -> int:
    """``SMARTSYNC_APPLY_LANES`` (1-4): cursors applying a shadow's entities at once; 1 applies them one
    after another (README, "Configuration")."""
    return _whole_number_from_env("SMARTSYNC_APPLY_LANES", DEFAULT_APPLY_LANES, MAX_APPLY_LANES)


def _whole_number_from_env(name: str, default: int, most: int, why: str = "") -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise SyncError(f"{name} must be a whole number from 1 to {most}{why}, not {raw!r}")
    return int(raw)


class _FullSource:
    """The full listings of one sync, each resolved once into (listing, confirmed deletes, objects
    rescued from a false delete): waited for, then compared with the mirror on a given connection."""

    def __init__(self, client: Any, realm_id: str, pages: FullListings, names: list[str]) -> None:
        self.client, self.realm_id, self.pages, self.names = client, realm_id, pages, set(names)
        self._resolved: dict[str, tuple[FullFetch, list[str], list[dict]]] = {}

    def resolve(
        self, name: str, con: duckdb.DuckDBPyConnection, clock: _PhaseClock | None = None
    ) -> tuple[FullFetch, list[str], list[dict]]:
        if name not in self._resolved:
            fetch = self.pages.result(name)
            if clock is not None:
                clock.switch("find_deletes")
            spec = entity(name)
            candidates = _delete_candidates(con, self.realm_id, spec, fetch)
            missing, rescued = confirm_missing(self.client, spec, candidates) if candidates else ([], [])
            self._resolved[name] = (fetch, missing, rescued)
        return self._resolved[name]

    def fetched(self, name: str) -> FullFetch | None:
        """The listing of ``name`` once resolved (what ``_record`` reports as full)."""
        resolved = self._resolved.get(name)
        return resolved[0] if resolved else None


def _delete_candidates(con: duckdb.DuckDBPyConnection, realm_id: str, spec: EntitySpec, fetch: FullFetch) -> list[str]:
    """Active mirror ids that a full listing did not return (set difference inside DuckDB)."""
    if fetch_one(con, f"SELECT 1 FROM {spec.table} WHERE realm_id = ? AND NOT is_deleted LIMIT 1", [realm_id]) is None:
        return []  # nothing to lose (a first sync): the listing's files need not be read
    if fetch.files:
        rows = con.execute(
            f"SELECT id FROM {spec.table} m WHERE realm_id = ? AND NOT is_deleted "
            f"AND NOT EXISTS (SELECT 1 FROM read_parquet(?) s WHERE s.id_key = m.id_key AND s.id = m.id)",
            [realm_id, [str(p) for p in fetch.files]],
        ).fetchall()
    else:
        rows = con.execute(f"SELECT id FROM {spec.table} WHERE realm_id = ? AND NOT is_deleted", [realm_id]).fetchall()
    return sorted((r[0] for r in rows), key=id_key)


class _BiggestListedFirst:
    """A shadow's entities for apply lanes: of those ready (listed, or without a full listing), the one
    with the most rows first (registry order among equals). A lane never waits for one entity's pages
    while another's are all in, and when many are ready at once the biggest starts first, so the lanes
    end together instead of one applying a big entity alone at the end."""

    def __init__(self, specs: list[EntitySpec], fulls: _FullSource) -> None:
        self.pending, self.fulls = list(specs), fulls
        self._lock = threading.Lock()

    def take(self, lanes: ApplyLanes[EntitySpec]) -> EntitySpec | None:
        pages = self.fulls.pages
        while True:
            seen = pages.finished
            with self._lock:
                if not self.pending:
                    return None
                ready = [
                    (-pages.fetched(spec.name) if spec.name in self.fulls.names else 0, n)
                    for n, spec in enumerate(self.pending)
                    if spec.name not in self.fulls.names or pages.listed(spec.name)
                ]
                if ready:
                    return self.pending.pop(min(ready)[1])
            with lanes.waiting():
                pages.wait_finished(seen)


@dataclass
class _EntityApplier:
    """Applies one sync's units entity by entity, on the connection or cursor it is given: one after
    another in the sync's transaction, or on a shadow in apply lanes (``in_lanes``), one transaction
    per unit."""

    engine: SyncEngine
    ctx: ApplyContext
    writer: change_log.ChangeLogAppender
    states: dict[str, EntityState]
    cdc: CDCFetch | None
    incremental: list[EntitySpec]
    fulls: _FullSource
    full_reasons: dict[str, str]
    report: SyncReport
    listings: dict[str, Listing]
    transaction_per_unit: bool

    def apply(self, con: duckdb.DuckDBPyConnection, spec: EntitySpec, clock: _PhaseClock | LanePhases) -> None:
        result = EntityApplyResult(spec.name)
        for source, last in self._units(spec, con, clock):
            if self.transaction_per_unit:
                con.execute("BEGIN TRANSACTION")
            result.add(apply_staged(con, spec, source, self.ctx, self.writer))
            if last:
                self._record(con, spec, result)
            if self.transaction_per_unit:
                con.execute("COMMIT")  # DuckDB checkpoints a shadow by itself when enough piled up
            if last:
                log.debug("applied %s of %s: +%d ~%d -%d", spec.name, self.ctx.realm_id, result.created,
                          result.updated, result.deleted)  # fmt: skip

    def _units(
        self, spec: EntitySpec, con: duckdb.DuckDBPyConnection, clock: _PhaseClock | LanePhases
    ) -> Iterator[tuple[pa.Table | list[str], bool]]:
        """(staged rows, last unit of the entity?) of one entity; a full listing is cut into groups of
        page files of at most ``rows_per_transaction`` rows. A listing still being paged is waited for
        here (charged to ``fetch``), its deletes found on ``con`` (``find_deletes``)."""
        if spec.name in self.fulls.names:
            clock.switch("fetch")
            fetch, missing, rescued = self.fulls.resolve(spec.name, con, clock)
            clock.switch("apply")
            files = [str(p) for p in fetch.files]
            per_group = max(1, self.engine.rows_per_transaction // max(1, self.engine.page_size))
            groups = [files[i : i + per_group] for i in range(0, len(files), per_group)] or [[]]
            extra = [*rescued, *tombstone_stubs(missing, self.ctx.now)]
            for n, group in enumerate(groups):
                yield group, n == len(groups) - 1 and not extra
            if extra:
                yield stage(extra, first_seq=fetch.fetched), True
        elif spec.name in self.listings:
            yield self.listings[spec.name].staged, True
        elif self.cdc is not None and spec in self.incremental:
            yield self.cdc.staged.get(spec.name, stage([])), True

    def _record(self, con: duckdb.DuckDBPyConnection, spec: EntitySpec, result: EntityApplyResult) -> None:
        """The entity's sync_state row (same transaction as its last rows) and its report."""
        now, report, cdc = self.ctx.now, self.report, self.cdc
        fetch, listing = self.fulls.fetched(spec.name), self.listings.get(spec.name)
        if fetch is not None:
            mode, fetched, watermark = "full", fetch.fetched, fetch.started_server_time or now
        elif listing is not None:
            mode, fetched, watermark = "listing", listing.fetched, listing.started_server_time or now
        else:
            assert cdc is not None
            mode, fetched, watermark = "incremental", cdc.counts.get(spec.name, 0), cdc.server_time
        # Freshness is "as of when we asked QBO", not when we finished writing.
        active, deleted = record_sync(
            con, spec, realm_id=report.realm_id, synced_at=report.started_at, watermark=watermark, mode=mode,
            trigger=report.trigger, run_id=report.run_id, sync_id=report.sync_id, result=result,
        )  # fmt: skip
        report.entities[spec.name] = EntitySyncReport(
            spec.name, mode, result.created, result.updated, result.deleted, result.unchanged, active, deleted,
            fetched, self.states[spec.name].watermark, watermark, result.changed_ids,
            self.full_reasons.get(spec.name, "") if mode == "full" else "", result.repaired,
        )  # fmt: skip

    def in_lanes(self, con: duckdb.DuckDBPyConnection, specs: list[EntitySpec], lanes: int) -> LaneTimes:
        """A shadow's entities on several cursors at once (sync/apply_lanes.py); the report still lists
        them in registry order."""

        def stop(exc: BaseException) -> None:
            self.writer.fail(exc)
            self.fulls.pages.stop()

        runner: ApplyLanes[EntitySpec] = ApplyLanes(con, lanes, on_error=stop)
        take = _BiggestListedFirst(specs, self.fulls).take
        runner.run(take, lambda cur, spec, lanes: self.apply(cur, spec, LanePhases(lanes)))
        order = {s.name: n for n, s in enumerate(specs)}
        by_order = sorted(self.report.entities.items(), key=lambda e: order.get(e[0], len(order)))
        self.report.entities = dict(by_order)
        return runner.times


@dataclass
class SyncEngine:
    """Syncs one realm at a time; safe to call from many threads and processes at once."""

    home: Home
    client_factory: Callable[[str], Any] | None = None
    cdc_overlap: timedelta = timedelta(seconds=60)
    page_size: int = 1000
    rows_per_transaction: int = 50_000  # a full listing is applied to the shadow copy in bounded steps
    # Pages of full listings in flight at once (QBO allows 10 concurrent requests per company; the
    # client's limiter holds every process of the company to that and to 500 a minute).
    page_workers: int = field(default_factory=lambda: page_workers_from_env())
    # Cursors applying a shadow's entities at once (a first sync, a full reconciliation): see apply_lanes.py.
    apply_lanes: int = field(default_factory=lambda: apply_lanes_from_env())
    lock_timeout: float = 900.0
    throttle_budget: float = 60.0  # seconds of 429 waits per call before giving up (QBO: wait up to 60 s)
    # How long to wait for a foreign process holding a company's mirror file (an analyst who opened it
    # directly): syncs wait this long, on-demand refreshes (a reader is waiting) only briefly.
    mirror_busy_timeout: float = 60.0
    on_demand_busy_timeout: float = 2.0
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        from smartsync_pipeline.mirror.upgrade import ensure_upgraded

        self.home.ensure()
        ensure_upgraded(self.home)

    def _page_workers(self, client: Any) -> int:
        limiter = getattr(client, "limiter", None)
        return max(1, min(self.page_workers, getattr(limiter, "max_concurrent", self.page_workers)))

    def client(self, realm_id: str) -> Any:
        if self.client_factory is not None:
            return self.client_factory(realm_id)
        store = CompanyStore(self.home)
        return QBOClient(
            store.load(realm_id), store.tokens(realm_id), home=self.home, throttle_budget=self.throttle_budget
        )

    def realm_lock(self, realm_id: str) -> ExclusiveLock:
        """Single flight of one company's incremental syncs (a file lock, or PostgreSQL across hosts)."""
        return company_lock(self.home.realm(realm_id), "sync", f"the sync of company {realm_id}")

    def full_lock(self, realm_id: str) -> ExclusiveLock:
        """One full reconciliation of a company at a time; incremental syncs do not wait for it."""
        return company_lock(self.home.realm(realm_id), "full", f"the full sync of company {realm_id}")

    def sync(
        self,
        realm_id: str | None = None,
        entities: Sequence[str] | None = None,
        *,
        mode: str = "auto",
        trigger: str = "manual",
        run_id: str | None = None,
        progress: Progress | None = None,
        lock_timeout: float | None = None,
        verify_content: bool = False,
    ) -> SyncReport:
        """Bring the mirror of ``entities`` (default: all) of one realm up to date with QBO.

        A second sync of the same realm waits for the first (at most ``lock_timeout`` seconds, then
        ``LockTimeout``); its CDC window is then tiny. ``verify_content`` also compares rows whose
        SyncToken did not change with QBO's content and repairs those that differ (op ``repair``;
        ``reconcile --deep`` and the daily full reconciliation use it with ``mode="full"``)."""
        if mode not in MODES:
            raise SyncError(f"unknown sync mode {mode!r}; expected one of {', '.join(MODES)}")
        if trigger not in change_log.TRIGGERS:
            raise SyncError(f"unknown trigger {trigger!r}; expected one of {', '.join(sorted(change_log.TRIGGERS))}")
        specs = list(iter_entities(list(entities) if entities else None))
        realm_id = resolve_realm(self.home, realm_id)
        report = SyncReport(realm_id, uuid.uuid4().hex, trigger, run_id, self.clock(), verify_content=verify_content)
        timeout = self.lock_timeout if lock_timeout is None else lock_timeout
        busy = self.on_demand_busy_timeout if trigger == "on_demand" else self.mirror_busy_timeout
        db = MirrorDatabase(self.home, realm_id, lock_timeout=timeout, busy_timeout=min(busy, timeout))
        db.shard.ensure()
        staging = "full" if mode == "full" else "sync"
        shard = _Shard(db.shard, db, SnapshotStore(self.home, realm_id), staging)
        lock = self.full_lock(realm_id) if mode == "full" else self.realm_lock(realm_id)
        with lock.exclusive(timeout) as waited:
            report.lock_wait_seconds += waited
            resolve_realm(self.home, realm_id)  # still connected? (a disconnect may have run while we waited)
            self._sync_locked(shard, specs, mode, report, progress)
        report.finished_at = self.clock()
        log.info(
            "synced %s %s: +%d ~%d -%d (=%d) in %.2fs, %d API calls",
            realm_id,
            ",".join(report.entities),
            report.total("created"),
            report.total("updated"),
            report.total("deleted"),
            report.total("unchanged"),
            report.duration_seconds,
            report.api_calls,
        )
        return report

    # -- phases -------------------------------------------------------------------------------

    def _sync_locked(
        self, shard: _Shard, specs: list[EntitySpec], mode: str, report: SyncReport, progress: Progress | None
    ) -> None:
        realm_id = shard.realm.realm_id
        states = self._load_states(shard, specs, report)
        client = self.client(realm_id)
        full: dict[str, str] = {}  # entity -> reason
        incremental: list[EntitySpec] = []
        listed: list[EntitySpec] = []  # outside CDC (query-only, singletons): listed whole, deletes by id diff
        now = self.clock()
        for spec in specs:
            st = states[spec.name]
            if mode == "full":
                full[spec.name] = "requested"
            elif st.watermark is None:
                if mode == "incremental":
                    full[spec.name] = "never synced: first sync is full"
                else:
                    full[spec.name] = "first sync"
            elif not spec.in_cdc:
                if report.trigger in LIST_WHEN_DUE and st.last_sync_at and now - st.last_sync_at < spec.freshness.warn:
                    report.entities[spec.name] = _not_due(spec, st)
                else:
                    listed.append(spec)
            elif now - st.watermark > CDC_MAX_LOOKBACK - timedelta(hours=1):
                full[spec.name] = f"watermark {st.watermark:%Y-%m-%d} is older than CDC's 30-day limit"
            else:
                incremental.append(spec)

        cdc: CDCFetch | None = None
        if incremental:
            since = min(states[s.name].watermark for s in incremental) - self.cdc_overlap  # type: ignore[operator]
            try:
                with report.timed("fetch"):
                    cdc = fetch_cdc(client, [s.name for s in incremental], since)
            except CDCWindowTooOldError:
                # QBO's clock is the authority on the 30-day limit.
                for s in incremental:
                    full[s.name] = "QBO rejected the CDC window as older than 30 days"
                incremental = []
            else:
                for name in cdc.overflowed:
                    full[name] = "more changes than one CDC response holds"
                incremental = [s for s in incremental if s.name not in cdc.overflowed]

        listings: dict[str, Listing] = {}
        if listed:
            with report.timed("fetch"):
                for spec in listed:
                    listings[spec.name] = self._listing(shard, client, spec)
        staging = StagingArea(shard.realm.staging_dir / shard.staging)
        pages = FullListings(
            client, [entity(name) for name in full], staging, page_size=self.page_size,
            workers=self._page_workers(client), progress=progress,
        )  # fmt: skip
        try:
            fulls = _FullSource(client, realm_id, pages, list(full))
            if full and shard.staging == "full":
                # An explicit full reconciliation: fetch everything (and find its deletes) before taking
                # the write lock, so incremental refreshes keep applying meanwhile.
                with report.timed("fetch"):
                    pages.wait_all()
                with report.timed("find_deletes"), shard.db.locked(), shard.db.connect() as con:
                    for name in full:
                        fulls.resolve(name, con)
            # Otherwise (a first sync, a window past CDC's reach) this sync holds the company's sync lock,
            # so no other writer waits for it: each entity is applied as soon as its listing is complete,
            # while later ones are still being paged.
            self._apply(shard, specs, states, cdc, incremental, fulls, full, report, listings)
        finally:
            pages.close()
            staging.cleanup()
            stats = getattr(client, "stats", None)
            if stats is not None:
                report.api_calls = getattr(stats, "api_calls", 0)
                report.bytes_received = getattr(stats, "bytes_received", 0)
                report.retries = getattr(stats, "retries", 0)
            if self.client_factory is None:  # the engine made it, the engine closes it (a factory's owner does)
                client.close()

    def _listing(self, shard: _Shard, client: Any, spec: EntitySpec) -> Listing:
        """Every object of an entity CDC does not cover, and tombstones for the mirror's ids QBO no
        longer has (asked again by Id first, like a full sync's deletes)."""
        started = client.server_time
        objects: list[dict[str, Any]] = []
        for page in client.iter_pages(
            spec.name, page_size=self.page_size, include_inactive=True if spec.name_list else None
        ):
            objects.extend(page)
        seen = {str(o.get("Id")) for o in objects}
        with shard.db.locked(), shard.db.connect() as con:
            rows = con.execute(
                f"SELECT id FROM {spec.table} WHERE realm_id = ? AND NOT is_deleted", [shard.realm.realm_id]
            ).fetchall()
        gone = sorted((r[0] for r in rows if r[0] not in seen), key=id_key)
        missing, rescued = confirm_missing(client, spec, gone) if gone else ([], [])
        staged = stage([*objects, *rescued, *tombstone_stubs(missing, started or self.clock())])
        return Listing(staged, len(objects), started)

    def _load_states(self, shard: _Shard, specs: list[EntitySpec], report: SyncReport) -> dict[str, EntityState]:
        realm_id = shard.realm.realm_id
        with report.timed("states"), shard.db.locked() as waited:
            report.lock_wait_seconds += waited
            if not shard.db.path.exists():  # a new company: nothing to read; the first sync creates the mirror
                return {s.name: EntityState.never_synced(realm_id, s.name) for s in specs}
            key, committed = _committed_states.get(str(shard.db.path), (None, {}))
            if shard.db.unchanged_since(key) and all(s.name in committed.get(realm_id, {}) for s in specs):
                # What this process committed last, and no writer touched the file since.
                return {s.name: _state_of(realm_id, s, committed[realm_id][s.name]) for s in specs}
            try:
                with shard.db.peek() as con:  # read-only: no migration or checkpoint to pay for
                    return {s.name: load_state(con, realm_id, s) for s in specs}
            except (duckdb.Error, FileNotFoundError):
                pass  # no mirror yet, one that needs migrating, or held by another process: the writer's way
            with shard.db.connect() as con:
                return {s.name: load_state(con, realm_id, s) for s in specs}

    def _apply(
        self,
        shard: _Shard,
        specs: list[EntitySpec],
        states: dict[str, EntityState],
        cdc: CDCFetch | None,
        incremental: list[EntitySpec],
        fulls: _FullSource,
        full_reasons: dict[str, str],
        report: SyncReport,
        listings: dict[str, Listing] | None = None,
    ) -> None:
        """Write everything fetched. Incremental work is one transaction on the mirror; a full listing
        goes to a shadow copy in bounded-size transactions and replaces the mirror in one rename. Either
        way the mirror moves from the old state to the new one with nothing in between."""
        db = shard.db
        with db.locked() as waited:
            report.lock_wait_seconds += waited
            db.discard_shadow()
            # Stamped under the writer lock, so recorded_at never runs backwards against change_id.
            now = self.clock()
            realm_id = shard.realm.realm_id
            ctx = ApplyContext(realm_id, report.trigger, report.run_id, report.sync_id, now, report.verify_content)
            listings = listings or {}
            shadow = db.shadow() if fulls.names else nullcontext(None)
            # Exits in reverse: the connection closes (checkpointed) before the shadow replaces the mirror.
            # Phases: open (attach + migration), apply (rows; the change log's own share is change_log),
            # commit (anchor lines, COMMIT, CHECKPOINT, detach).
            clock = _PhaseClock(report, "open")
            with shadow as target, clock.until_exit("commit"), db.connect(target) as con:
                clock.switch("apply")
                transaction_per_unit = target is not None
                if not transaction_per_unit:
                    con.execute("BEGIN TRANSACTION")
                lane_times: LaneTimes | None = None
                try:
                    # One appender for all units: it carries the chain head from one unit to the next.
                    writer = change_log.ChangeLogAppender(con)
                    anchor = self._anchored(realm_id, con, writer.head)

                    entities = _EntityApplier(self, ctx, writer, states, cdc, incremental, fulls, full_reasons,
                                              report, listings, transaction_per_unit)  # fmt: skip
                    if transaction_per_unit and self.apply_lanes > 1:
                        lane_times = entities.in_lanes(con, specs, self.apply_lanes)
                    else:
                        for spec in specs:
                            entities.apply(con, spec, clock)
                    # Readers get a new data file exactly when rows changed (the change log says which).
                    wrote = writer.first_id is not None
                    if wrote and transaction_per_unit:
                        con.execute("BEGIN TRANSACTION")
                    if wrote:
                        record_data_version(con, "changes")
                    clock.switch("commit")
                    db.confirm_locked()  # still the only writer (an advisory lock can be lost with its session)
                    anchor.intent(writer.head, report.sync_id)  # before the commit (or the shadow's rename)
                    if wrote or not transaction_per_unit:
                        con.execute("COMMIT")
                except BaseException:
                    with suppress(duckdb.Error):  # nothing open between units; never mask the cause
                        con.execute("ROLLBACK")
                    raise
                state = read_state_rows(con)
                key = content_key(con)
                tables = mirror_tables(con)
            anchor.done()
            _committed_states[str(db.path)] = (db.left_as, state)
            clock.stop()
            change_log_seconds = writer.seconds
            if lane_times is not None:  # lanes overlap: each phase gets its share of their wall time
                report.add_time("apply", -lane_times.all_waiting)
                report.add_time("fetch", lane_times.all_waiting)
                busy = lane_times.busy_lane_seconds
                change_log_seconds = writer.seconds * lane_times.busy_wall / busy if busy else 0.0
            report.add_time("apply", -change_log_seconds)
            report.add_time("change_log", change_log_seconds)
            report.change_id_first = writer.first_id
            report.change_id_last = writer.head.change_id if writer.first_id else None
            report.chain_head_hash = writer.head.row_hash
            with report.timed("publish"):
                info = shard.snapshots.publish(db.path, state, content_key=key, tables=tables)
            report.snapshot_generation = info.generation
            report.snapshot_method = shard.snapshots.last_method

    def _anchored(self, realm_id: str, con: duckdb.DuckDBPyConnection, head: change_log.ChainHead) -> AnchoredCommit:
        """The head about to be extended must be the anchored one (see mirror/anchors.py)."""
        try:
            return AnchorStore(self.home, realm_id).begin(head, change_log.row_hash_reader(con))
        except AnchorMismatch as exc:
            raise SyncError(str(exc)) from None
