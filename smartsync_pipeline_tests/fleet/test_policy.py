"""The fleet policy's decisions on small hand-built scenarios (times in seconds, t = 0 a fresh mirror)."""

from __future__ import annotations

import pytest

from smartsync_pipeline.fleet.policy import Batch, FleetPolicy, PolicyConfig, SyncOrder, make_batches
from smartsync_pipeline.fleet.rules import HOUR, MINUTE
from smartsync_pipeline_tests.fleet.scenarios import BILL, PLAN, TAX_CODE, VENDOR, fixed_plan

FRESH = {"Bill": 0.0, "Vendor": 0.0, "Item": 0.0}


def orders(batches: list[Batch]) -> list[SyncOrder]:
    return [o for b in batches for o in b.orders]


def run_until(policy: FleetPolicy, start: float, end: float, step: float = MINUTE) -> tuple[float, list[SyncOrder]]:
    """Tick every ``step`` from ``start``; the first tick's time and orders that produce anything."""
    t = start
    while t <= end:
        found = orders(policy.tick(t, free_workers=4))
        if found:
            return t, found
        t += step
    return t, []


def test_a_webhook_syncs_exactly_the_named_entity_once_its_hold_is_over() -> None:
    policy = FleetPolicy(PLAN)
    policy.add_company("A", FRESH)
    policy.add_company("B", FRESH)
    assert policy.on_webhook("A", "Bill", changed_at=100.0, received_at=400.0)
    assert orders(policy.tick(400.0 + 10 * MINUTE - 1, free_workers=4)) == []  # still held
    [order] = orders(policy.tick(400.0 + 10 * MINUTE, free_workers=4))
    assert (order.company, order.cdc_entities, order.query_entities) == ("A", ("Bill",), ())
    assert order.reason == "webhook" and order.planned_calls == 1


def test_events_of_one_company_coalesce_into_one_call() -> None:
    policy = FleetPolicy(PLAN)
    policy.add_company("A", FRESH)
    for i, entity in enumerate(["Bill", "Vendor", "Bill"]):
        policy.on_webhook("A", entity, changed_at=100.0 + i * 60, received_at=400.0 + i * 60)
    t, [order] = run_until(policy, 400.0, HOUR)
    assert t == 400.0 + 10 * MINUTE  # the first event's hold decides
    assert order.cdc_entities == ("Bill", "Vendor") and order.planned_calls == 1


def test_a_late_webhook_syncs_at_once_when_its_deadline_has_passed() -> None:
    policy = FleetPolicy(PLAN)
    policy.add_company("A", {"Bill": 23.5 * HOUR, "Vendor": 23 * HOUR, "Item": MINUTE})
    # Item's hold is 8 h, but this change is 23 h 58 min old: the deadline (window - margin) is past.
    policy.on_webhook("A", "Item", changed_at=2 * MINUTE, received_at=24 * HOUR)
    [order] = orders(policy.tick(24 * HOUR, free_workers=4))
    assert order.cdc_entities == ("Item",) and order.reason == "webhook"


def test_a_webhook_for_a_change_already_in_the_mirror_is_dropped() -> None:
    policy = FleetPolicy(PLAN)
    policy.add_company("A", {"Bill": 1000.0, "Vendor": 1000.0, "Item": 1000.0})
    assert not policy.on_webhook("A", "Bill", changed_at=900.0, received_at=1200.0)
    assert not policy.on_webhook("A", "Estimate", changed_at=1100.0, received_at=1200.0)  # not scheduled
    assert not policy.on_webhook("Z", "Bill", changed_at=1100.0, received_at=1200.0)  # unknown company
    assert orders(policy.tick(2 * HOUR - 1, free_workers=4)) == []


def test_a_lost_webhook_is_caught_by_the_sweep_within_its_interval() -> None:
    policy = FleetPolicy(PLAN)
    policy.add_company("A", FRESH)
    # A Bill changes at t = 60 and its webhook never comes: the Bill sweep (every 2 h) catches it.
    t, [order] = run_until(policy, 0.0, 3 * HOUR)
    assert t == 2 * HOUR
    assert order.reason == "sweep" and "Bill" in order.cdc_entities
    policy.on_sync_done("A", order.entities, covered_at=t, calls=1, now=t + 5)
    assert policy.companies["A"].covered["Bill"] == t  # the change at 60 is in the mirror now


def test_a_webhook_sync_restarts_the_sweep_clock_so_busy_companies_never_sweep() -> None:
    policy = FleetPolicy(PLAN)
    policy.add_company("A", FRESH)
    policy.on_webhook("A", "Bill", changed_at=HOUR, received_at=HOUR + 300)
    t, [order] = run_until(policy, 0.0, 2 * HOUR)
    assert order.reason == "webhook" and t == HOUR + 300 + 10 * MINUTE
    policy.on_sync_done("A", order.entities, covered_at=t, calls=1, now=t + 3)
    # No sweep at 2 h: Bill was covered at t, so its next sweep is t + 2 h.
    t2, [sweep] = run_until(policy, t + MINUTE, 6 * HOUR)
    assert sweep.reason == "sweep" and t2 == pytest.approx(t + 2 * HOUR, abs=MINUTE)


def test_due_entities_ride_along_a_companys_call_for_free() -> None:
    policy = FleetPolicy(PLAN)
    # Vendor (8 h sweep) was covered 5 h ago: more than half way to its sweep, so it rides along.
    policy.add_company("A", {"Bill": 5 * HOUR, "Vendor": 0.0, "Item": 5 * HOUR})
    policy.on_webhook("A", "Bill", changed_at=5 * HOUR + 60, received_at=5 * HOUR + 400)
    _, [order] = run_until(policy, 5 * HOUR, 6 * HOUR)
    assert order.cdc_entities == ("Bill", "Vendor") and order.planned_calls == 1


def test_query_only_entities_cost_their_own_calls() -> None:
    plan = fixed_plan((BILL, 2 * HOUR, 10 * MINUTE), (TAX_CODE, 24 * HOUR, 8 * HOUR))
    policy = FleetPolicy(plan)
    policy.add_company("A", {"Bill": 0.0, "TaxCode": None})  # TaxCode never synced: due at once
    policy.add_company("B", {"Bill": -1.5 * HOUR, "TaxCode": None})  # Bill is also 3/4 of the way to a sweep
    a, b = orders(policy.tick(0.0, free_workers=1))
    assert a.reason == b.reason == "initial"
    assert (a.cdc_entities, a.query_entities, a.planned_calls) == ((), ("TaxCode",), 1)
    assert (b.cdc_entities, b.query_entities, b.planned_calls) == (("Bill",), ("TaxCode",), 1 + 1)


def test_an_entity_outside_cdc_never_rides_along_since_its_listing_costs_a_call() -> None:
    plan = fixed_plan((BILL, 2 * HOUR, 10 * MINUTE), (TAX_CODE, 24 * HOUR, 8 * HOUR))
    policy = FleetPolicy(plan)
    # TaxCode is 3/4 of the way to its listing, past the half-way mark at which a CDC entity rides along.
    policy.add_company("A", {"Bill": 0.0, "TaxCode": -16 * HOUR})
    policy.on_webhook("A", "Bill", changed_at=60.0, received_at=300.0)
    _, [order] = run_until(policy, 0.0, HOUR)
    assert (order.cdc_entities, order.query_entities, order.planned_calls) == (("Bill",), (), 1)
    policy.on_sync_done("A", order.entities, covered_at=900.0, calls=1, now=960.0)
    # Bill's sweeps (every 2 h) leave it alone; its own comes due 24 h after its last listing: 8 h.
    t = 960.0
    while True:
        t, [sweep] = run_until(policy, t + MINUTE, 9 * HOUR)
        policy.on_sync_done("A", sweep.entities, covered_at=t, calls=sweep.planned_calls, now=t + MINUTE)
        if sweep.query_entities:
            break
        assert sweep.cdc_entities == ("Bill",) and sweep.planned_calls == 1
    assert t == pytest.approx(8 * HOUR, abs=MINUTE) and sweep.query_entities == ("TaxCode",)


def test_a_company_is_never_scheduled_twice_and_events_during_its_sync_wait_for_it() -> None:
    policy = FleetPolicy(PLAN)
    policy.add_company("A", FRESH)
    policy.on_webhook("A", "Bill", changed_at=60.0, received_at=300.0)
    t, [order] = run_until(policy, 0.0, HOUR)
    # While the sync runs, another Bill changes (after the CDC call) and its webhook arrives.
    policy.on_webhook("A", "Bill", changed_at=t + 10, received_at=t + 200)
    assert orders(policy.tick(t + 30 * MINUTE, free_workers=4)) == []  # in flight: nothing new
    policy.on_sync_done("A", order.entities, covered_at=t + 5, calls=1, now=t + 40 * MINUTE)
    assert policy.companies["A"].pending == {"Bill": [(t + 10, t + 200)]}  # not covered by the call at t + 5
    [again] = orders(policy.tick(t + 40 * MINUTE, free_workers=4))  # its deadline has passed
    assert again.cdc_entities == ("Bill",)


def test_a_failed_sync_keeps_its_events_and_retries_after_the_backoff() -> None:
    policy = FleetPolicy(PLAN, PolicyConfig(retry_after=5 * MINUTE))
    policy.add_company("A", FRESH)
    policy.on_webhook("A", "Bill", changed_at=60.0, received_at=300.0)
    t, [order] = run_until(policy, 0.0, HOUR)
    policy.on_sync_failed("A", now=t + 10)
    assert orders(policy.tick(t + 10 + 5 * MINUTE - 1, free_workers=4)) == []
    [retry] = orders(policy.tick(t + 10 + 5 * MINUTE, free_workers=4))
    assert retry.cdc_entities == order.cdc_entities


def test_batches_are_bounded_cover_every_order_once_and_lead_with_the_most_urgent() -> None:
    config = PolicyConfig(max_batch=50, min_batch=10)
    many = [SyncOrder(f"c{i:03d}", ("Bill",), (), "sweep", due=float(1000 - i)) for i in range(120)]
    for free, expected_runs in [(0, 3), (1, 3), (3, 3), (8, 8), (100, 12)]:
        batches = make_batches(many, free, config)
        assert len(batches) == expected_runs, free
        assert all(1 <= len(b.orders) <= 50 for b in batches)
        assert sorted(c for b in batches for c in b.companies) == sorted(o.company for o in many)
        most_urgent = {o.company for o in sorted(many, key=lambda o: o.due)[:expected_runs]}
        assert {b.orders[0].company for b in batches} == most_urgent
    few = many[:7]
    assert len(make_batches(few, 8, config)) == 1  # 7 companies share one run rather than 7 runs
    assert make_batches([], 8, config) == []


def test_the_budget_guard_stops_sweeps_before_webhook_syncs_and_both_at_the_allowance() -> None:
    # 10 companies, a budget of 30 x 10 calls a month: an allowance of 10 calls a day.
    plan = fixed_plan((BILL, 2 * HOUR, 10 * MINUTE), (VENDOR, 8 * HOUR, 40 * MINUTE), companies=10, monthly_budget=300)
    policy = FleetPolicy(plan)
    for i in range(10):
        policy.add_company(f"c{i}", {"Bill": 0.0, "Vendor": 0.0})
    assert policy.daily_allowance == pytest.approx(10)
    swept = orders(policy.tick(2 * HOUR, free_workers=10))  # every company's sweep is due
    assert len(swept) == 9  # sweeps stop at 90 % of the allowance
    assert policy.spent_last_day(2 * HOUR) == 9
    for o in swept:
        policy.on_sync_done(o.company, o.entities, covered_at=2 * HOUR, calls=1, now=2 * HOUR + 5)
    policy.on_webhook("c1", "Bill", changed_at=2 * HOUR + 60, received_at=2 * HOUR + 300)
    policy.on_webhook("c2", "Bill", changed_at=2 * HOUR + 60, received_at=2 * HOUR + 300)
    webhooks = orders(policy.tick(2 * HOUR + 300 + 10 * MINUTE, free_workers=10))
    assert [o.reason for o in webhooks] == ["webhook"]  # one more call reaches the allowance
    assert policy.spent_last_day(3 * HOUR) == 10
    assert policy.events_deferred == 1 and policy.sweeps_deferred == 2
    [sent] = webhooks
    policy.on_sync_done(sent.company, sent.entities, covered_at=3 * HOUR, calls=1, now=3 * HOUR)
    # A day later the spend has rolled off: the held event goes, then sweeps up to 90 % again.
    later = orders(policy.tick(26 * HOUR + 1, free_workers=10))
    other = ({"c1", "c2"} - {sent.company}).pop()
    assert [(o.company, o.reason) for o in later if o.reason == "webhook"] == [(other, "webhook")]
    assert policy.spent_last_day(26 * HOUR + 1) == 9


def test_the_tick_touches_only_due_companies() -> None:
    """Cost follows the due companies, not the fleet: 10,000 fresh companies, one webhook, one order,
    and the heaps hold no more entries than companies plus events."""
    policy = FleetPolicy(fixed_plan((BILL, 2 * HOUR, 10 * MINUTE), (VENDOR, 8 * HOUR, 40 * MINUTE), companies=10_000))
    for i in range(10_000):
        policy.add_company(f"c{i:05d}", {"Bill": i * 0.1, "Vendor": 0.0})
    policy.on_webhook("c00042", "Vendor", changed_at=10.0, received_at=200.0)
    [order] = orders(policy.tick(200.0 + 40 * MINUTE, free_workers=4))
    assert order.company == "c00042" and order.cdc_entities == ("Vendor",)
    assert len(policy._sweeps) == 10_000 and len(policy._events) == 0
    assert policy.next_due() == pytest.approx(2 * HOUR)
