"""The fleet simulator: its within-window measure on hand-built fleets, and its invariants on drawn ones."""

from __future__ import annotations

import itertools

import pytest

from smartsync_pipeline.fleet.model import Fleet, FleetModel
from smartsync_pipeline.fleet.policy import Batch, SyncOrder
from smartsync_pipeline.fleet.rules import DAY, HOUR, MINUTE
from smartsync_pipeline.fleet.simulator import FleetSimulation, SimulationSettings, simulate
from smartsync_pipeline_tests.fleet.scenarios import BILL, fixed_plan

FOUR_HOURS = SimulationSettings(companies=1, hours=4, seed=3, workers=1)
ONE_BILL_PLAN = fixed_plan((BILL, 2 * HOUR, 10 * MINUTE))  # Bill: window 30 min, swept every 2 h


def one_company(changes: list[float], webhooks: list[tuple[float, float]]) -> FleetSimulation:
    """One company with one entity (Bill), fresh at t = 0; ``webhooks`` as (arrives, changed_at)."""
    fleet = Fleet(
        rules=(BILL,),
        rates_per_day=[1.0],
        changes={(0, 0): changes},
        webhooks=[(arrives, 0, 0, changed) for arrives, changed in webhooks],
        horizon=4 * HOUR,
    )
    return FleetSimulation(FOUR_HOURS, (BILL,), plan=ONE_BILL_PLAN, fleet=fleet, start_covered={"Bill": 0.0})


def out_seconds(within_window: float, pairs: int = 1, horizon: float = 4 * HOUR) -> float:
    return (1 - within_window) * pairs * horizon


def test_a_change_with_a_lost_webhook_is_out_of_window_from_change_plus_window_until_the_sweep_shows_it() -> None:
    syncs: list[tuple[float, SyncOrder, int]] = []
    sim = one_company([100.0], [])
    sim.on_sync = lambda at, order, calls: syncs.append((at, order, calls))
    report = sim.run()
    [(started, order, calls)] = syncs
    assert order.reason == "sweep" and calls == 1
    assert started == 2 * HOUR + FleetModel().run_overhead_seconds  # the sweep tick at 2 h, then the run
    # Out of window from 100 + 1800 until the sync ends (its CDC latency + apply after `started`).
    out = out_seconds(report.within_window)
    assert started + 0.7 - 1900 < out < started + 10 - 1900
    assert report.changes_in_window == 0.0 and report.changes == 1


def test_out_of_window_time_is_the_union_of_the_changes_intervals_not_their_sum() -> None:
    alone = one_company([100.0], []).run()
    # A second unseen change (at 1000) adds nothing: its interval [2800, end) lies inside [1900, end).
    # A third one at 10,000 is still unseen at the horizon (4 h): out from 11,800 to 14,400.
    three = one_company([100.0, 1000.0, 10_000.0], []).run()
    extra = out_seconds(three.within_window) - out_seconds(alone.within_window)
    assert extra == pytest.approx(14_400 - 11_800, abs=1)  # horizon - (10,000 + window); same sync times
    assert three.changes_in_window == 0.0


def test_a_change_whose_webhook_arrives_is_synced_within_its_window() -> None:
    syncs: list[tuple[float, str]] = []
    sim = one_company([100.0], [(400.0, 100.0)])
    sim.on_sync = lambda at, order, calls: syncs.append((at, order.reason))
    report = sim.run()
    assert report.within_window == 1.0 and report.changes_in_window == 1.0
    overhead = FleetModel().run_overhead_seconds
    # Held 10 min from its arrival (first tick at or after 1,000 s is 1,020 s), then the run starts.
    # The webhook sync restarted the sweep clock: the next sweep is 2 h after it, not at 2 h.
    [(webhook_at, first), (sweep_at, second)] = syncs
    assert (first, second) == ("webhook", "sweep")
    assert webhook_at == 1020 + overhead
    assert webhook_at + 2 * HOUR <= sweep_at - overhead <= webhook_at + 2 * HOUR + MINUTE


def test_calls_counted_are_exactly_the_calls_of_the_orders_the_policy_made() -> None:
    batches: list[tuple[float, Batch]] = []
    synced: list[tuple[SyncOrder, int]] = []
    settings = SimulationSettings(companies=300, hours=12, seed=5, workers=2)
    sim = FleetSimulation(
        settings,
        on_batch=lambda at, batch: batches.append((at, batch)),
        on_sync=lambda at, order, calls: synced.append((order, calls)),
    )
    report = sim.run()
    ordered = {id(o): (at, o) for at, b in batches for o in b.orders}
    assert report.orders == len(ordered) > 300
    assert all(id(order) in ordered for order, _ in synced)
    # No CDC answer here reaches 1,000 objects, so every sync made exactly its planned calls.
    assert all(calls == order.planned_calls for order, calls in synced)
    assert report.total_calls == sum(calls for _, calls in synced) == sum(report.calls_by_reason.values())
    assert sum(report.calls_per_company_day) * settings.hours / 24 == pytest.approx(report.total_calls)
    # Orders that never started are the ones batched at the very end.
    started = {id(o) for o, _ in synced}
    unstarted = [at for key, (at, _) in ordered.items() if key not in started]
    assert all(at >= settings.hours * HOUR - 5 * MINUTE for at in unstarted)
    assert report.planned_calls == report.total_calls + sum(
        o.planned_calls for key, (_, o) in ordered.items() if key not in started
    )
    assert sim.policy.spent_last_day(settings.hours * HOUR) == report.planned_calls  # the guard's ledger agrees
    assert all(len(b.orders) <= settings.policy.max_batch for _, b in batches)
    assert report.max_companies_per_run == max(len(b.orders) for _, b in batches)


def test_within_window_is_exactly_one_with_an_unlimited_budget_and_perfect_webhooks() -> None:
    model = FleetModel(webhook_lost=0.0, webhook_late=0.0)
    report = simulate(SimulationSettings(companies=2000, hours=24, seed=11, model=model))
    assert report.changes > 20_000
    assert report.within_window == 1.0 and report.changes_in_window == 1.0
    assert report.plan.meets_goal and all(t.sweep == DAY for t in report.plan.timings if t.rule.via_cdc)
    # Entities outside CDC are listed when a webhook names them, else once per 48 windows (m = day / 30 min).
    listed = [t for t in report.plan.timings if not t.rule.via_cdc]
    assert listed and all(t.sweep == pytest.approx(48 * t.rule.window) for t in listed)


def test_within_window_degrades_as_webhooks_are_lost() -> None:
    # A fixed budget that pays for webhook syncs, the daily safety CDC and the listings of the entities
    # outside CDC, but not for the sweeps the goal needs at higher loss.
    figures = []
    for lost in (0.0, 0.05, 0.2, 0.5):
        settings = SimulationSettings(
            companies=1000,
            hours=24,
            seed=7,
            monthly_budget=400_000,
            model=FleetModel(webhook_lost=lost, webhook_late=0),
        )
        report = simulate(settings)
        figures.append(report.within_window)
        assert report.plan.affordable and report.plan.meets_goal == (lost == 0)
        assert report.fleet_calls_per_month <= 400_000
    assert figures[0] == 1.0
    assert figures[0] > figures[1] > figures[2] > figures[3]


def test_within_window_degrades_as_the_budget_shrinks_and_the_budget_is_never_exceeded() -> None:
    model = FleetModel(webhook_lost=0.05, webhook_late=0.0)
    figures = []
    for budget in (None, 400_000, 150_000, 50_000, 15_000):
        report = simulate(SimulationSettings(companies=1000, hours=24, seed=7, monthly_budget=budget, model=model))
        figures.append(report.within_window)
        if budget is not None:
            assert report.fleet_calls_per_month <= budget * (1 - report.plan.reserve_share) * 1.001
    assert all(a >= b for a, b in itertools.pairwise(figures))
    # (33 entities, most of them changing rarely: the share stays high, the drop is what matters.)
    assert figures[0] >= 0.99 and figures[-1] <= figures[0] - 0.03


def test_a_seed_reproduces_the_figures() -> None:
    settings = SimulationSettings(companies=200, hours=6, seed=9)
    first, second = simulate(settings).as_dict(), simulate(settings).as_dict()
    first.pop("elapsed_seconds"), second.pop("elapsed_seconds")
    assert first == second
    other = simulate(SimulationSettings(companies=200, hours=6, seed=10)).as_dict()
    assert other["changes"] != first["changes"]


def test_the_policy_keeps_within_qbos_per_company_limits() -> None:
    report = simulate(SimulationSettings(companies=1000, hours=24, seed=2))
    assert report.throttled_calls == 0
    assert 1 <= report.peak_requests_per_minute <= 500
    assert report.max_concurrent_per_company == 1
    assert report.within_window >= 0.99
