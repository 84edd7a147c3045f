"""The fleet policy: at each tick, which companies to sync, which of their entities, in which runs.

Rules, in order of precedence:

1. **Webhooks first.** A webhook event for (company, entity) makes that entity *pending*. The company
   is synced when its first pending event has waited ``hold`` (so one call covers the events that
   follow it) or when the event's deadline comes, whichever is first: ``changed_at + window - margin``,
   the margin leaving time for the tick, the run queue and the sync itself. An event for a change the
   mirror already covers is dropped.
2. **One CDC call per company.** Whatever triggers a company's sync, every CDC entity that is pending
   or at least ``piggyback`` of the way to its next sweep rides along: the call costs the same.
3. **Sweeps only where no sync came.** Each entity has a sweep interval (from ``BudgetPlan``); any
   sync that covers the entity, webhook-triggered or not, restarts it, so busy companies never sweep.
   The interval is capped at a day: the daily safety CDC.
4. **Entities outside CDC** (query-only ones and singletons, as the registry declares) cost a listing
   each, so they never ride along: they are listed when their own sweep is due or a webhook names them.
5. **Batches.** Due companies become runs of several companies each (``make_batches``): at most
   ``max_batch`` per run, spread over the free workers, never more runs than needed.
6. **Budget guard.** The calls of the last 24 hours never pass the daily allowance (the monthly
   budget less the reserve for on-demand reads, over 30 days): sweeps wait from 90 % of it, webhook
   syncs from 100 % (held events of a company coalesce into one call when they go). QBO blocks an app
   that passes its monthly quota; stale-but-flagged data is the lesser harm.

``FleetPolicy`` keeps the fleet's state with two heaps of due times (events, sweeps), so a tick costs
O(due companies x log fleet), not O(fleet). The decision functions below it are stateless, so Dagster
code can apply them to companies it loads on its own. Times are seconds (floats).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from smartsync_pipeline.fleet.budget import LISTING_CALLS_PER_CHECK, BudgetPlan
from smartsync_pipeline.fleet.rules import DAY, MINUTE

INF = math.inf
SWEEP_GUARD = 0.9  # sweeps wait at 90 % of the daily allowance: the rest is kept for webhook syncs


@dataclass(frozen=True)
class PolicyConfig:
    """Knobs of the policy that the budget does not decide."""

    margin: float = 5 * MINUTE  # kept free before a window ends: tick + run queue + sync
    piggyback: float = 0.5  # an entity rides along once this share of its sweep interval has passed
    max_batch: int = 50  # companies per run at most
    min_batch: int = 10  # batch rather than spread while there are fewer than this per free worker
    retry_after: float = 5 * MINUTE  # a failed company sync is tried again after this long

    def __post_init__(self) -> None:
        if not (1 <= self.min_batch <= self.max_batch):
            raise ValueError("need 1 <= min_batch <= max_batch")
        if not 0 < self.piggyback <= 1:
            raise ValueError("piggyback is a share in (0, 1]")
        if self.margin < 0 or self.retry_after <= 0:
            raise ValueError("margin must be >= 0 and retry_after > 0")


@dataclass(frozen=True)
class SyncOrder:
    """Sync these entities of one company now (one CDC call plus the query-only checks)."""

    company: str
    cdc_entities: tuple[str, ...]
    query_entities: tuple[str, ...]
    reason: str  # "webhook" | "initial" | "safety" | "sweep"
    due: float  # when its most urgent trigger came due

    @property
    def entities(self) -> tuple[str, ...]:
        return self.cdc_entities + self.query_entities

    @property
    def planned_calls(self) -> int:
        """QBO calls this order makes when no CDC response comes back full (>1,000 objects)."""
        return (1 if self.cdc_entities else 0) + LISTING_CALLS_PER_CHECK * len(self.query_entities)


@dataclass(frozen=True)
class Batch:
    """One Dagster run: the orders of several companies, executed one after the other."""

    orders: tuple[SyncOrder, ...]

    @property
    def companies(self) -> tuple[str, ...]:
        return tuple(o.company for o in self.orders)

    @property
    def planned_calls(self) -> int:
        return sum(o.planned_calls for o in self.orders)


@dataclass
class CompanyState:
    """What the policy knows about one company: per entity, the QBO time up to which the mirror holds
    every change (None: never synced), and the webhook events not yet covered ``(changed_at,
    received_at)``."""

    company: str
    covered: dict[str, float | None]
    pending: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    in_flight: bool = False
    planned_calls: int = 0  # of the order in flight
    not_before: float = -INF  # after a failure
    event_version: int = 0
    sweep_version: int = 0


# ---- stateless decisions -----------------------------------------------------------------------


def event_due(state: CompanyState, plan: BudgetPlan, config: PolicyConfig) -> float:
    """When the company's pending webhook events must be synced (INF: none pending)."""
    due = INF
    for name, events in state.pending.items():
        timing = plan.timing(name)
        for changed_at, received_at in events:
            due = min(due, received_at + timing.hold, changed_at + timing.rule.window - config.margin)
    return max(due, state.not_before)


def sweep_due(state: CompanyState, plan: BudgetPlan) -> float:
    """When the company's next sweep is due: the earliest entity past its sweep interval."""
    due = INF
    for name, covered in state.covered.items():
        if covered is None:
            return state.not_before
        due = min(due, covered + plan.timing(name).sweep)
    return max(due, state.not_before)


def order_for(state: CompanyState, now: float, plan: BudgetPlan, config: PolicyConfig) -> SyncOrder | None:
    """The sync this company needs at ``now``, or None when nothing is due."""
    wanted: list[str] = []
    reason = "sweep"
    due = INF
    for timing in plan.timings:
        name = timing.name
        covered = state.covered.get(name, -INF)
        if name in state.pending:
            wanted.append(name)
            reason = "webhook"
            continue
        if covered is None:
            wanted.append(name)
            due = min(due, now)
            if reason != "webhook":
                reason = "initial"
        elif now - covered >= (config.piggyback if timing.rule.via_cdc else 1.0) * timing.sweep:
            wanted.append(name)
            due = min(due, covered + timing.sweep)
            if reason == "sweep" and now - covered >= DAY:
                reason = "safety"
    if not wanted:
        return None
    due = min(due, event_due(state, plan, config))
    cdc = tuple(n for n in wanted if plan.timing(n).rule.via_cdc)
    query = tuple(n for n in wanted if not plan.timing(n).rule.via_cdc)
    return SyncOrder(state.company, cdc, query, reason, due)


def make_batches(orders: Sequence[SyncOrder], free_workers: int, config: PolicyConfig) -> list[Batch]:
    """Group orders into runs: the most urgent first in every run, at most ``max_batch`` companies per
    run, one run per free worker while each still gets ``min_batch`` companies, and one queued run (or
    as few as ``max_batch`` allows) when no worker is free."""
    if not orders:
        return []
    ordered = sorted(orders, key=lambda o: (o.due, o.company))
    n = len(ordered)
    runs = max(1, min(free_workers, math.ceil(n / config.min_batch)), math.ceil(n / config.max_batch))
    return [Batch(tuple(ordered[i::runs])) for i in range(runs)]


# ---- the stateful policy -------------------------------------------------------------------------


class FleetPolicy:
    """The fleet's scheduling state and the tick that turns it into batches."""

    def __init__(self, plan: BudgetPlan, config: PolicyConfig | None = None) -> None:
        self.plan = plan
        self.config = config or PolicyConfig()
        self.companies: dict[str, CompanyState] = {}
        self._events: list[tuple[float, int, str]] = []  # (due, version, company)
        self._sweeps: list[tuple[float, int, str]] = []
        self._spend: deque[tuple[float, int]] = deque()  # (time, calls) of the last 24 h
        self._spent = 0
        allowance = plan.allowance_per_company_day
        self.daily_allowance = None if allowance is None else allowance * plan.companies
        self.sweeps_deferred = 0  # ticks on which the budget guard held due sweeps back
        self.events_deferred = 0  # ... and due webhook syncs

    # -- fleet membership

    def add_company(
        self,
        company: str,
        covered: Mapping[str, float | None] | None = None,
        *,
        in_flight: bool = False,
        not_before: float = -INF,
    ) -> None:
        """Start scheduling ``company``; ``covered`` per entity as in ``CompanyState`` (missing: never).
        ``in_flight``: a sync of it is already running elsewhere; ``not_before``: backing off."""
        given = covered or {}
        state = CompanyState(
            company, {t.name: given.get(t.name) for t in self.plan.timings}, in_flight=in_flight, not_before=not_before
        )
        self.companies[company] = state
        if not in_flight:
            self._push_sweep(state)

    def remove_company(self, company: str) -> None:
        self.companies.pop(company, None)  # its heap entries are skipped when popped

    # -- inputs

    def on_webhook(self, company: str, entity: str, changed_at: float, received_at: float) -> bool:
        """Record a webhook event; False when it needs no sync (unknown, or already covered)."""
        state = self.companies.get(company)
        if state is None or entity not in state.covered:
            return False
        covered = state.covered[entity]
        if covered is not None and changed_at <= covered:
            return False
        state.pending.setdefault(entity, []).append((changed_at, received_at))
        if not state.in_flight:
            self._push_event(state)
        return True

    def on_sync_done(self, company: str, entities: Iterable[str], covered_at: float, calls: int, now: float) -> None:
        """A sync of ``entities`` finished: the mirror now holds their changes up to ``covered_at`` (the
        time of its CDC call). ``calls`` corrects the spend ledger when narrowing needed more calls."""
        state = self.companies.get(company)
        if state is None:
            return
        for name in entities:
            if name not in state.covered:
                continue
            before = state.covered[name]
            state.covered[name] = covered_at if before is None else max(before, covered_at)
            events = [e for e in state.pending.get(name, ()) if e[0] > covered_at]
            if events:
                state.pending[name] = events
            else:
                state.pending.pop(name, None)
        state.in_flight = False
        self._record_spend(now, calls - state.planned_calls)
        state.planned_calls = 0
        self._reschedule(state)

    def on_sync_failed(self, company: str, now: float) -> None:
        """The company's sync failed: keep everything pending and try again after ``retry_after``."""
        state = self.companies.get(company)
        if state is None:
            return
        state.in_flight = False
        state.planned_calls = 0  # its planned calls stay spent: a failed sync usually made them
        state.not_before = now + self.config.retry_after
        self._reschedule(state)

    # -- the tick

    def tick(self, now: float, free_workers: int) -> list[Batch]:
        """The runs to start at ``now``: every company whose events or sweep came due, as far as the
        budget guard lets them."""
        orders: list[SyncOrder] = []
        self._trim_spend(now)
        allowance = self.daily_allowance
        if not self._take(self._events, "event_version", now, orders, allowance):
            self.events_deferred += 1
        sweep_limit = None if allowance is None else allowance * SWEEP_GUARD
        if not self._take(self._sweeps, "sweep_version", now, orders, sweep_limit):
            self.sweeps_deferred += 1
        return make_batches(orders, free_workers, self.config)

    def record_spend(self, at: float, calls: int) -> None:
        """Calls made at ``at`` outside this instance's orders (e.g. restored from a sensor cursor)."""
        self._record_spend(at, calls)

    def spend_ledger(self, now: float) -> list[tuple[float, int]]:
        """The (time, calls) entries of the last 24 hours, oldest first."""
        self._trim_spend(now)
        return list(self._spend)

    def spent_last_day(self, now: float) -> int:
        """Calls issued in the 24 hours before ``now`` (planned, corrected by what syncs reported)."""
        self._trim_spend(now)
        return self._spent

    def next_due(self) -> float:
        """The earliest time anything is due (INF: nothing scheduled); stale heap entries may make it early."""
        return min(self._events[0][0] if self._events else INF, self._sweeps[0][0] if self._sweeps else INF)

    # -- internals

    def _take(
        self, heap: list[tuple[float, int, str]], version: str, now: float, orders: list[SyncOrder], limit: float | None
    ) -> bool:
        """Pop every company due on ``heap`` into ``orders``; False when the spend limit stopped it."""
        while heap and heap[0][0] <= now:
            if limit is not None and self._spent >= limit:
                return False
            _, seen, company = heapq.heappop(heap)
            state = self.companies.get(company)
            if state is None or state.in_flight or seen != getattr(state, version):
                continue
            order = order_for(state, now, self.plan, self.config)
            if order is None:
                continue
            state.in_flight = True  # also blocks the other heap's entry for this company
            state.planned_calls = order.planned_calls
            state.event_version += 1
            state.sweep_version += 1
            orders.append(order)
            self._record_spend(now, order.planned_calls)
        return True

    def _push_event(self, state: CompanyState) -> None:
        state.event_version += 1
        due = event_due(state, self.plan, self.config)
        if due < INF:
            heapq.heappush(self._events, (due, state.event_version, state.company))

    def _push_sweep(self, state: CompanyState) -> None:
        state.sweep_version += 1
        heapq.heappush(self._sweeps, (sweep_due(state, self.plan), state.sweep_version, state.company))

    def _reschedule(self, state: CompanyState) -> None:
        self._push_event(state)
        self._push_sweep(state)

    def _record_spend(self, now: float, calls: int) -> None:
        if calls:
            self._spend.append((now, calls))
            self._spent += calls

    def _trim_spend(self, now: float) -> None:
        while self._spend and self._spend[0][0] <= now - DAY:
            self._spent -= self._spend.popleft()[1]
