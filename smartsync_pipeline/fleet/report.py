"""What a fleet simulation measured, as one JSON-ready record (``smartsync fleet simulate --json``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from smartsync_pipeline.fleet.budget import DAYS_PER_MONTH, BudgetPlan


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[rank]


@dataclass
class SimulationReport:
    """Figures of one simulated run of the fleet policy."""

    companies: int
    hours: float
    seed: int
    workers: int
    plan: BudgetPlan
    model: dict[str, Any]
    within_window: float  # share of (company, entity) time with no unseen change older than its window
    within_window_changed: float  # the same over the (company, entity) pairs that changed at all
    changes: int
    changes_in_window: float  # share of changes reflected within their window (of those whose window ended)
    calls_per_company_day: list[float] = field(repr=False)
    calls_by_reason: dict[str, int] = field(default_factory=dict)
    orders: int = 0
    planned_calls: int = 0
    peak_requests_per_minute: int = 0
    max_concurrent_per_company: int = 0
    throttled_calls: int = 0
    runs: int = 0  # Dagster runs started
    companies_in_runs: int = 0  # company syncs in the runs started
    max_companies_per_run: int = 0
    worker_utilisation: float = 0.0
    sweeps_deferred: int = 0  # policy ticks on which the budget guard held due sweeps back
    events_deferred: int = 0  # ... and due webhook syncs
    elapsed_seconds: float = 0.0

    @property
    def total_calls(self) -> int:
        return sum(self.calls_by_reason.values())

    @property
    def fleet_calls_per_month(self) -> float:
        return self.total_calls / (self.hours / 24) * DAYS_PER_MONTH

    @property
    def runs_per_hour(self) -> float:
        return self.runs / self.hours

    def as_dict(self) -> dict[str, Any]:
        calls = self.calls_per_company_day
        budget = self.plan.monthly_budget
        return {
            "companies": self.companies,
            "hours": self.hours,
            "seed": self.seed,
            "workers": self.workers,
            "within_window": round(self.within_window, 6),
            "within_window_changed_pairs": round(self.within_window_changed, 6),
            "changes": self.changes,
            "changes_in_window": round(self.changes_in_window, 6),
            "calls_per_company_day": {
                "mean": round(sum(calls) / len(calls), 3) if calls else 0.0,
                "p50": round(percentile(calls, 0.5), 3),
                "p99": round(percentile(calls, 0.99), 3),
                "max": round(max(calls, default=0.0), 3),
            },
            "calls": self.total_calls,
            "calls_by_reason": dict(sorted(self.calls_by_reason.items())),
            "fleet_calls_per_month": round(self.fleet_calls_per_month),
            "monthly_budget": budget,
            "budget_share_used": round(self.fleet_calls_per_month / budget, 4) if budget else None,
            "peak_requests_per_minute_per_company": self.peak_requests_per_minute,
            "max_concurrent_requests_per_company": self.max_concurrent_per_company,
            "throttled_calls": self.throttled_calls,
            "syncs": self.orders,
            "dagster_runs": self.runs,
            "dagster_runs_per_hour": round(self.runs_per_hour, 1),
            "companies_per_run": {
                "mean": round(self.companies_in_runs / self.runs, 2) if self.runs else 0.0,
                "max": self.max_companies_per_run,
            },
            "worker_utilisation": round(self.worker_utilisation, 4),
            "ticks_budget_held_back": {"sweeps": self.sweeps_deferred, "webhook_syncs": self.events_deferred},
            "budget_plan": self.plan.as_dict(),
            "model": self.model,
            "elapsed_seconds": round(self.elapsed_seconds, 2),
        }
