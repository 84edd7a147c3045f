"""The mirror's numbered migrations, each with the DDL of its own version.

A migration never reads today's definitions (``views.ANALYST_VIEWS``): a mirror migrated from
version 1 passes through exactly what version 2 shipped (``views.V2_VIEWS``), whatever the views look
like now. Changing a view means a new ``V<n>_VIEWS`` in ``views.py`` and a migration that creates it.
Entity tables are the exception on purpose: they follow the registry
(``schema.add_registry_columns``), never a migration.
Append only; never edit a shipped migration.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.mirror.views import V2_VIEWS, V4_LINE_TABLES, V4_LINE_VIEWS

# Whole QBO documents (each object's raw, the change log's before/after): zstd instead of DuckDB's own
# choice for strings checkpoints ~40 % faster and stores less than half (ARCHITECTURE.md, "Backfill").
JSON_DOCUMENT = "JSON USING COMPRESSION zstd"

CHANGE_LOG_DDL = f"""
CREATE TABLE IF NOT EXISTS change_log (
    change_id BIGINT NOT NULL,
    realm_id VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    entity_id VARCHAR NOT NULL,
    op VARCHAR NOT NULL,                 -- create | update | delete
    sync_token_before VARCHAR,
    sync_token_after VARCHAR,
    changed_fields VARCHAR[],            -- top-level QBO fields that differ (updates)
    before_json {JSON_DOCUMENT},
    after_json {JSON_DOCUMENT},
    qbo_last_updated TIMESTAMPTZ,
    recorded_at TIMESTAMPTZ NOT NULL,
    trigger VARCHAR NOT NULL,            -- schedule | sensor | on_demand | backfill | webhook | manual
    run_id VARCHAR,                      -- Dagster run id when a run did the sync
    sync_id VARCHAR NOT NULL,            -- one id per sync call
    prev_hash VARCHAR NOT NULL,
    row_hash VARCHAR NOT NULL            -- sha256(prev_hash, canonical row): rewriting history breaks the chain
)
"""

SYNC_STATE_DDL = """
CREATE TABLE IF NOT EXISTS sync_state (
    realm_id VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    last_sync_at TIMESTAMPTZ,            -- wall-clock time of the last successful sync (freshness)
    last_full_sync_at TIMESTAMPTZ,
    watermark TIMESTAMPTZ,               -- QBO server time: the next CDC asks for changes since this
    last_mode VARCHAR,
    last_trigger VARCHAR,
    last_run_id VARCHAR,
    last_sync_id VARCHAR,
    last_created BIGINT,
    last_updated BIGINT,
    last_deleted BIGINT,
    last_unchanged BIGINT,
    rows_active BIGINT,
    rows_deleted BIGINT,
    PRIMARY KEY (realm_id, entity)
)
"""

DATA_VERSIONS_DDL = """
CREATE TABLE IF NOT EXISTS data_versions (
    version BIGINT NOT NULL,             -- 1, 2, ...: bumped by every transaction that writes data
    kind VARCHAR NOT NULL,               -- changes (described by the change log) | schema | upgrade | other
    change_head BIGINT NOT NULL,         -- the change log's head when it was recorded
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


def _v1_initial(con: duckdb.DuckDBPyConnection) -> None:
    from smartsync_pipeline.mirror.schema import entity_table_ddl  # the registry's tables, by design

    for spec in ENTITIES:
        con.execute(entity_table_ddl(spec))
    con.execute(SYNC_STATE_DDL)
    con.execute(CHANGE_LOG_DDL)


def _v2_analyst_views(con: duckdb.DuckDBPyConnection) -> None:
    for sql in V2_VIEWS.values():
        con.execute(sql)


def _v3_data_versions(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DATA_VERSIONS_DDL)


def _v4_line_views(con: duckdb.DuckDBPyConnection) -> None:
    from smartsync_pipeline.entities import entity
    from smartsync_pipeline.mirror.schema import entity_table_ddl

    # The tables the views read (a mirror from before the whole books lacks the new entities' tables;
    # they are empty until the next sync fills them).
    for table in ("item", *(t for t, _ in V4_LINE_TABLES)):
        con.execute(entity_table_ddl(entity(table)))
    for sql in V4_LINE_VIEWS.values():
        con.execute(sql)


MIGRATIONS: dict[int, tuple[str, Callable[[duckdb.DuckDBPyConnection], None]]] = {
    1: ("entity tables, sync_state, change_log", _v1_initial),
    2: ("analyst views: bills_due, ap_aging, ar_aging, cash_position", _v2_analyst_views),
    3: ("data_versions: what publication keys on, whatever wrote the data", _v3_data_versions),
    4: ("line views: one row per transaction line (account, item, class, department, linked txn)", _v4_line_views),
}
