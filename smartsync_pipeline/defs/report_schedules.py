"""Keeping the report assets fresh (and so their reconciliation checks run): one run per connected
company and report shape.

- ``current_reports_refresh``, every 3 hours: the aging reports as of today (their freshness window
  fails at 6 hours);
- ``monthly_reports_refresh``, every 6 hours at :20: the current month's ProfitAndLoss, BalanceSheet,
  CashFlow, GeneralLedger and TransactionList (windows of 12 and 24 hours); the midnight tick also
  re-runs the previous month, so a posting into a closed month shows in the trail within a day.

Each report run costs one QBO request (more when a period has to be split); with 7 reports that is
about 1 + 2 requests per company every 3 hours, far under QBO's 500 a minute.
"""

# No `from __future__ import annotations`: Dagster resolves schedule signatures at runtime.

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from smartsync_pipeline.defs.assets.reports import MONTH_DIMENSION, REALM_DIMENSION
from smartsync_pipeline.defs.jobs import current_reports_job, monthly_reports_job
from smartsync_pipeline.defs.partitions import connected_realms
from smartsync_pipeline.defs.run_tags import trigger_tags

RUNNING = dg.DefaultScheduleStatus.RUNNING
CLOSING_HOUR = 0  # the tick that also re-runs the previous month


def _when(context: dg.ScheduleEvaluationContext) -> datetime:
    return context.scheduled_execution_time or datetime.now(UTC)


def months_to_refresh(when: datetime) -> list[date]:
    """The current month, and the previous one on the day's first tick."""
    first = when.astimezone(UTC).date().replace(day=1)
    months = [first]
    if when.astimezone(UTC).hour == CLOSING_HOUR:
        months.insert(0, (first - timedelta(days=1)).replace(day=1))
    return months


@dg.schedule(
    name="current_reports_refresh",
    cron_schedule="0 */3 * * *",
    execution_timezone="UTC",
    job=current_reports_job,
    default_status=RUNNING,
    description="Every 3 hours: QBO's aging reports of every connected company, checked against the mirror.",
)
def current_reports_refresh(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest | dg.SkipReason]:
    realms = connected_realms(context.instance)
    if not realms:
        yield dg.SkipReason("no company is connected")
        return
    tick = _when(context).isoformat()
    for realm in realms:
        yield dg.RunRequest(run_key=f"current_reports:{realm}:{tick}", partition_key=realm,
                            tags=trigger_tags("schedule"))  # fmt: skip


@dg.schedule(
    name="monthly_reports_refresh",
    cron_schedule="20 */6 * * *",
    execution_timezone="UTC",
    job=monthly_reports_job,
    default_status=RUNNING,
    description="Every 6 hours: this month's QBO reports of every connected company (and, at 00:20, last "
    "month's), checked against the mirror.",
)
def monthly_reports_refresh(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest | dg.SkipReason]:
    realms = connected_realms(context.instance)
    if not realms:
        yield dg.SkipReason("no company is connected")
        return
    when = _when(context)
    for realm in realms:
        for month in months_to_refresh(when):
            key = dg.MultiPartitionKey({REALM_DIMENSION: realm, MONTH_DIMENSION: month.isoformat()})
            yield dg.RunRequest(run_key=f"monthly_reports:{realm}:{month:%Y-%m}:{when.isoformat()}",
                                partition_key=key, tags=trigger_tags("schedule"))  # fmt: skip
