"""Time-based syncs: a CDC sweep every 15 minutes, a full sync + reconciliation daily at 03:00 UTC,
and an hourly change-log audit. Each yields one run per connected realm partition. Checks attached to
a company's sync run check that company only; the weekly all-company check sweep looks at every
company in one run (its reconciliation costs one COUNT per entity and company).

The sweep is Intuit's own advice (webhooks for speed, a CDC sweep to catch what webhooks missed); the
daily full sync catches hard deletes CDC cannot report and re-proves the mirror against QBO's counts.
"""

# No `from __future__ import annotations`: Dagster resolves config and resource annotations at runtime.

from collections.abc import Iterator

import dagster as dg

from smartsync_pipeline.defs.jobs import change_log_audit_job, company_checks_sweep_job, mirror_sync_job
from smartsync_pipeline.defs.partitions import connected_realms
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.defs.run_requests import FULL_SYNC_CHECKS, realms_in_flight, sync_run_request
from smartsync_pipeline.defs.run_tags import trigger_tags

RUNNING = dg.DefaultScheduleStatus.RUNNING


def _tick(context: dg.ScheduleEvaluationContext) -> str:
    return context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "manual"


@dg.schedule(
    name="cdc_sweep",
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    job=mirror_sync_job,
    default_status=RUNNING,
    description="Every 15 minutes: incremental (CDC) sync of every entity of every connected realm.",
)
def cdc_sweep(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest | dg.SkipReason]:
    realms = connected_realms(context.instance)
    if not realms:
        yield dg.SkipReason("no company is connected")
        return
    busy = realms_in_flight(context.instance)
    for realm in realms:
        if realm in busy:
            context.log.info(f"realm {realm}: a sync is already queued or running; the sweep skips it")
            continue
        yield sync_run_request(
            realm, None, trigger="schedule", mode="auto", run_key=f"cdc_sweep:{realm}:{_tick(context)}"
        )


@dg.schedule(
    name="daily_full_reconciliation",
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    job=mirror_sync_job,
    default_status=RUNNING,
    description="03:00 UTC: full sync of every realm with a content check (rows edited behind the engine's "
    "back are repaired and logged), then counts reconciled against QBO.",
)
def daily_full_reconciliation(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest | dg.SkipReason]:
    realms = connected_realms(context.instance)
    if not realms:
        yield dg.SkipReason("no company is connected")
        return
    for realm in realms:
        yield sync_run_request(
            realm,
            None,
            trigger="schedule",
            mode="full",
            verify_content=True,  # rows edited in the mirror file keep their SyncToken: compare content
            checks=FULL_SYNC_CHECKS,
            run_key=f"daily_full:{realm}:{_tick(context)}",
        )


@dg.schedule(
    name="change_log_audit_hourly",
    cron_schedule="7 * * * *",
    execution_timezone="UTC",
    job=change_log_audit_job,
    default_status=RUNNING,
    description="Hourly: verify the change log's new links and archive them to Parquet.",
)
def change_log_audit_hourly(
    context: dg.ScheduleEvaluationContext, mirror_sync: MirrorSyncResource
) -> dg.RunRequest | dg.SkipReason:
    if mirror_sync.snapshot_state() is None:
        return dg.SkipReason("nothing has been synced yet")
    return dg.RunRequest(run_key=f"change_log_audit:{_tick(context)}")


@dg.schedule(
    name="weekly_company_checks_sweep",
    cron_schedule="0 4 * * 0",
    execution_timezone="UTC",
    job=company_checks_sweep_job,
    default_status=RUNNING,
    description="Sundays 04:00 UTC: every mirror check over every company at once (no sync).",
)
def weekly_company_checks_sweep(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    if not connected_realms(context.instance):
        return dg.SkipReason("no company is connected")
    return dg.RunRequest(run_key=f"company_checks_sweep:{_tick(context)}", tags=trigger_tags("schedule"))
