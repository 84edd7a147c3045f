"""The mirror's DuckDB schema, generated from the entity registry, and how a mirror is migrated.

Opening a mirror always runs ``migrate``: it creates what is missing, applies the numbered migrations
(``migrations.py``) in order and adds any typed column the registry gained since (filled from the
stored raw JSON). Nothing is ever dropped. Whatever a migration wrote bumps the data version, so the
change reaches readers at the next publication even though the change log did not move.
"""

from __future__ import annotations

import duckdb

from smartsync_pipeline.entities import ENTITIES, Column, EntitySpec
from smartsync_pipeline.entities.registry import BOOL, DATE, INT, MONEY
from smartsync_pipeline.mirror import views
from smartsync_pipeline.mirror.migrations import CHANGE_LOG_DDL, JSON_DOCUMENT, MIGRATIONS, SYNC_STATE_DDL
from smartsync_pipeline.mirror.sql import fetch_one

SCHEMA_VERSION = 4
__all__ = ["CHANGE_LOG_DDL", "MIGRATIONS", "SCHEMA_VERSION", "SYNC_STATE_DDL", "migrate"]

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
    ("raw", JSON_DOCUMENT),  # the full QBO object: fields we do not type survive here
    ("is_deleted", "BOOLEAN NOT NULL DEFAULT false"),
    ("deleted_at", "TIMESTAMPTZ"),
    ("synced_at", "TIMESTAMPTZ NOT NULL"),
)

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
        if done:
            record_data_version(con, "schema")
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
        # Views select explicit columns; recreate them (the current definitions) so they see the new tables.
        for sql in (*views.ANALYST_VIEWS.values(), *views.LINE_VIEWS.values()):
            con.execute(sql)
    return done


def data_version(con: duckdb.DuckDBPyConnection, catalog: str = "main") -> int:
    """The newest data version of the mirror (or snapshot) open as ``catalog``; 0 before any."""
    row = fetch_one(con, f"SELECT max(version) FROM {catalog}.data_versions")
    return int(row[0]) if row and row[0] is not None else 0


def record_data_version(con: duckdb.DuckDBPyConnection, kind: str) -> int:
    """Bump the data version inside the caller's transaction. ``kind`` says whether the change log
    describes what was written (``changes``: a snapshot can be caught up from it) or not (``schema``,
    ``upgrade``, ``other``: the next publication copies the whole file)."""
    head = fetch_one(con, "SELECT coalesce(max(change_id), 0) FROM change_log")[0]
    version = data_version(con) + 1
    con.execute("INSERT INTO data_versions (version, kind, change_head) VALUES (?, ?, ?)", [version, kind, int(head)])
    return version
