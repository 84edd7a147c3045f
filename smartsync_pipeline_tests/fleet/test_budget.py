"""The budget arithmetic: sweep intervals derived from a monthly call budget, a fleet size and a goal."""

from __future__ import annotations

import pytest

from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.entities.registry import QUERY_ONLY, SINGLETON
from smartsync_pipeline.fleet.budget import (
    DAYS_PER_MONTH,
    FleetActivity,
    assumed_budget,
    out_of_window_share,
    plan_budget,
)
from smartsync_pipeline.fleet.rules import DAY, HOUR, MINUTE, EntityRule, rules_from_registry
from smartsync_pipeline_tests.fleet.scenarios import BILL, ITEM, TAX_CODE, VENDOR

RULES = (BILL, VENDOR, ITEM)
ACTIVITY = FleetActivity(changes_per_company_day=15, event_syncs_per_company_day=8, webhook_miss_share=0.02)


def test_rules_come_from_the_registry_with_the_fail_window() -> None:
    rules = rules_from_registry()
    assert [r.name for r in rules] == [e.name for e in ENTITIES]
    assert all(r.window == e.freshness.fail.total_seconds() for r, e in zip(rules, ENTITIES, strict=True))
    assert all(r.warn == e.freshness.warn.total_seconds() for r, e in zip(rules, ENTITIES, strict=True))
    # The registry's sync strategy decides: query-only entities and singletons need listings of their own.
    outside = {r.name for r in rules if not r.via_cdc}
    assert outside == {e.name for e in ENTITIES if e.strategy in (QUERY_ONLY, SINGLETON)}
    assert {"TimeActivity", "TaxAgency", "TaxCode", "TaxRate", "CompanyInfo", "Preferences"} <= outside
    assert {"Bill", "Invoice", "Account"}.isdisjoint(outside)


def test_the_registrys_plan_counts_a_listing_per_entity_outside_cdc() -> None:
    rules = rules_from_registry()
    plan = plan_budget(rules, companies=1000, monthly_budget=None, activity=ACTIVITY)
    listed = [t for t in plan.timings if not t.rule.via_cdc]
    assert len(listed) >= 6
    assert plan.calls_per_company_day.queries == pytest.approx(sum(DAY / t.sweep for t in listed))
    assert plan.calls_per_company_day.queries > 0


def test_the_out_of_window_bound_matches_the_formula_for_one_entity() -> None:
    # 10 changes a day, all webhooks missed, sweep 2 h, window 30 min: (7200-1800)^2 / (2*7200) s each.
    activity = FleetActivity(changes_per_company_day=10, event_syncs_per_company_day=0, webhook_miss_share=1.0)
    expected = 10 * (7200 - 1800) ** 2 / (2 * 7200) / DAY
    assert out_of_window_share([BILL], [7200.0], activity) == pytest.approx(expected)
    assert out_of_window_share([BILL], [1800.0], activity) == 0.0  # swept once per window: never out


def test_unmetered_with_perfect_webhooks_sweeps_once_a_day() -> None:
    plan = plan_budget(RULES, companies=1000, monthly_budget=None, activity=FleetActivity(webhook_miss_share=0.0))
    assert [t.sweep for t in plan.timings] == [DAY, DAY, DAY]  # only the daily safety CDC
    assert plan.meets_goal and plan.affordable and plan.predicted_within_window == 1.0
    assert plan.calls_per_company_day.sweeps == pytest.approx(1.0)


def test_more_missed_webhooks_mean_more_frequent_sweeps_scaled_by_window() -> None:
    sweeps = []
    for miss in (0.01, 0.05, 0.2):
        plan = plan_budget(RULES, companies=1000, monthly_budget=None, activity=FleetActivity(webhook_miss_share=miss))
        assert plan.meets_goal and plan.predicted_within_window >= 0.99 - 1e-9
        bill, vendor, item = (t.sweep for t in plan.timings)
        assert vendor == pytest.approx(min(4 * bill, DAY)) and item == DAY
        sweeps.append(bill)
    assert sweeps[0] > sweeps[1] > sweeps[2] >= BILL.window


def test_a_budget_that_fits_is_respected_and_the_plan_is_the_cheapest_meeting_the_goal() -> None:
    companies, budget = 10_000, 6_000_000
    plan = plan_budget(RULES, companies=companies, monthly_budget=budget, activity=ACTIVITY)
    assert plan.allowance_per_company_day == pytest.approx(budget * 0.8 / companies / DAYS_PER_MONTH)
    assert plan.meets_goal and plan.calls_per_company_day.total <= plan.allowance_per_company_day
    assert plan.fleet_calls_per_month <= budget * 0.8
    unmetered = plan_budget(RULES, companies=companies, monthly_budget=None, activity=ACTIVITY)
    assert [t.sweep for t in plan.timings] == [t.sweep for t in unmetered.timings]  # no need to spend more
    assert "within window" in plan.message and "allowed" in plan.message


def test_a_budget_short_of_the_goal_sweeps_as_often_as_it_can_and_says_so() -> None:
    goal_plan = plan_budget(RULES, companies=1000, monthly_budget=None, activity=ACTIVITY)
    # Enough for webhook syncs and the daily safety CDC, not for the sweeps the goal needs.
    per_day = ACTIVITY.event_syncs_per_company_day + 0.5 * goal_plan.calls_per_company_day.sweeps
    budget = per_day * 1000 * DAYS_PER_MONTH / 0.8
    plan = plan_budget(RULES, companies=1000, monthly_budget=budget, activity=ACTIVITY)
    assert plan.affordable and not plan.meets_goal
    assert plan.calls_per_company_day.total == pytest.approx(plan.allowance_per_company_day, rel=1e-6)
    assert plan.timing("Bill").sweep > goal_plan.timing("Bill").sweep
    assert plan.predicted_within_window < 0.99
    assert plan.message.startswith("the budget allows sweeps only every")


def test_a_budget_below_webhook_syncs_is_unaffordable_and_names_the_budget_needed() -> None:
    plan = plan_budget(RULES, companies=10_000, monthly_budget=500_000, activity=ACTIVITY)
    assert not plan.affordable and not plan.meets_goal
    assert plan.message.startswith("budget too small") and "QBO would block the app" in plan.message
    needed = (8 + 1) * 10_000 * DAYS_PER_MONTH / 0.8
    assert f"{needed:,.0f} calls/month" in plan.message
    assert [t.hold for t in plan.timings] == [r.window for r in RULES]  # every event waits for its deadline


def test_query_only_entities_are_priced_per_check() -> None:
    plan = plan_budget((BILL, TAX_CODE), companies=100, monthly_budget=None, activity=ACTIVITY)
    tax = plan.timing("TaxCode")
    assert plan.calls_per_company_day.queries == pytest.approx(DAY / tax.sweep)  # one listing per check


def test_a_listing_follows_the_window_but_is_not_capped_at_a_day() -> None:
    # Every webhook missed: the goal wants a sweep about every window (m close to 1).
    activity = FleetActivity(changes_per_company_day=1000, event_syncs_per_company_day=8, webhook_miss_share=1.0)
    often = plan_budget((BILL, TAX_CODE), companies=100, monthly_budget=None, activity=activity)
    m = often.timing("Bill").sweep / BILL.window
    assert 1 <= m < 1.05
    assert often.timing("TaxCode").sweep == pytest.approx(m * TAX_CODE.window)
    assert often.timing("TaxCode").sweep > TAX_CODE.warn  # past the warn window: the engine lists it
    # Perfect webhooks: CDC entities get the daily safety CDC; a listing may wait longer (m = day / 30 min).
    rare = plan_budget(
        (BILL, TAX_CODE), companies=100, monthly_budget=None, activity=FleetActivity(webhook_miss_share=0)
    )
    assert rare.timing("Bill").sweep == DAY
    assert rare.timing("TaxCode").sweep == pytest.approx(48 * DAY)
    assert rare.calls_per_company_day.queries == pytest.approx(1 / 48)


def test_holds_scale_with_the_window_and_never_pass_it() -> None:
    plan = plan_budget(RULES, companies=100, monthly_budget=None, activity=ACTIVITY)
    assert [t.hold for t in plan.timings] == [10 * MINUTE, 40 * MINUTE, 8 * HOUR]


def test_the_assumed_budget_is_the_entry_tier_for_small_fleets() -> None:
    assert assumed_budget(100) == assumed_budget(1000) == 500_000
    assert assumed_budget(10_000) == 4_000_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"companies": 0, "monthly_budget": None}, "at least one company"),
        ({"companies": 10, "monthly_budget": 0}, "must be positive"),
        ({"companies": 10, "monthly_budget": None, "goal": 1.0}, "strictly between"),
        ({"companies": 10, "monthly_budget": None, "reserve_share": 1.0}, "reserve_share"),
    ],
)
def test_bad_plans_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_budget(RULES, **kwargs)
    with pytest.raises(ValueError, match="under one minute"):
        EntityRule("Bill", 30.0)
