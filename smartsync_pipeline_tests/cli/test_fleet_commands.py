"""``smartsync fleet simulate``: the JSON it prints and one clear line for bad arguments."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from smartsync_pipeline.cli.main import cli


def test_simulate_json_has_the_figures_with_their_types() -> None:
    result = CliRunner().invoke(
        cli, ["fleet", "simulate", "--companies", "100", "--hours", "6", "--seed", "4", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert 0.0 <= figures["within_window"] <= 1.0
    assert (figures["companies"], figures["hours"], figures["seed"]) == (100, 6.0, 4)
    calls = figures["calls_per_company_day"]
    assert set(calls) == {"mean", "p50", "p99", "max"} and calls["mean"] <= calls["p99"] <= calls["max"]
    assert figures["calls"] == sum(figures["calls_by_reason"].values()) > 0
    assert figures["fleet_calls_per_month"] == round(figures["calls"] / (6 / 24) * 30)
    assert figures["monthly_budget"] == 500_000  # the entry tier is assumed for 100 companies
    assert isinstance(figures["peak_requests_per_minute_per_company"], int)
    assert figures["dagster_runs_per_hour"] == round(figures["dagster_runs"] / 6, 1)
    assert 0.0 < figures["worker_utilisation"] < 1.0
    plan = figures["budget_plan"]
    assert plan["meets_goal"] is True and set(plan["sweep_minutes"]) == set(plan["hold_minutes"])
    assert figures["model"]["webhook_lost"] == 0.01


def test_simulate_prints_a_table_by_default() -> None:
    result = CliRunner().invoke(cli, ["fleet", "simulate", "--companies", "50", "--hours", "2", "--unmetered"])
    assert result.exit_code == 0, result.output
    assert "within window" in result.output and "unmetered" in result.output and "plan:" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--companies", "0"], "--companies must be at least 1"),
        (["--companies", "many"], "Invalid value for '--companies'"),
        (["--hours", "-1"], "--hours must be more than 0"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--webhook-lost", "1.5"], "--webhook-lost is a share between 0 and 1"),
        (["--goal", "1"], "--goal is a share strictly between 0 and 1"),
        (["--monthly-budget", "0"], "--monthly-budget must be positive"),
        (["--monthly-budget", "10", "--unmetered"], "contradict each other"),
        (["--frobnicate"], "No such option"),
    ],
)
def test_bad_arguments_get_one_clear_line_and_a_non_zero_exit(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["fleet", "simulate", *args])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert "Traceback" not in result.output
