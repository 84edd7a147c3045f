"""The fleet scheduler's settings from the environment, and the budget plan they give.

``SMARTSYNC_MONTHLY_CALL_BUDGET`` is the app's metered QBO call budget per month (default: the entry
tier's 500,000, or 400 calls per company above 1,250 companies); ``SMARTSYNC_FLEET_WORKERS`` is how
many ``fleet_sync`` runs may be in flight at once (default 4). The plan is derived for the number of
connected companies with the default activity assumptions of ``fleet.budget.FleetActivity``.
"""

from __future__ import annotations

import os

from smartsync_pipeline.fleet.budget import BudgetPlan, assumed_budget, plan_budget
from smartsync_pipeline.fleet.rules import rules_from_registry

BUDGET_ENV = "SMARTSYNC_MONTHLY_CALL_BUDGET"
WORKERS_ENV = "SMARTSYNC_FLEET_WORKERS"
DEFAULT_WORKERS = 4


def _positive(name: str, value: str, kind: type) -> float:
    try:
        number = kind(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number") from None
    if number <= 0:
        raise ValueError(f"{name} must be positive, not {value}")
    return number


def monthly_budget(companies: int) -> float:
    raw = os.environ.get(BUDGET_ENV, "").strip()
    return _positive(BUDGET_ENV, raw, float) if raw else assumed_budget(companies)


def fleet_workers() -> int:
    raw = os.environ.get(WORKERS_ENV, "").strip()
    return int(_positive(WORKERS_ENV, raw, int)) if raw else DEFAULT_WORKERS


def fleet_plan(companies: int) -> BudgetPlan:
    """The budget plan for ``companies`` connected companies (at least one)."""
    companies = max(1, companies)
    return plan_budget(rules_from_registry(), companies=companies, monthly_budget=monthly_budget(companies))
