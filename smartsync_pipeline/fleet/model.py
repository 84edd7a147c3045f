"""The modelled fleet the simulator runs the policy against: who changes what and when, how webhooks
arrive, how long QBO and a sync take. Every number here is an assumption, stated once.

Activity (changes per company per day) is lognormal with median 2 and sigma = 2: about a third of the
companies change less than once a day, the mean is ~15, 2.5 % change more than 100 times a day and
about one in a thousand more than 1,000 (capped at 5,000). Companies sit in US time zones (UTC-8 to
UTC-5); a change is ten times as likely in local business hours (08-18) as at night. A change's
entity is drawn with weight sqrt(day / window): entities with short windows (transactions) change most.
Webhooks arrive 3-10 min after the change; 1 % are lost and 1 % come only with Intuit's retries,
20 min to 6 h later.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from smartsync_pipeline.fleet.budget import DEFAULT_HOLD, FleetActivity
from smartsync_pipeline.fleet.rules import DAY, HOUR, MINUTE, EntityRule


@dataclass(frozen=True)
class FleetModel:
    """Assumptions about the fleet, the webhooks, QBO and the workers."""

    activity_median_per_day: float = 2.0
    activity_sigma: float = 2.0
    activity_cap_per_day: float = 5000.0
    utc_offsets_hours: tuple[int, ...] = (-8, -7, -6, -5)
    business_hours: tuple[int, int] = (8, 18)
    night_weight: float = 0.1  # relative rate of change outside business hours
    webhook_delay: tuple[float, float] = (3 * MINUTE, 10 * MINUTE)
    webhook_lost: float = 0.01
    webhook_late: float = 0.01
    webhook_late_delay: tuple[float, float] = (20 * MINUTE, 6 * HOUR)
    qbo_latency_median: float = 0.4  # seconds per call
    qbo_latency_sigma: float = 0.5
    seconds_per_object: float = 0.0005  # response transfer + parsing
    sync_fixed_seconds: float = 0.7  # apply + publish of a per-company mirror
    seconds_per_change: float = 0.002
    run_overhead_seconds: float = 4.0  # launching a Dagster run process and loading the code
    cdc_max_objects: int = 1000  # a fuller CDC answer must be narrowed: one more call per 1,000
    requests_per_minute: int = 500  # QBO's per-company limit, enforced by the simulated client
    concurrent_per_company: int = 10

    def __post_init__(self) -> None:
        for name in ("webhook_lost", "webhook_late", "night_weight"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a fraction between 0 and 1")
        if self.webhook_lost + self.webhook_late > 1:
            raise ValueError("webhook_lost + webhook_late cannot exceed 1")
        if self.webhook_delay[0] > self.webhook_delay[1] or self.webhook_delay[0] < 0:
            raise ValueError("webhook_delay is (min, max) seconds")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def entity_weights(self, rules: Sequence[EntityRule]) -> list[float]:
        return [math.sqrt(DAY / r.window) for r in rules]

    def profile_mean(self) -> float:
        """Mean of the hourly activity profile (1 in business hours, ``night_weight`` otherwise)."""
        start, end = self.business_hours
        return ((end - start) + (24 - (end - start)) * self.night_weight) / 24


@dataclass
class Fleet:
    """A drawn fleet: per company its activity rate, and every change over the horizon."""

    rules: tuple[EntityRule, ...]
    rates_per_day: list[float]
    changes: dict[tuple[int, int], list[float]]  # (company, entity) -> sorted change times
    webhooks: list[tuple[float, int, int, float]]  # (arrives, company, entity, changed_at), sorted
    horizon: float

    @property
    def companies(self) -> int:
        return len(self.rates_per_day)

    @property
    def change_count(self) -> int:
        return sum(len(v) for v in self.changes.values())

    def activity(self, model: FleetModel, hold: float = DEFAULT_HOLD) -> FleetActivity:
        """What an operator would measure about this fleet, for the budget planner: the mean change
        rate, the webhook syncs it causes once events are held ``hold`` (a sync per ``hold + 1/rate``),
        the share of webhooks that miss, and each entity's share of changes."""
        rates = self.rates_per_day
        events = sum(r / (1 + r * hold / DAY) for r in rates) / len(rates)
        weights = model.entity_weights(self.rules)
        total = sum(weights)
        return FleetActivity(
            changes_per_company_day=sum(rates) / len(rates),
            event_syncs_per_company_day=events,
            webhook_miss_share=model.webhook_lost + model.webhook_late,
            change_share={r.name: w / total for r, w in zip(self.rules, weights, strict=True)},
        )


def draw_fleet(model: FleetModel, rules: Sequence[EntityRule], companies: int, horizon: float, seed: int) -> Fleet:
    """Draw every company's changes over ``[0, horizon)`` seconds (time 0 is 00:00 UTC) and the fate
    of each change's webhook. Deterministic for a seed."""
    rng = random.Random(seed)
    weights = model.entity_weights(rules)
    cumulative = [sum(weights[: i + 1]) for i in range(len(weights))]
    start, end = model.business_hours
    mean_profile = model.profile_mean()
    rates: list[float] = []
    changes: dict[tuple[int, int], list[float]] = {}
    webhooks: list[tuple[float, int, int, float]] = []
    mu = math.log(model.activity_median_per_day)
    for company in range(companies):
        rate = min(rng.lognormvariate(mu, model.activity_sigma), model.activity_cap_per_day)
        rates.append(rate)
        offset = rng.choice(model.utc_offsets_hours) * HOUR
        peak = rate / DAY / mean_profile  # changes per second in business hours
        t = 0.0
        while True:
            t += rng.expovariate(peak)
            if t >= horizon:
                break
            local_hour = ((t + offset) % DAY) / HOUR
            if not (start <= local_hour < end) and rng.random() >= model.night_weight:
                continue  # thinning: nights are quieter
            entity = bisect.bisect_left(cumulative, rng.random() * cumulative[-1])
            changes.setdefault((company, entity), []).append(t)
            fate = rng.random()
            if fate < model.webhook_lost:
                continue
            if fate < model.webhook_lost + model.webhook_late:
                arrives = t + rng.uniform(*model.webhook_late_delay)
            else:
                arrives = t + rng.uniform(*model.webhook_delay)
            if arrives < horizon:
                webhooks.append((arrives, company, entity, t))
    webhooks.sort()
    return Fleet(tuple(rules), rates, changes, webhooks, horizon)
