"""Per (realm, entity) sync bookkeeping: when it last synced, the CDC watermark, what it did.

Written in the same transaction as the rows and change-log entries it describes, so the watermark
never runs ahead of the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from smartsync_pipeline.entities import EntitySpec
from smartsync_pipeline.mirror.apply import EntityApplyResult
from smartsync_pipeline.mirror.sql import fetch_one


@dataclass(frozen=True)
class EntityState:
    realm_id: str
    entity: str
    last_sync_at: datetime | None
    last_full_sync_at: datetime | None
    watermark: datetime | None
    last_mode: str | None
    rows_active: int
    rows_deleted: int

    @classmethod
    def never_synced(cls, realm_id: str, entity: str) -> EntityState:
        return cls(realm_id, entity, None, None, None, None, 0, 0)


def load_state(con: duckdb.DuckDBPyConnection, realm_id: str, spec: EntitySpec) -> EntityState:
    row = fetch_one(
        con,
        "SELECT last_sync_at, last_full_sync_at, watermark, last_mode, rows_active, rows_deleted "
        "FROM sync_state WHERE realm_id = ? AND entity = ?",
        [realm_id, spec.name],
    )
    if row is None:
        return EntityState.never_synced(realm_id, spec.name)
    return EntityState(realm_id, spec.name, row[0], row[1], row[2], row[3], row[4] or 0, row[5] or 0)


def record_sync(
    con: duckdb.DuckDBPyConnection,
    spec: EntitySpec,
    *,
    realm_id: str,
    synced_at: datetime,
    watermark: datetime | None,
    mode: str,
    trigger: str,
    run_id: str | None,
    sync_id: str,
    result: EntityApplyResult,
) -> tuple[int, int]:
    """Upsert the state row; returns (rows_active, rows_deleted) for the entity in this realm."""
    active, deleted = fetch_one(
        con,
        f"SELECT count(*) FILTER (WHERE NOT is_deleted), count(*) FILTER (WHERE is_deleted) "
        f"FROM {spec.table} WHERE realm_id = ?",
        [realm_id],
    )
    con.execute(
        """
        INSERT INTO sync_state AS s (realm_id, entity, last_sync_at, last_full_sync_at, watermark, last_mode,
            last_trigger, last_run_id, last_sync_id, last_created, last_updated, last_deleted, last_unchanged,
            rows_active, rows_deleted)
        VALUES (?, ?, ?, CASE WHEN ? = 'full' THEN ?::TIMESTAMPTZ END, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (realm_id, entity) DO UPDATE SET
            -- A full sync that started before a concurrent incremental one must not set freshness back.
            last_sync_at = greatest(excluded.last_sync_at, s.last_sync_at),
            last_full_sync_at = coalesce(excluded.last_full_sync_at, s.last_full_sync_at),
            watermark = greatest(coalesce(excluded.watermark, s.watermark), coalesce(s.watermark, excluded.watermark)),
            last_mode = excluded.last_mode, last_trigger = excluded.last_trigger,
            last_run_id = excluded.last_run_id, last_sync_id = excluded.last_sync_id,
            last_created = excluded.last_created, last_updated = excluded.last_updated,
            last_deleted = excluded.last_deleted, last_unchanged = excluded.last_unchanged,
            rows_active = excluded.rows_active, rows_deleted = excluded.rows_deleted
        """,
        [
            realm_id,
            spec.name,
            synced_at,
            mode,
            synced_at,
            watermark,
            mode,
            trigger,
            run_id,
            sync_id,
            result.created,
            result.updated,
            result.deleted,
            result.unchanged,
            active,
            deleted,
        ],
    )
    return int(active), int(deleted)
