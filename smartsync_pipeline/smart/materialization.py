"""How a sync shows up in Dagster: the metadata of one asset partition's materialization.

Used by the mirror assets (scheduled, sensor and webhook runs) and by the SmartReader when an on-demand
refresh is recorded, so the UI shows every refresh the same way whoever ran it.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from smartsync_pipeline.sync.report import SyncReport


def _timestamp(value: datetime | None) -> dg.MetadataValue:
    return dg.MetadataValue.timestamp(value) if value is not None else dg.MetadataValue.text("never")


def _optional_int(value: int | None) -> dg.MetadataValue:
    return dg.MetadataValue.int(value) if value is not None else dg.MetadataValue.text("none")


_CHANGED_IDS_SCHEMA = dg.TableSchema(
    columns=[dg.TableColumn("op", "string"), dg.TableColumn("id", "string", description="QBO Id")]
)


def materialization_metadata(report: SyncReport, entity: str, requested_mode: str) -> dict[str, dg.MetadataValue]:
    """What one entity's materialization records: counts, cost, watermarks and the chain position."""
    result = report.entities[entity]
    return {
        "realm": dg.MetadataValue.text(report.realm_id),
        "mode": dg.MetadataValue.text(result.mode),
        "requested_mode": dg.MetadataValue.text(requested_mode),
        "trigger": dg.MetadataValue.text(report.trigger),
        "created": dg.MetadataValue.int(result.created),
        "updated": dg.MetadataValue.int(result.updated),
        "deleted": dg.MetadataValue.int(result.deleted),
        "unchanged": dg.MetadataValue.int(result.unchanged),
        "fetched": dg.MetadataValue.int(result.fetched),
        "api_calls": dg.MetadataValue.int(report.api_calls),
        "bytes_received": dg.MetadataValue.int(report.bytes_received),
        "watermark_before": _timestamp(result.watermark_before),
        "watermark_after": _timestamp(result.watermark_after),
        "change_id_first": _optional_int(report.change_id_first),
        "change_id_last": _optional_int(report.change_id_last),
        "chain_head_hash": dg.MetadataValue.text(report.chain_head_hash),
        "rows_active": dg.MetadataValue.int(result.rows_active),
        "rows_deleted": dg.MetadataValue.int(result.rows_deleted),
        "dagster/row_count": dg.MetadataValue.int(result.rows_active),
        "duration_seconds": dg.MetadataValue.float(round(report.duration_seconds, 3)),
        "snapshot_generation": _optional_int(report.snapshot_generation),
        "fallback_reason": dg.MetadataValue.text(result.fallback_reason or "-"),
        "sync_id": dg.MetadataValue.text(report.sync_id),
        **{f"{phase}_seconds": dg.MetadataValue.float(round(secs, 3)) for phase, secs in report.timings.items()},
        "changed_ids": dg.MetadataValue.table(
            [dg.TableRecord({"op": op, "id": qid}) for op, qid in result.changed_ids],
            schema=_CHANGED_IDS_SCHEMA,
        ),
    }
