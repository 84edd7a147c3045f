"""The report refresh schedules: one run per connected company (and month), valid partitions of the
report jobs, whose runs carry the reconciliation checks."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from smartsync_pipeline.definitions import defs
from smartsync_pipeline.defs.assets.reports import REPORT_KEYS, monthly_by_realm
from smartsync_pipeline.defs.checks.report_reconciliation import REPORT_RECONCILIATION_CHECK
from smartsync_pipeline.defs.report_schedules import current_reports_refresh, monthly_reports_refresh
from smartsync_pipeline.entities.reports import MONTHLY, REPORTS
from smartsync_pipeline.sync.report_reconciliation import COMPARISONS
from smartsync_pipeline_tests.defs.conftest import make_dagster_home

REALMS = ["4620816365000000001", "4620816365000000002"]


@pytest.fixture
def instance(tmp_path):
    with dg.DagsterInstance.from_config(str(make_dagster_home(tmp_path))) as instance:  # schedules need a ref
        yield instance


def _context(instance: dg.DagsterInstance, when: datetime) -> dg.ScheduleEvaluationContext:
    return dg.build_schedule_context(instance=instance, scheduled_execution_time=when)


def test_no_company_no_run(instance: dg.DagsterInstance) -> None:
    when = datetime(2026, 11, 2, 3, tzinfo=UTC)
    for schedule in (current_reports_refresh, monthly_reports_refresh):
        [skip] = list(schedule(_context(instance, when)))
        assert isinstance(skip, dg.SkipReason) and "no company" in skip.skip_message


def test_aging_every_three_hours_per_company(instance: dg.DagsterInstance) -> None:
    instance.add_dynamic_partitions("realms", REALMS)
    when = datetime(2026, 11, 2, 3, tzinfo=UTC)
    requests = list(current_reports_refresh(_context(instance, when)))
    assert [r.partition_key for r in requests] == REALMS
    assert all(r.tags["smartsync/trigger"] == "schedule" and r.run_key.endswith(when.isoformat()) for r in requests)
    assert current_reports_refresh.cron_schedule == "0 */3 * * *"


@pytest.mark.parametrize(
    ("when", "months"),
    [
        (datetime(2026, 11, 2, 6, 20, tzinfo=UTC), ["2026-11-01"]),
        (datetime(2026, 11, 1, 0, 20, tzinfo=UTC), ["2026-10-01", "2026-11-01"]),  # the closing tick
    ],
)
def test_monthly_reports_this_month_and_last_at_midnight(
    instance: dg.DagsterInstance, when: datetime, months: list[str]
) -> None:
    instance.add_dynamic_partitions("realms", REALMS)
    requests = list(monthly_reports_refresh(_context(instance, when)))
    keys = [r.partition_key for r in requests]
    assert [(k.keys_by_dimension["realm"], k.keys_by_dimension["month"]) for k in keys] == [
        (realm, month) for realm in REALMS for month in months
    ]
    valid = set(monthly_by_realm.get_partition_keys(current_time=when, dynamic_partitions_store=instance))
    assert set(keys) <= valid


def test_report_jobs_carry_the_reconciliation_checks() -> None:
    for job_name, monthly in (("current_reports", False), ("monthly_reports", True)):
        job = defs.resolve_job_def(job_name)
        expected = {REPORT_KEYS[s.name] for s in REPORTS if (s.partition == MONTHLY) == monthly}
        graph = job.asset_layer.asset_graph
        assert set(graph.executable_asset_keys) == expected
        checks = {k for k in graph.asset_check_keys if k.name == REPORT_RECONCILIATION_CHECK}
        assert checks == {
            dg.AssetCheckKey(REPORT_KEYS[c.report], REPORT_RECONCILIATION_CHECK)
            for c in COMPARISONS
            if REPORT_KEYS[c.report] in expected
        }
