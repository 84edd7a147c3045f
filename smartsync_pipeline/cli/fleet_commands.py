"""``smartsync fleet simulate``: run the real fleet policy against a modelled fleet and print its figures."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.fleet.budget import assumed_budget
from smartsync_pipeline.fleet.model import FleetModel
from smartsync_pipeline.fleet.simulator import SimulationSettings, simulate


class OneLineUsageErrors(click.Command):
    """Bad arguments end in one line on stderr (``Error: …``) and exit 2, without the usage block."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            error = click.ClickException(exc.format_message())
            error.exit_code = exc.exit_code
            raise error from None


@click.group()
def fleet() -> None:
    """Scheduling a fleet of companies within QBO's limits and call budget."""


@fleet.command(cls=OneLineUsageErrors)
@click.option("--companies", default=10_000, show_default=True, type=int, help="companies in the fleet")
@click.option("--hours", default=24.0, show_default=True, type=float, help="simulated hours")
@click.option("--seed", default=1, show_default=True, type=int, help="random seed of the modelled fleet")
@click.option("--workers", default=8, show_default=True, type=int, help="Dagster run workers")
@click.option(
    "--monthly-budget",
    type=float,
    help="metered QBO calls per month for the app (default: 500,000, or 400 per company above 1,250)",
)
@click.option("--unmetered", is_flag=True, help="no call budget at all")
@click.option("--webhook-lost", default=0.01, show_default=True, type=float, help="share of webhooks never delivered")
@click.option("--webhook-late", default=0.01, show_default=True, type=float, help="share delivered 20 min-6 h late")
@click.option("--goal", default=0.99, show_default=True, type=float, help="share of time within window to plan for")
@click.option("--json", "as_json", is_flag=True, help="print the figures as JSON")
@friendly_errors
def simulate_command(
    companies: int,
    hours: float,
    seed: int,
    workers: int,
    monthly_budget: float | None,
    unmetered: bool,
    webhook_lost: float,
    webhook_late: float,
    goal: float,
    as_json: bool,
) -> None:
    """Simulate the fleet policy on a modelled fleet: freshness, API calls, runs, workers."""
    if unmetered and monthly_budget is not None:
        raise click.ClickException("--unmetered and --monthly-budget contradict each other; give one")
    if companies > 1_000_000:
        raise click.ClickException("--companies is at most 1,000,000")
    for flag, value in (("--webhook-lost", webhook_lost), ("--webhook-late", webhook_late)):
        if not 0 <= value <= 1:
            raise click.ClickException(f"{flag} is a share between 0 and 1, not {value:g}")
    if not 0 < goal < 1:
        raise click.ClickException(f"--goal is a share strictly between 0 and 1, not {goal:g}")
    if monthly_budget is not None and monthly_budget <= 0:
        raise click.ClickException("--monthly-budget must be positive (or use --unmetered)")
    budget = monthly_budget if monthly_budget is not None else assumed_budget(max(companies, 1))
    settings = SimulationSettings(
        companies=companies,
        hours=hours,
        seed=seed,
        workers=workers,
        monthly_budget=None if unmetered else budget,
        goal=goal,
        model=FleetModel(webhook_lost=webhook_lost, webhook_late=webhook_late),
    )
    report = simulate(settings).as_dict()
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    print_figures(Console(), report)


simulate_command.name = "simulate"


def print_figures(console: Console, r: dict[str, Any]) -> None:
    plan = r["budget_plan"]
    calls = r["calls_per_company_day"]
    budget = r["monthly_budget"]
    table = Table(
        title=f"fleet of {r['companies']:,} companies, {r['hours']:g} h simulated (seed {r['seed']})",
        title_justify="left",
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("(company, entity) time within window", f"{r['within_window']:.4%}"),
        ("  … of the pairs that changed", f"{r['within_window_changed_pairs']:.4%}"),
        ("changes shown within their window", f"{r['changes_in_window']:.3%} of {r['changes']:,}"),
        ("API calls per company per day", f"mean {calls['mean']:.2f}, p99 {calls['p99']:.0f}, max {calls['max']:.0f}"),
        ("API calls per month, fleet", f"{r['fleet_calls_per_month']:,}"),
        (
            "monthly budget",
            "unmetered" if budget is None else f"{budget:,.0f} ({r['budget_share_used']:.0%} used)",
        ),
        ("peak requests/min per company", f"{r['peak_requests_per_minute_per_company']} (QBO allows 500)"),
        ("throttled calls", str(r["throttled_calls"])),
        ("Dagster runs per hour", f"{r['dagster_runs_per_hour']:,.1f}"),
        ("companies per run", f"mean {r['companies_per_run']['mean']:.1f}, max {r['companies_per_run']['max']}"),
        ("worker utilisation", f"{r['worker_utilisation']:.1%} of {r['workers']} workers"),
        ("simulation time", f"{r['elapsed_seconds']:.1f} s"),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    style = "green" if plan["meets_goal"] else "yellow" if plan["affordable"] else "red"
    console.print(f"[{style}]plan: {plan['message']}[/]")
