"""Runs the real ``FleetPolicy`` against a modelled fleet on a simulated clock.

One event queue (a heap of timed events: webhook arrivals, policy ticks, sync starts and ends) drives
everything; nothing loops over the fleet per simulated minute. Each tick asks the policy for batches,
queues them as Dagster runs for ``workers`` workers, and each run syncs its companies one after the
other: a CDC call (plus one per further 1,000 objects, plus a listing per entity outside CDC) through
a per-company limiter of 500 requests/min, then apply and publish. A sync covers its entities' changes up to the
moment of its CDC call and shows them in the mirror when it ends.

"Within window", honestly: a (company, entity) is within window at time t when the mirror reflects
every change QBO had at ``t - window``. So for each change u the pair is out of window from
``u + window`` until the sync that covers u ends; the simulator sums the union of those intervals.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from smartsync_pipeline.fleet.budget import LISTING_CALLS_PER_CHECK, BudgetPlan, plan_budget
from smartsync_pipeline.fleet.model import Fleet, FleetModel, draw_fleet
from smartsync_pipeline.fleet.policy import Batch, FleetPolicy, PolicyConfig, SyncOrder
from smartsync_pipeline.fleet.report import SimulationReport
from smartsync_pipeline.fleet.rules import DAY, HOUR, MINUTE, EntityRule, rules_from_registry

# Event kinds, in the order they are handled when they fall on the same instant.
SYNC_DONE, SYNC_START, WEBHOOK, TICK = 0, 1, 2, 3


@dataclass(frozen=True)
class SimulationSettings:
    """One simulation: fleet size, horizon, seed, workers, budget and policy knobs."""

    companies: int = 10_000
    hours: float = 24.0
    seed: int = 1
    workers: int = 8
    monthly_budget: float | None = None  # None: unmetered
    goal: float = 0.99
    tick_seconds: float = MINUTE
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    model: FleetModel = field(default_factory=FleetModel)

    def __post_init__(self) -> None:
        if self.companies < 1:
            raise ValueError("--companies must be at least 1")
        if not 0 < self.hours <= 24 * 31:
            raise ValueError("--hours must be more than 0 and at most 744 (31 days)")
        if self.workers < 1:
            raise ValueError("--workers must be at least 1")
        if self.tick_seconds <= 0:
            raise ValueError("the tick must be positive")


@dataclass
class _Pair:
    """Accounting for one (company, entity) that changed: how far the mirror has caught up."""

    times: list[float]
    seen: int = 0  # changes [0, seen) are in the mirror
    counted_until: float = 0.0  # out-of-window time is counted up to here
    out: float = 0.0  # seconds out of window so far
    late: int = 0  # changes shown after their window ended


@dataclass
class _Run:
    batch: Batch
    started: float
    index: int = 0


class FleetSimulation:
    """One simulation run; ``run()`` returns its report.

    Tests may pass their own ``fleet``, ``plan`` and ``start_covered`` (every company's covered time per
    entity at the start; default: spread over each entity's sweep interval, as in a steady state), and
    watch every batch the policy makes (``on_batch``) and every sync as it calls QBO (``on_sync``).
    """

    def __init__(
        self,
        settings: SimulationSettings,
        rules: Sequence[EntityRule] | None = None,
        *,
        plan: BudgetPlan | None = None,
        fleet: Fleet | None = None,
        start_covered: Mapping[str, float] | None = None,
        on_batch: Callable[[float, Batch], None] | None = None,
        on_sync: Callable[[float, SyncOrder, int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.rules = tuple(rules or rules_from_registry())
        self.horizon = settings.hours * HOUR
        self.fleet = fleet or draw_fleet(settings.model, self.rules, settings.companies, self.horizon, settings.seed)
        self.plan = plan or plan_budget(
            self.rules,
            companies=settings.companies,
            monthly_budget=settings.monthly_budget,
            activity=self.fleet.activity(settings.model),
            goal=settings.goal,
        )
        self.policy = FleetPolicy(self.plan, settings.policy)
        self.start_covered = start_covered
        self.on_batch = on_batch
        self.on_sync = on_sync
        self._rng = random.Random(settings.seed + 1)
        self._names = [f"c{k:06d}" for k in range(settings.companies)]
        self._index = {name: k for k, name in enumerate(self._names)}
        self._entity_index = {r.name: i for i, r in enumerate(self.rules)}
        self._pairs = {key: _Pair(times) for key, times in self.fleet.changes.items()}

    # -- the run

    def run(self) -> SimulationReport:
        began = time.perf_counter()
        settings, model = self.settings, self.settings.model
        phase = random.Random(settings.seed + 2)
        for name in self._names:
            if self.start_covered is not None:
                self.policy.add_company(name, self.start_covered)
                continue
            # Steady state: each company's last sweep lies somewhere within its interval.
            back = phase.random()
            self.policy.add_company(name, {t.name: -back * t.sweep for t in self.plan.timings})
        queue: list[tuple[float, int, int, object]] = []
        seq = 0

        def push(at: float, kind: int, payload: object) -> None:
            nonlocal seq
            seq += 1
            heapq.heappush(queue, (at, kind, seq, payload))

        for arrives, company, entity, changed_at in self.fleet.webhooks:
            push(arrives, WEBHOOK, (company, entity, changed_at))
        push(0.0, TICK, None)

        idle = settings.workers
        waiting: deque[Batch] = deque()
        in_flight: set[str] = set()
        calls_by_company = [0] * settings.companies
        calls_by_reason: dict[str, int] = {}
        windows: dict[int, deque[float]] = {}
        running: dict[int, int] = {}  # syncs (hence requests: a sync's calls are sequential) per company
        stats = {
            "orders": 0,
            "planned": 0,
            "runs": 0,
            "run_companies": 0,
            "max_batch": 0,
            "peak": 0,
            "throttled": 0,
            "concurrent": 0,
        }
        busy = 0.0

        def start(batch: Batch, now: float) -> None:
            nonlocal idle
            idle -= 1
            stats["runs"] += 1
            stats["run_companies"] += len(batch.orders)
            stats["max_batch"] = max(stats["max_batch"], len(batch.orders))
            push(now + model.run_overhead_seconds, SYNC_START, _Run(batch, now))

        while queue:
            now, kind, _, payload = heapq.heappop(queue)
            if now > self.horizon:
                break
            if kind == TICK:
                batches = self.policy.tick(now, max(0, idle - len(waiting)))
                for batch in batches:
                    for order in batch.orders:
                        if order.company in in_flight:
                            raise AssertionError(f"policy scheduled {order.company} while its sync was in flight")
                        in_flight.add(order.company)
                        stats["orders"] += 1
                        stats["planned"] += order.planned_calls
                    if self.on_batch:
                        self.on_batch(now, batch)
                    waiting.append(batch)
                while idle and waiting:
                    start(waiting.popleft(), now)
                push(now + settings.tick_seconds, TICK, None)
            elif kind == WEBHOOK:
                company, entity, changed_at = payload  # type: ignore[misc]
                self.policy.on_webhook(self._names[company], self.rules[entity].name, changed_at, now)
            elif kind == SYNC_START:
                run: _Run = payload  # type: ignore[assignment]
                order = run.batch.orders[run.index]
                k = self._index[order.company]
                running[k] = running.get(k, 0) + 1
                stats["concurrent"] = max(stats["concurrent"], running[k])
                if running[k] > model.concurrent_per_company:  # QBO would answer 429
                    stats["throttled"] += 1
                objects = sum(self._unseen_until(k, name, now) for name in order.cdc_entities)
                calls = (math.ceil(objects / model.cdc_max_objects) or 1) if order.cdc_entities else 0
                calls += LISTING_CALLS_PER_CHECK * len(order.query_entities)
                clock = now
                window = windows.setdefault(k, deque())
                for _ in range(calls):
                    while window and window[0] <= clock - MINUTE:
                        window.popleft()
                    if len(window) >= model.requests_per_minute:  # the client waits for the limiter
                        stats["throttled"] += 1
                        clock = window[0] + MINUTE
                        window.popleft()
                    window.append(clock)
                    stats["peak"] = max(stats["peak"], len(window))
                    clock += self._rng.lognormvariate(math.log(model.qbo_latency_median), model.qbo_latency_sigma)
                finished = (
                    clock + objects * (model.seconds_per_object + model.seconds_per_change) + model.sync_fixed_seconds
                )
                calls_by_company[k] += calls
                if self.on_sync:
                    self.on_sync(now, order, calls)
                calls_by_reason[order.reason] = calls_by_reason.get(order.reason, 0) + calls
                push(finished, SYNC_DONE, (run, now, calls))
            else:  # SYNC_DONE
                run, covered_at, calls = payload  # type: ignore[misc]
                order = run.batch.orders[run.index]
                k = self._index[order.company]
                running[k] -= 1
                for name in order.entities:
                    self._cover(k, name, covered_at, now)
                in_flight.discard(order.company)
                self.policy.on_sync_done(order.company, order.entities, covered_at, calls, now)
                run.index += 1
                if run.index < len(run.batch.orders):
                    push(now, SYNC_START, run)
                else:
                    busy += now - run.started
                    idle += 1
                    if waiting:
                        start(waiting.popleft(), now)

        # Runs still going at the horizon (each has exactly one event queued) are busy up to it.
        for _, kind, _, payload in queue:
            if kind in (SYNC_START, SYNC_DONE):
                going = payload if kind == SYNC_START else payload[0]  # type: ignore[index]
                busy += max(0.0, self.horizon - going.started)  # type: ignore[union-attr]
        out, late, judged = self._close()
        pairs = settings.companies * len(self.rules)
        days = self.horizon / DAY
        return SimulationReport(
            companies=settings.companies,
            hours=settings.hours,
            seed=settings.seed,
            workers=settings.workers,
            plan=self.plan,
            model={**model.as_dict(), "tick_seconds": settings.tick_seconds, **_policy_knobs(settings.policy)},
            within_window=1 - out / (pairs * self.horizon),
            within_window_changed=1 - out / (len(self._pairs) * self.horizon) if self._pairs else 1.0,
            changes=self.fleet.change_count,
            changes_in_window=1 - late / judged if judged else 1.0,
            calls_per_company_day=[c / days for c in calls_by_company],
            calls_by_reason=calls_by_reason,
            orders=stats["orders"],
            planned_calls=stats["planned"],
            peak_requests_per_minute=stats["peak"],
            max_concurrent_per_company=stats["concurrent"],
            throttled_calls=stats["throttled"],
            runs=stats["runs"],
            companies_in_runs=stats["run_companies"],
            max_companies_per_run=stats["max_batch"],
            worker_utilisation=min(1.0, busy / (settings.workers * self.horizon)),
            sweeps_deferred=self.policy.sweeps_deferred,
            events_deferred=self.policy.events_deferred,
            elapsed_seconds=time.perf_counter() - began,
        )

    # -- accounting

    def _unseen_until(self, company: int, entity: str, at: float) -> int:
        """Changes of (company, entity) not yet in the mirror that a CDC call at ``at`` returns."""
        pair = self._pairs.get((company, self._entity_index[entity]))
        if pair is None:
            return 0
        return bisect.bisect_right(pair.times, at) - pair.seen

    def _cover(self, company: int, entity: str, covered_at: float, shown_at: float) -> None:
        """The mirror shows (company, entity)'s changes up to ``covered_at`` from ``shown_at`` on."""
        index = self._entity_index[entity]
        pair = self._pairs.get((company, index))
        if pair is None:
            return
        upto = bisect.bisect_right(pair.times, covered_at)
        if upto <= pair.seen:
            return
        window = self.rules[index].window
        start = max(pair.times[pair.seen] + window, pair.counted_until)
        if shown_at > start:
            pair.out += shown_at - start
            pair.counted_until = shown_at
        pair.late += sum(1 for u in pair.times[pair.seen : upto] if shown_at > u + window)
        pair.seen = upto

    def _close(self) -> tuple[float, int, int]:
        """Totals at the horizon: out-of-window seconds (only pairs that changed can be out), changes
        shown late or still unseen past their window, and changes whose window ended by the horizon."""
        out = 0.0
        late = 0
        judged = 0
        for (_, index), pair in self._pairs.items():
            window = self.rules[index].window
            out += pair.out
            late += pair.late
            if pair.seen < len(pair.times):
                start = max(pair.times[pair.seen] + window, pair.counted_until)
                out += max(0.0, self.horizon - start)
                late += sum(1 for u in pair.times[pair.seen :] if u + window < self.horizon)
            judged += bisect.bisect_left(pair.times, self.horizon - window)
        return out, late, judged


def _policy_knobs(config: PolicyConfig) -> dict[str, float]:
    return {
        "margin_seconds": config.margin,
        "piggyback": config.piggyback,
        "max_batch": config.max_batch,
        "min_batch": config.min_batch,
    }


def simulate(settings: SimulationSettings, rules: Sequence[EntityRule] | None = None) -> SimulationReport:
    """Draw the fleet, plan the budget from its activity, run the policy; the report."""
    return FleetSimulation(settings, rules).run()
