"""QBO report assets: one per registry report, partitioned by company and, where a period fits, by
month (a closed month's ProfitAndLoss is a fixed document whose changes the trail shows).

Each materialization runs ``ReportSync`` (QBO's Reports API, long or truncated ranges split by
period), stores the tidy cells and the chained run in DuckDB, and records the trail in the metadata:
content hash, the previous run's hash, whether a closed period changed, the run-log row hash and the
grand totals. The content hash is also the asset's data version.
"""

# No `from __future__ import annotations`: Dagster resolves resource annotations at runtime.

import calendar
import json
from datetime import date

import dagster as dg

from smartsync_pipeline.defs.partitions import realms
from smartsync_pipeline.defs.resources.mirror_sync import MirrorSyncResource
from smartsync_pipeline.defs.run_tags import trigger_for_run
from smartsync_pipeline.entities.reports import MONTHLY, REPORTS, ReportSpec
from smartsync_pipeline.sync.report_sync import ReportOutcome, ReportSync

REPORTS_GROUP = "qbo_reports"
REPORT_MONTHS_START = "2024-01-01"  # the first month a report partition exists for
REALM_DIMENSION, MONTH_DIMENSION = "realm", "month"

monthly_by_realm = dg.MultiPartitionsDefinition(
    {
        REALM_DIMENSION: realms,
        MONTH_DIMENSION: dg.MonthlyPartitionsDefinition(start_date=REPORT_MONTHS_START, end_offset=1),
    }
)


def report_key(spec: ReportSpec) -> dg.AssetKey:
    return dg.AssetKey(["qbo_reports", spec.table_suffix])


REPORT_KEYS: dict[str, dg.AssetKey] = {spec.name: report_key(spec) for spec in REPORTS}


def partition_scope(spec: ReportSpec, partition_key: str) -> tuple[str, tuple[date, date] | None]:
    """(realm, period) of a partition: a month's first and last day, or None (as of the run)."""
    if spec.partition != MONTHLY:
        return str(partition_key), None
    if not isinstance(partition_key, dg.MultiPartitionKey):
        raise dg.Failure(description=f"report {spec.name} needs a (realm, month) partition, not {partition_key!r}")
    dims = partition_key.keys_by_dimension
    first = date.fromisoformat(dims[MONTH_DIMENSION])
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return dims[REALM_DIMENSION], (first, last)


def report_metadata(outcome: ReportOutcome) -> dict[str, object]:
    run, stored = outcome.run, outcome.stored
    return {
        "realm_id": run.realm_id,
        "report": run.report,
        "period_key": run.period_key,
        "period": dg.MetadataValue.text(f"{run.period_start}..{run.period_end}"),
        "content_hash": run.content_hash,
        "previous_hash": dg.MetadataValue.text(stored.previous_hash or "(first run)"),
        "changed": dg.MetadataValue.bool(stored.changed),
        "closed_period": dg.MetadataValue.bool(stored.closed_period),
        "closed_period_changed": dg.MetadataValue.bool(stored.changed and stored.closed_period),
        "report_run_seq": dg.MetadataValue.int(stored.run_seq),
        "trail_row_hash": stored.row_hash,
        "cells": dg.MetadataValue.int(stored.cells),
        "requests": dg.MetadataValue.int(run.requests),
        "parts": dg.MetadataValue.int(run.parts),
        "splits": dg.MetadataValue.int(run.splits),
        "no_data": dg.MetadataValue.bool(run.no_data),
        "grand_totals": dg.MetadataValue.json(outcome.grand_totals()),
        "params": dg.MetadataValue.json(json.loads(run.params)),
        "snapshot_generation": dg.MetadataValue.int(outcome.snapshot_generation),
    }


def _report_asset(spec: ReportSpec) -> dg.AssetsDefinition:
    fresh = spec.freshness
    monthly = spec.partition == MONTHLY

    @dg.asset(
        key=report_key(spec),
        group_name=REPORTS_GROUP,
        partitions_def=monthly_by_realm if monthly else realms,
        freshness_policy=dg.FreshnessPolicy.time_window(fail_window=fresh.fail, warn_window=fresh.warn),
        kinds={"duckdb"},
        tags={"smartsync/report": spec.name},
        metadata={"report": spec.name, "view": spec.view, "qbo_endpoint": f"reports/{spec.name}"},
        description=(
            f"QBO report {spec.name}: {spec.description} Tidy cells in `report_cell`, analyst view "
            f"`{spec.view}`, every run in the chained `report_run` log; "
            + ("one partition per (company, month)." if monthly else "one partition per company, as of the run.")
        ),
    )
    def _asset(context: dg.AssetExecutionContext, mirror_sync: MirrorSyncResource) -> dg.MaterializeResult:
        realm_id, period = partition_scope(spec, context.partition_key)
        trigger = trigger_for_run(context.run.tags)
        context.log.info(f"report {spec.name} of realm {realm_id} for {period or 'today'} (trigger {trigger})")
        outcome = ReportSync(mirror_sync.home()).run(
            realm_id, spec, period=period, trigger=trigger, run_id=context.run.run_id
        )
        if outcome.stored.changed and outcome.stored.closed_period:
            context.log.warning(
                f"report {spec.name} of realm {realm_id} for the closed period {outcome.run.period_key} changed: "
                f"{outcome.stored.previous_hash} -> {outcome.run.content_hash}"
            )
        return dg.MaterializeResult(
            metadata=report_metadata(outcome), data_version=dg.DataVersion(outcome.run.content_hash)
        )

    return _asset


REPORT_ASSETS: list[dg.AssetsDefinition] = [_report_asset(spec) for spec in REPORTS]
