"""The budget arithmetic: from a monthly call budget and a fleet size to sweep intervals per entity.

Webhooks make a sync happen when something changed; sweeps (a CDC call per company covering every
due entity) exist only to catch changes whose webhook never came. Their interval is the one lever the
budget moves, so the planner scales every entity's sweep interval with its freshness window,
``sweep = m * window`` (capped at one day for CDC entities: the daily safety CDC), and solves for
``m``. Entities outside QBO's CDC (query-only and singletons) are listed whole, one listing call each
(under 1,000 rows), so their sweeps cost a call per entity: their interval is ``m * window`` too (at
least the window, so past the warn window after which the engine lists them on a sweep) and not
capped at a day (a listing sees every change, however old, and a daily listing of each would cost
more than the whole CDC sweep).

* the goal: a change whose webhook is missed waits for the next sweep, so it is out of window for
  ``max(0, U - window)`` with ``U`` uniform in ``[0, sweep]``, i.e. ``(sweep - window)^2 / (2*sweep)``
  on average. The expected share of (company, entity) time out of window is at most
  ``miss * sum_e(changes_e * that_e) / (entities * day)``; this ignores that the next webhook sync
  of the same entity catches a missed change sooner, so it is an upper bound. ``m_goal`` is the largest
  ``m`` that keeps it within ``1 - goal``.
* the budget: calls per company per day = webhook syncs + ``day / shortest sweep`` (one CDC call
  covers every entity that is due) + one listing per check of an entity outside CDC. ``m_budget`` is the smallest ``m``
  whose cost fits the budget left after the reserve for on-demand reads.

The plan takes ``max(m_goal, m_budget)``: the cheapest schedule that meets the goal, or, when the
budget cannot pay for it, the most frequent one it can (and says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smartsync_pipeline.fleet.rules import DAY, MINUTE, EntityRule

DAYS_PER_MONTH = 30.0
ENTRY_TIER_CALLS = 500_000  # Intuit's entry tier: metered read calls per app per month, then blocked
ASSUMED_CALLS_PER_COMPANY_MONTH = 400  # what we assume a larger fleet buys (a paid tier)
LISTING_CALLS_PER_CHECK = 1  # the engine lists an entity outside CDC whole: one page under 1,000 rows
DEFAULT_HOLD = 10 * MINUTE


@dataclass(frozen=True)
class FleetActivity:
    """What the planner assumes about the fleet (in production: measured from the webhook inbox and
    past syncs; in the simulator: derived from the modelled fleet)."""

    changes_per_company_day: float = 15.0
    event_syncs_per_company_day: float = 8.0  # syncs webhooks cause, after coalescing
    webhook_miss_share: float = 0.02  # changes whose webhook is lost or retried hours later
    change_share: Mapping[str, float] | None = None  # share of changes per entity; None: even

    def __post_init__(self) -> None:
        if self.changes_per_company_day < 0 or self.event_syncs_per_company_day < 0:
            raise ValueError("activity rates cannot be negative")
        if not 0 <= self.webhook_miss_share <= 1:
            raise ValueError("webhook_miss_share is a fraction between 0 and 1")


@dataclass(frozen=True)
class EntityTiming:
    """How the policy treats one entity: check for missed changes every ``sweep`` seconds; let a
    webhook event wait up to ``hold`` seconds so that one call covers the company's other events."""

    rule: EntityRule
    sweep: float
    hold: float

    @property
    def name(self) -> str:
        return self.rule.name


@dataclass(frozen=True)
class CallEstimate:
    """Projected QBO calls per company per day, by cause."""

    events: float
    sweeps: float
    queries: float

    @property
    def total(self) -> float:
        return self.events + self.sweeps + self.queries


@dataclass(frozen=True)
class BudgetPlan:
    """The derived schedule and whether it meets the goal within the budget."""

    timings: tuple[EntityTiming, ...]
    companies: int
    monthly_budget: float | None
    reserve_share: float
    goal: float
    calls_per_company_day: CallEstimate
    predicted_within_window: float  # lower bound, from missed webhooks alone
    affordable: bool  # the budget pays for webhook syncs plus the daily safety CDC
    meets_goal: bool
    message: str
    _by_name: dict[str, EntityTiming] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {t.name: t for t in self.timings})

    def timing(self, entity: str) -> EntityTiming:
        return self._by_name[entity]

    @property
    def allowance_per_company_day(self) -> float | None:
        """Calls per company per day the budget leaves for syncs (after the reads reserve)."""
        if self.monthly_budget is None:
            return None
        return self.monthly_budget * (1 - self.reserve_share) / (self.companies * DAYS_PER_MONTH)

    @property
    def fleet_calls_per_month(self) -> float:
        return self.calls_per_company_day.total * self.companies * DAYS_PER_MONTH

    def as_dict(self) -> dict[str, Any]:
        calls = self.calls_per_company_day
        return {
            "monthly_budget": self.monthly_budget,
            "reserve_share": self.reserve_share,
            "allowance_per_company_day": _round(self.allowance_per_company_day),
            "goal": self.goal,
            "sweep_minutes": {t.name: round(t.sweep / MINUTE, 1) for t in self.timings},
            "hold_minutes": {t.name: round(t.hold / MINUTE, 1) for t in self.timings},
            "projected_calls_per_company_day": {
                "events": round(calls.events, 2),
                "sweeps": round(calls.sweeps, 2),
                "queries": round(calls.queries, 2),
                "total": round(calls.total, 2),
            },
            "projected_fleet_calls_per_month": round(self.fleet_calls_per_month),
            "predicted_within_window_at_least": round(self.predicted_within_window, 5),
            "affordable": self.affordable,
            "meets_goal": self.meets_goal,
            "message": self.message,
        }


def assumed_budget(companies: int) -> float:
    """The monthly budget the simulation assumes when none is given: the entry tier while it carries
    the fleet at 400 calls per company per month (up to 1,250 companies), else a paid tier of 400 calls
    per company per month (4 M for 10,000 companies)."""
    return float(max(ENTRY_TIER_CALLS, ASSUMED_CALLS_PER_COMPANY_MONTH * companies))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _sweeps(rules: Sequence[EntityRule], m: float) -> list[float]:
    return [min(m * r.window, DAY) if r.via_cdc else m * r.window for r in rules]


def _cost(rules: Sequence[EntityRule], sweeps: Sequence[float], activity: FleetActivity) -> CallEstimate:
    cdc = [s for r, s in zip(rules, sweeps, strict=True) if r.via_cdc]
    queries = sum(LISTING_CALLS_PER_CHECK * DAY / s for r, s in zip(rules, sweeps, strict=True) if not r.via_cdc)
    return CallEstimate(activity.event_syncs_per_company_day, DAY / min(cdc) if cdc else 0.0, queries)


def _share(rules: Sequence[EntityRule], activity: FleetActivity) -> list[float]:
    given = activity.change_share or {}
    if not given:
        return [1 / len(rules)] * len(rules)
    total = sum(given.get(r.name, 0.0) for r in rules) or 1.0
    return [given.get(r.name, 0.0) / total for r in rules]


def out_of_window_share(rules: Sequence[EntityRule], sweeps: Sequence[float], activity: FleetActivity) -> float:
    """Upper bound on the share of (company, entity) time out of window caused by missed webhooks."""
    out = 0.0
    for rule, sweep, share in zip(rules, sweeps, _share(rules, activity), strict=True):
        if sweep > rule.window:
            missed_per_day = activity.changes_per_company_day * share * activity.webhook_miss_share
            out += missed_per_day * (sweep - rule.window) ** 2 / (2 * sweep)
    return min(1.0, out / (len(rules) * DAY))


def _bisect(ok, lo: float, hi: float, *, want_largest: bool) -> float:
    """The largest (or smallest) m in [lo, hi] with ok(m), for a monotone ok; assumes one exists."""
    for _ in range(60):
        mid = (lo + hi) / 2
        if ok(mid) == want_largest:
            lo = mid
        else:
            hi = mid
    return lo if want_largest else hi


def _hours(seconds: float) -> str:
    minutes = round(seconds / MINUTE)
    return f"{minutes // 60}h {minutes % 60:02d}m"


def plan_budget(
    rules: Sequence[EntityRule],
    *,
    companies: int,
    monthly_budget: float | None,
    activity: FleetActivity | None = None,
    goal: float = 0.99,
    reserve_share: float = 0.2,
    hold: float = DEFAULT_HOLD,
) -> BudgetPlan:
    """Derive sweep intervals and holds for ``companies`` companies under ``monthly_budget`` calls
    (None: unmetered), keeping ``reserve_share`` of the budget for on-demand reads."""
    if not rules:
        raise ValueError("no entities to schedule")
    if companies < 1:
        raise ValueError("a fleet needs at least one company")
    if monthly_budget is not None and monthly_budget <= 0:
        raise ValueError("the monthly call budget must be positive")
    if not 0 < goal < 1:
        raise ValueError("the goal is a share of time strictly between 0 and 1")
    if not 0 <= reserve_share < 1:
        raise ValueError("reserve_share is a fraction in [0, 1)")
    activity = activity or FleetActivity()
    shortest = min(r.window for r in rules)
    m_max = DAY / shortest

    def meets(m: float) -> bool:
        return out_of_window_share(rules, _sweeps(rules, m), activity) <= 1 - goal

    # At m = 1 every entity is swept once per window, so a missed change is never out of window.
    m_goal = m_max if meets(m_max) else _bisect(meets, 1.0, m_max, want_largest=True)
    allowance = None if monthly_budget is None else monthly_budget * (1 - reserve_share) / (companies * DAYS_PER_MONTH)

    def fits(m: float) -> bool:
        return allowance is None or _cost(rules, _sweeps(rules, m), activity).total <= allowance

    affordable = fits(m_max)
    if not affordable:
        m = m_max
    elif fits(1.0):
        m = m_goal
    else:
        m = max(m_goal, _bisect(fits, 1.0, m_max, want_largest=False))
    sweeps = _sweeps(rules, m)
    # A held event never waits past its deadline (the policy enforces that); when the budget cannot
    # even pay for webhook syncs, every event waits for its deadline so one call covers the most.
    holds = [r.window if not affordable else min(hold * r.window / shortest, r.window) for r in rules]
    cost = _cost(rules, sweeps, activity)
    share_out = out_of_window_share(rules, sweeps, activity)
    meets_goal = affordable and share_out <= 1 - goal
    first = min(sweeps[i] for i, r in enumerate(rules) if r.window == shortest)
    if not affordable:
        need = _cost(rules, _sweeps(rules, m_max), activity).total * companies * DAYS_PER_MONTH / (1 - reserve_share)
        message = (
            f"budget too small: {allowance:.2f} calls/company/day left after the reads reserve, but webhook "
            f"syncs ({activity.event_syncs_per_company_day:.2f}) and the daily safety CDC alone need "
            f"{cost.total:.2f}; QBO would block the app. Events now wait for their deadlines; a budget of "
            f"at least {need:,.0f} calls/month is needed"
        )
    elif not meets_goal:
        message = (
            f"the budget allows sweeps only every {_hours(first)}; the {goal:.0%} goal needs every "
            f"{_hours(min(m_goal * shortest, DAY))}: at least {1 - share_out:.3%} of the time within window"
        )
    else:
        message = (
            f"sweep every {_hours(first)} for {_hours(shortest)} windows "
            f"({cost.total:.2f} calls/company/day"
            + (f" of {allowance:.2f} allowed" if allowance is not None else ", unmetered")
            + f"): at least {1 - share_out:.3%} within window"
        )
    return BudgetPlan(
        timings=tuple(EntityTiming(r, s, h) for r, s, h in zip(rules, sweeps, holds, strict=True)),
        companies=companies,
        monthly_budget=monthly_budget,
        reserve_share=reserve_share,
        goal=goal,
        calls_per_company_day=cost,
        predicted_within_window=1 - share_out,
        affordable=affordable,
        meets_goal=meets_goal,
        message=message,
    )
