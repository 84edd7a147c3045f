"""Fleet scheduling figures by fleet size (figures, not tests).

Runs ``smartsync fleet simulate``'s simulation (the real fleet policy on a modelled fleet, 24 h) for
100, 1,000 and 10,000 companies, each with the budget the simulation assumes (the 500,000-call entry
tier, or 400 calls per company per month for larger fleets), and prints one table. Beside each, the
same fleet under today's schedules, run through the same simulator: a CDC sweep of every entity every
15 minutes and one Dagster run per company (``--no-baseline`` skips it; it is the slow part).

    .venv/bin/python bench/bench_fleet.py [--sizes 100 1000 10000] [--hours 24] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smartsync_pipeline.fleet.budget import assumed_budget, plan_budget  # noqa: E402
from smartsync_pipeline.fleet.policy import PolicyConfig  # noqa: E402
from smartsync_pipeline.fleet.rules import MINUTE, rules_from_registry  # noqa: E402
from smartsync_pipeline.fleet.simulator import FleetSimulation, SimulationSettings  # noqa: E402


def fleet_policy(companies: int, hours: float, seed: int) -> dict:
    settings = SimulationSettings(companies=companies, hours=hours, seed=seed, monthly_budget=assumed_budget(companies))
    return FleetSimulation(settings).run().as_dict()


def todays_schedules(companies: int, hours: float, seed: int) -> dict:
    """Today: every CDC entity swept every 15 min, the others listed on those sweeps once their warn
    window has passed (the engine's rule for schedule triggers), webhooks synced at once, one run per
    company."""
    settings = SimulationSettings(
        companies=companies, hours=hours, seed=seed, monthly_budget=None, policy=PolicyConfig(max_batch=1, min_batch=1)
    )
    rules = rules_from_registry()
    sim = FleetSimulation(settings, rules)
    plan = plan_budget(rules, companies=companies, monthly_budget=None, activity=sim.fleet.activity(settings.model))
    timings = tuple(
        dataclasses.replace(t, sweep=15 * MINUTE if t.rule.via_cdc else max(15 * MINUTE, t.rule.warn), hold=0.0)
        for t in plan.timings
    )
    sim = FleetSimulation(settings, rules, fleet=sim.fleet, plan=dataclasses.replace(plan, timings=timings))
    return sim.run().as_dict()


def row(label: str, r: dict) -> list[str]:
    calls = r["calls_per_company_day"]
    budget = r["monthly_budget"]
    return [
        label,
        f"{r['companies']:,}",
        f"{r['within_window']:.4%}",
        f"{r['within_window_changed_pairs']:.3%}",
        f"{r['changes_in_window']:.3%}",
        f"{calls['mean']:.2f}",
        f"{calls['p99']:.0f}",
        f"{r['fleet_calls_per_month']:,}",
        "-" if budget is None else f"{budget:,.0f} ({r['budget_share_used']:.0%})",
        str(r["peak_requests_per_minute_per_company"]),
        f"{r['dagster_runs_per_hour']:,.0f}",
        f"{r['companies_per_run']['mean']:.1f}",
        f"{r['worker_utilisation']:.1%}",
        f"{r['elapsed_seconds']:.1f}",
    ]


HEADER = [
    "schedule",
    "companies",
    "within window",
    "changed pairs",
    "changes in window",
    "calls/co/day",
    "p99",
    "calls/month",
    "budget (used)",
    "peak/min",
    "runs/h",
    "co/run",
    "workers busy",
    "sim s",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows, results = [], []
    for size in args.sizes:
        began = time.perf_counter()
        ours = fleet_policy(size, args.hours, args.seed)
        results.append({"schedule": "fleet policy", **ours})
        rows.append(row("fleet policy", ours))
        if not args.no_baseline:
            today = todays_schedules(size, args.hours, args.seed)
            results.append({"schedule": "today", **today})
            rows.append(row("today (15-min CDC, run/company)", today))
            ratio_calls = today["fleet_calls_per_month"] / max(1, ours["fleet_calls_per_month"])
            ratio_runs = today["dagster_runs_per_hour"] / max(0.1, ours["dagster_runs_per_hour"])
            print(
                f"{size:>6} companies: today makes {ratio_calls:.1f}x the calls and {ratio_runs:.1f}x the runs",
                file=sys.stderr,
            )
        print(f"{size:>6} companies simulated in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADER)]
    print(" | ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    print(f"\n{args.hours:g} h simulated, seed {args.seed}, workers 8; plans:")
    for r in results:
        if r["schedule"] == "fleet policy":
            print(f"  {r['companies']:>6,}: {r['budget_plan']['message']}")


if __name__ == "__main__":
    main()
