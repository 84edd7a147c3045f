"""The mirror's DuckDB schema, generated from the entity registry, and its versioned migrations.

Opening a mirror always runs ``migrate``: it creates what is missing, applies numbered migrations in
order and adds any typed column the registry gained since (filled from the stored raw JSON). Nothing
is ever dropped.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from smartsync_pipeline.entities import ENTITIES, Column, EntitySpec
from smartsync_pipeline.entities.registry import BOOL, DATE, INT, MONEY
from smartsync_pipeline.mirror.sql import fetch_one
from smartsync_pipeline.mirror.views import ANALYST_VIEWS

SCHEMA_VERSION = 2

# Columns every entity table has, before and after the registry's typed columns.
KEY_COLUMNS = (
    ("realm_id", "VARCHAR NOT NULL"),
    ("id", "VARCHAR NOT NULL"),
    # Numeric form of the QBO Id (or a stable hash of it): set lookups on BIGINT stay cheap as the
    # mirror grows. Always paired with `id` equality, so a hash collision can never merge two objects.
    ("id_key", "BIGINT NOT NULL"),
    ("sync_token", "VARCHAR"),
)
TRAILING_COLUMNS = (
    ("created_time", "TIMESTAMPTZ"),
    ("last_updated_time", "TIMESTAMPTZ"),
    ("raw", "JSON"),  # the full QBO object: fields we do not type survive here
    ("is_deleted", "BOOLEAN NOT NULL DEFAULT false"),
    ("deleted_at", "TIMESTAMPTZ"),
    ("synced_at", "TIMESTAMPTZ NOT NULL"),
)

CHANGE_LOG_DDL = """
CREATE TABLE IF NOT EXISTS change_log (
    change_id BIGINT NOT NULL,
    realm_id VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    entity_id VARCHAR NOT NULL,
    op VARCHAR NOT NULL,                 -- create | update | delete
    sync_token_before VARCHAR,
    sync_token_after VARCHAR,
    changed_fields VARCHAR[],            -- top-level QBO fields that differ (updates)
    before_json JSON,
    after_json JSON,
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

SCHEMA_VERSION_DDL = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    description VARCHAR
)
"""


def column_sql_type(col: Column) -> str:
    return {MONEY: "DECIMAL(18,2)", DATE: "DATE", BOOL: "BOOLEAN", INT: "INTEGER"}.get(col.type, "VARCHAR")


def _typed(text: str, col: Column) -> str:
    """TRY_CAST so odd values become NULL, never a failed sync (the raw JSON keeps them)."""
    sql_type = column_sql_type(col)
    return text if sql_type == "VARCHAR" else f"TRY_CAST({text} AS {sql_type})"


def extract_sql(col: Column, raw: str = "raw") -> str:
    """SQL that pulls one typed column out of the raw JSON."""
    return _typed(f"json_extract_string({raw}, '$.{col.path}')", col)


def extract_all_sql(spec: EntitySpec, raw: str = "raw") -> tuple[str, list[str]]:
    """All typed columns of ``spec`` from ONE parse of each document: ``values`` is a list expression
    to select as ``v``, ``columns`` the typed expressions over ``v`` (parsing once per column costs
    12x the memory and time on wide entities)."""
    paths = "[" + ", ".join(f"'$.{c.path}'" for c in spec.columns) + "]"
    return f"json_extract_string({raw}, {paths})", [_typed(f"v[{i}]", c) for i, c in enumerate(spec.columns, 1)]


def entity_table_ddl(spec: EntitySpec) -> str:
    cols = [*KEY_COLUMNS, *((c.name, column_sql_type(c)) for c in spec.columns), *TRAILING_COLUMNS]
    body = ",\n    ".join(f"{name} {typ}" for name, typ in cols)
    return f"CREATE TABLE IF NOT EXISTS {spec.table} (\n    {body}\n)"


def _v1_initial(con: duckdb.DuckDBPyConnection) -> None:
    for spec in ENTITIES:
        con.execute(entity_table_ddl(spec))
    con.execute(SYNC_STATE_DDL)
    con.execute(CHANGE_LOG_DDL)


def _v2_analyst_views(con: duckdb.DuckDBPyConnection) -> None:
    for sql in ANALYST_VIEWS.values():
        con.execute(sql)


# Numbered migrations, applied in order, each exactly once. Append only; never edit a shipped one.
MIGRATIONS: dict[int, tuple[str, Callable[[duckdb.DuckDBPyConnection], None]]] = {
    1: ("entity tables, sync_state, change_log", _v1_initial),
    2: ("analyst views: bills_due, ap_aging, ar_aging, cash_position", _v2_analyst_views),
}
assert max(MIGRATIONS) == SCHEMA_VERSION


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(SCHEMA_VERSION_DDL)
    row = fetch_one(con, "SELECT max(version) FROM schema_version")
    return int(row[0]) if row and row[0] is not None else 0


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Bring the mirror to ``SCHEMA_VERSION`` in one transaction; returns what was done."""
    done: list[str] = []
    con.execute("BEGIN TRANSACTION")
    try:
        version = current_version(con)
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"mirror schema version {version} is newer than this smartsync ({SCHEMA_VERSION}); upgrade smartsync"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            description, step = MIGRATIONS[number]
            step(con)
            con.execute("INSERT INTO schema_version (version, description) VALUES (?, ?)", [number, description])
            done.append(f"v{number}: {description}")
        done += _add_registry_columns(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return done


def _add_registry_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """New entities become tables; new typed columns are added and filled from the raw JSON."""
    done = []
    existing_columns: dict[str, set[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall():
        existing_columns.setdefault(table, set()).add(column)
    for spec in ENTITIES:
        if spec.table not in existing_columns:
            con.execute(entity_table_ddl(spec))
            done.append(f"table {spec.table}")
            continue
        existing = existing_columns[spec.table]
        for col in spec.columns:
            if col.name not in existing:
                con.execute(f"ALTER TABLE {spec.table} ADD COLUMN {col.name} {column_sql_type(col)}")
                con.execute(f"UPDATE {spec.table} SET {col.name} = {extract_sql(col)}")
                done.append(f"column {spec.table}.{col.name}")
    if done:
        # Views select explicit columns; recreate them so they see the current tables.
        _v2_analyst_views(con)
    return done
