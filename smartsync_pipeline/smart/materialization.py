"""How a sync shows up in Dagster: the metadata of one asset partition's materialization, and the
trail that records syncs run outside Dagster (on-demand refreshes, the CLI) in the instance.

Used by the mirror assets (scheduled, sensor and webhook runs), by the SmartReader when an on-demand
refresh is recorded and by ``smartsync sync``, so the UI shows every sync the same way whoever ran it.
Dagster is imported lazily, only when something is recorded: the read path itself never loads it
(see ARCHITECTURE.md, "The read path without Dagster").
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from smartsync_pipeline.entities import entity
from smartsync_pipeline.sync.report import SyncReport

log = logging.getLogger("smartsync.smart")


def materialization_metadata(report: SyncReport, entity_name: str, requested_mode: str) -> dict[str, Any]:
    """What one entity's materialization records: counts, cost, watermarks and the chain position
    (``dagster.MetadataValue`` values)."""
    import dagster as dg

    def timestamp(value: datetime | None) -> Any:
        return dg.MetadataValue.timestamp(value) if value is not None else dg.MetadataValue.text("never")

    def optional_int(value: int | None) -> Any:
        return dg.MetadataValue.int(value) if value is not None else dg.MetadataValue.text("none")

    changed_ids_schema = dg.TableSchema(
        columns=[dg.TableColumn("op", "string"), dg.TableColumn("id", "string", description="QBO Id")]
    )
    result = report.entities[entity_name]
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
        "watermark_before": timestamp(result.watermark_before),
        "watermark_after": timestamp(result.watermark_after),
        "change_id_first": optional_int(report.change_id_first),
        "change_id_last": optional_int(report.change_id_last),
        "chain_head_hash": dg.MetadataValue.text(report.chain_head_hash),
        "rows_active": dg.MetadataValue.int(result.rows_active),
        "rows_deleted": dg.MetadataValue.int(result.rows_deleted),
        "dagster/row_count": dg.MetadataValue.int(result.rows_active),
        "duration_seconds": dg.MetadataValue.float(round(report.duration_seconds, 3)),
        "snapshot_generation": optional_int(report.snapshot_generation),
        "fallback_reason": dg.MetadataValue.text(result.fallback_reason or "-"),
        "sync_id": dg.MetadataValue.text(report.sync_id),
        **{f"{phase}_seconds": dg.MetadataValue.float(round(secs, 3)) for phase, secs in report.timings.items()},
        "changed_ids": dg.MetadataValue.table(
            [dg.TableRecord({"op": op, "id": qid}) for op, qid in result.changed_ids],
            schema=changed_ids_schema,
        ),
    }


class DagsterTrail:
    """Records syncs that ran outside a Dagster run as runless materializations of the synced mirror
    assets' company partition, when an instance is configured (``DAGSTER_HOME`` set). One instance is
    opened on first use and kept until ``close()``."""

    def __init__(self) -> None:
        self._instance: Any = None
        self._lock = threading.Lock()

    @staticmethod
    def configured() -> bool:
        return bool(os.environ.get("DAGSTER_HOME"))

    def record(self, report: SyncReport, entities: Iterable[str] | None = None, *, requested_mode: str = "auto") -> int:
        """Record ``entities`` (default: every entity the sync covered); returns how many were recorded.
        Raises what Dagster raises: callers that must not fail for the trail catch it."""
        if not self.configured():
            return 0
        import dagster as dg

        names = [n for n in (report.entities if entities is None else entities) if n in report.entities]
        with self._lock:
            if self._instance is None:
                self._instance = dg.DagsterInstance.get()
            instance = self._instance
        for name in names:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=dg.AssetKey(["qbo", entity(name).table]),
                    partition=report.realm_id,
                    metadata=materialization_metadata(report, name, requested_mode),
                    tags={"smartsync/trigger": report.trigger},
                )
            )
        return len(names)

    def record_quietly(self, report: SyncReport, entities: Iterable[str] | None = None, **kwargs: Any) -> int:
        """``record``, logging instead of raising: the sync itself succeeded whatever Dagster says."""
        try:
            return self.record(report, entities, **kwargs)
        except Exception as exc:
            log.warning("could not record the %s sync in Dagster: %s", report.trigger, exc)
            return 0

    def close(self) -> None:
        with self._lock:
            instance, self._instance = self._instance, None
        if instance is not None:
            instance.dispose()
