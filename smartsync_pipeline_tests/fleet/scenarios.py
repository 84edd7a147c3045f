"""Hand-built plans for policy and simulator scenarios: explicit timings, no budget arithmetic."""

from __future__ import annotations

from smartsync_pipeline.fleet.budget import BudgetPlan, CallEstimate, EntityTiming
from smartsync_pipeline.fleet.rules import HOUR, MINUTE, EntityRule

BILL = EntityRule("Bill", 30 * MINUTE)
VENDOR = EntityRule("Vendor", 2 * HOUR)
ITEM = EntityRule("Item", 24 * HOUR)
TAX_CODE = EntityRule("TaxCode", 24 * HOUR, via_cdc=False)


def fixed_plan(
    *timings: tuple[EntityRule, float, float], companies: int = 1, monthly_budget: float | None = None
) -> BudgetPlan:
    """A plan with the given ``(rule, sweep, hold)`` per entity."""
    return BudgetPlan(
        timings=tuple(EntityTiming(rule, sweep, hold) for rule, sweep, hold in timings),
        companies=companies,
        monthly_budget=monthly_budget,
        reserve_share=0.0,
        goal=0.99,
        calls_per_company_day=CallEstimate(0.0, 0.0, 0.0),
        predicted_within_window=1.0,
        affordable=True,
        meets_goal=True,
        message="fixed for a test",
    )


# Bill swept every 2 h and held 10 min; Vendor every 8 h, held 40 min; Item every 24 h, held 8 h.
PLAN = fixed_plan(
    (BILL, 2 * HOUR, 10 * MINUTE),
    (VENDOR, 8 * HOUR, 40 * MINUTE),
    (ITEM, 24 * HOUR, 8 * HOUR),
)
