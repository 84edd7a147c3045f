"""QBO reports in the mirror: tidy cells, a hash-chained run log, and views for analysts.

``report_cell`` holds the newest run of each (realm, report, period): one row per (section path, row
label, column) with the amount as DECIMAL(18,2). ``report_run`` is append-only: every run of a report
with its content hash (what the report says, not when it was asked), the previous run's hash for the
same period, whether it changed and whether the period was already closed, chained like the change
log (``row_hash = sha256(prev_row_hash + content_hash_of_the_row)``), so a closed month whose numbers
moved is visible and the trail cannot be rewritten unnoticed. Writes go through the mirror writer
lock and publish a snapshot, like a sync (see ARCHITECTURE.md, "Reports").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from smartsync_pipeline.entities.reports import REPORTS
from smartsync_pipeline.mirror.arrow_columns import dates, decimals, int32s, int64s, string_lists, strings
from smartsync_pipeline.mirror.change_log import GENESIS_HASH, chain
from smartsync_pipeline.mirror.sql import fetch_one

REPORT_RUN_DDL = """
CREATE TABLE IF NOT EXISTS report_run (
    run_seq BIGINT NOT NULL,             -- 1, 2, 3, … across all reports of the mirror's company
    realm_id VARCHAR NOT NULL,
    report VARCHAR NOT NULL,             -- QBO report name: ProfitAndLoss
    period_key VARCHAR NOT NULL,         -- 2026-03 (a month), or 'current' (as of the run)
    period_start DATE,
    period_end DATE,
    params VARCHAR NOT NULL,             -- the query parameters asked, canonical
    content_hash VARCHAR NOT NULL,       -- sha256 of what the report says (not of when it was asked)
    previous_hash VARCHAR,               -- content hash of the previous run of the same period
    changed BOOLEAN NOT NULL,            -- differs from the previous run
    closed_period BOOLEAN NOT NULL,      -- the period had ended when it was run
    parts INTEGER NOT NULL,              -- requests the report was split into (truncated answers split again)
    requests INTEGER NOT NULL,
    splits INTEGER NOT NULL,
    cells BIGINT NOT NULL,
    no_data BOOLEAN NOT NULL,
    fetched_at TIMESTAMPTZ NOT NULL,
    trigger VARCHAR NOT NULL,
    run_id VARCHAR,
    prev_row_hash VARCHAR NOT NULL,
    row_hash VARCHAR NOT NULL
)
"""

REPORT_CELL_DDL = """
CREATE TABLE IF NOT EXISTS report_cell (
    realm_id VARCHAR NOT NULL,
    report VARCHAR NOT NULL,
    period_key VARCHAR NOT NULL,
    run_seq BIGINT NOT NULL,
    part_start DATE,                     -- the request this cell came from (a split report has several)
    part_end DATE,
    row_number INTEGER NOT NULL,         -- order of the row within its part
    row_type VARCHAR NOT NULL,           -- data | section_header | section_summary | grand_total
    section_path VARCHAR[] NOT NULL,
    section VARCHAR NOT NULL,            -- section_path joined with ' / '
    group_name VARCHAR,
    label VARCHAR NOT NULL,
    row_id VARCHAR,                      -- account / party id, or the transaction id in detail reports
    column_key VARCHAR NOT NULL,
    column_title VARCHAR NOT NULL,
    column_start DATE,                   -- period columns (summarize_column_by)
    column_end DATE,
    value VARCHAR NOT NULL,              -- as QBO wrote it
    amount DECIMAL(18,2),                -- exact, for money columns
    value_id VARCHAR
)
"""

CELL_SCHEMA = pa.schema(
    [
        ("realm_id", pa.string()),
        ("report", pa.string()),
        ("period_key", pa.string()),
        ("run_seq", pa.int64()),
        ("part_start", pa.date32()),
        ("part_end", pa.date32()),
        ("row_number", pa.int32()),
        ("row_type", pa.string()),
        ("section_path", pa.list_(pa.string())),
        ("section", pa.string()),
        ("group_name", pa.string()),
        ("label", pa.string()),
        ("row_id", pa.string()),
        ("column_key", pa.string()),
        ("column_title", pa.string()),
        ("column_start", pa.date32()),
        ("column_end", pa.date32()),
        ("value", pa.string()),
        ("amount", pa.decimal128(18, 2)),
        ("value_id", pa.string()),
    ]
)
# What the caller gives per cell (the identity columns realm/report/period/run come from the run).
CELL_FIELDS = tuple(f.name for f in CELL_SCHEMA)[4:]

RUN_CONTENT_FIELDS = (
    "run_seq", "realm_id", "report", "period_key", "period_start", "period_end", "params", "content_hash",
    "previous_hash", "changed", "closed_period", "parts", "requests", "splits", "cells", "no_data", "fetched_at",
    "trigger", "run_id",
)  # fmt: skip


def _pivot(column: str) -> str:
    return f"max(CASE WHEN column_key = '{column}' THEN value END) AS {column}"


def _detail_view(name: str, view: str, columns: Sequence[str]) -> str:
    ids = "max(CASE WHEN column_key = 'txn_type' THEN value_id END) AS txn_id, " \
          "max(CASE WHEN column_key = 'name' THEN value_id END) AS name_id"  # fmt: skip
    amounts = [c for c in columns if c in ("subt_nat_amount", "rbal_nat_amount")]
    texts = [c for c in columns if c not in amounts]
    money = ", ".join(f"max(CASE WHEN column_key = '{c}' THEN amount END) AS {c}" for c in amounts)
    return f"""
CREATE OR REPLACE VIEW {view} AS
SELECT realm_id, period_key, part_start, part_end, row_number, any_value(section) AS section,
       any_value(row_id) AS row_id, {", ".join(_pivot(c) for c in texts)}, {ids}{", " + money if money else ""}
FROM report_cell
WHERE report = '{name}' AND row_type = 'data'
GROUP BY realm_id, period_key, part_start, part_end, row_number
"""


def _summary_view(name: str, view: str) -> str:
    return f"""
CREATE OR REPLACE VIEW {view} AS
SELECT realm_id, period_key, part_start, part_end, row_number, row_type, section_path, section, group_name,
       label, row_id, column_key, column_title, column_start, column_end, amount
FROM report_cell
WHERE report = '{name}' AND amount IS NOT NULL
"""


REPORT_VIEWS: dict[str, str] = {
    "report_runs": """
CREATE OR REPLACE VIEW report_runs AS
SELECT run_seq, realm_id, report, period_key, period_start, period_end, fetched_at, content_hash,
       previous_hash, changed, closed_period, parts, requests, splits, cells, no_data, trigger, run_id
FROM report_run
""",
    "report_changes": """
CREATE OR REPLACE VIEW report_changes AS
SELECT run_seq, realm_id, report, period_key, period_start, period_end, fetched_at, previous_hash, content_hash,
       trigger, run_id
FROM report_run
WHERE changed AND closed_period
""",
    "report_grand_totals": """
CREATE OR REPLACE VIEW report_grand_totals AS
SELECT realm_id, report, period_key, part_start, part_end, group_name, column_key, column_title, amount
FROM report_cell
WHERE row_type = 'grand_total' AND amount IS NOT NULL
""",
    **{
        spec.view: (_detail_view(spec.name, spec.view, spec.detail_columns) if spec.is_detail
                    else _summary_view(spec.name, spec.view))
        for spec in REPORTS
    },
}  # fmt: skip


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the report tables and (re)create their views; idempotent."""
    con.execute(REPORT_RUN_DDL)
    con.execute(REPORT_CELL_DDL)
    for sql in REPORT_VIEWS.values():
        con.execute(sql)


def has_report_tables(con: duckdb.DuckDBPyConnection, catalog: str = "main") -> bool:
    row = fetch_one(
        con,
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = "
        f"(SELECT CASE WHEN '{catalog}' = 'main' THEN current_database() ELSE '{catalog}' END) "
        "AND table_name = 'report_run'",
    )
    return bool(row and row[0])


def copy_reports(con: duckdb.DuckDBPyConnection, catalog: str) -> None:
    """Make the reports of ``con`` equal to those of the attached ``catalog`` (snapshot catch-up;
    report tables are small, so they are replaced whole). Call inside the caller's transaction."""
    ensure_schema(con)
    if not has_report_tables(con, catalog):
        return
    for table in ("report_run", "report_cell"):
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {catalog}.{table}")


@dataclass(frozen=True)
class ReportRun:
    """One run of one report for one company and period, as the fetcher describes it."""

    realm_id: str
    report: str
    period_key: str
    period_start: date | None
    period_end: date | None
    params: str
    content_hash: str
    parts: int
    requests: int
    splits: int
    no_data: bool
    fetched_at: datetime
    trigger: str
    run_id: str | None = None


@dataclass(frozen=True)
class StoredRun:
    """What the store recorded: the run's place in the chain and how it compares to the last one."""

    run_seq: int
    previous_hash: str | None
    changed: bool
    closed_period: bool
    cells: int
    prev_row_hash: str
    row_hash: str


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return f"{len(text)}:{text}"


def run_content_hash(fields: dict[str, Any]) -> str:
    """SHA-256 of the canonical text of a run row (length-prefixed fields, ``-`` for NULL)."""
    return hashlib.sha256("|".join(_text(fields[name]) for name in RUN_CONTENT_FIELDS).encode()).hexdigest()


def run_chain_head(con: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    row = fetch_one(con, "SELECT run_seq, row_hash FROM report_run ORDER BY run_seq DESC LIMIT 1")
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)


def cell_table(run: ReportRun, run_seq: int, cells: Sequence[tuple[Any, ...]]) -> pa.Table:
    """Cells (tuples in ``CELL_FIELDS`` order) as an Arrow table; an amount that does not fit
    DECIMAL(18,2) exactly is refused, never rounded."""
    columns: list[list[Any]] = [[] for _ in CELL_FIELDS]
    for cell in cells:
        for i, value in enumerate(cell):
            columns[i].append(value)
    amount_index = CELL_FIELDS.index("amount")
    for value in columns[amount_index]:
        if value is not None and (not isinstance(value, Decimal) or value.as_tuple().exponent < -2):  # type: ignore[operator]
            raise ValueError(f"report {run.report}: amount {value!r} is not an exact amount in cents")
    n = len(cells)
    head = [[run.realm_id] * n, [run.report] * n, [run.period_key] * n, [run_seq] * n]
    arrays = [_column(values, field.type) for values, field in zip(head + columns, CELL_SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=CELL_SCHEMA)


def _column(values: list[Any], kind: pa.DataType) -> pa.Array:
    """One cell column, built without ``pa.array`` (its first use imports pandas: arrow_columns.py)."""
    if pa.types.is_decimal(kind):
        return decimals(values, kind.precision, kind.scale)
    return _BUILDERS[kind](values)


_BUILDERS = {pa.string(): strings, pa.int64(): int64s, pa.int32(): int32s, pa.date32(): dates,
             pa.list_(pa.string()): string_lists}  # fmt: skip


def store_run(
    con: duckdb.DuckDBPyConnection, run: ReportRun, cells: Sequence[tuple[Any, ...]], *, today: date
) -> StoredRun:
    """Replace the period's cells and append the run to the chained log, inside the caller's
    transaction."""
    if run.fetched_at.tzinfo is None:
        raise ValueError("fetched_at must be timezone-aware")
    ensure_schema(con)
    head_seq, head_hash = run_chain_head(con)
    run_seq = head_seq + 1
    previous = fetch_one(
        con,
        "SELECT content_hash FROM report_run WHERE realm_id = ? AND report = ? AND period_key = ? AND params = ? "
        "ORDER BY run_seq DESC LIMIT 1",
        [run.realm_id, run.report, run.period_key, run.params],
    )
    previous_hash = str(previous[0]) if previous else None
    changed = previous_hash is not None and previous_hash != run.content_hash
    closed = run.period_end is not None and run.period_end < today
    table = cell_table(run, run_seq, cells)
    fields = {
        "run_seq": run_seq, "realm_id": run.realm_id, "report": run.report, "period_key": run.period_key,
        "period_start": run.period_start, "period_end": run.period_end, "params": run.params,
        "content_hash": run.content_hash, "previous_hash": previous_hash, "changed": changed, "closed_period": closed,
        "parts": run.parts, "requests": run.requests, "splits": run.splits, "cells": table.num_rows,
        "no_data": run.no_data, "fetched_at": run.fetched_at, "trigger": run.trigger, "run_id": run.run_id,
    }  # fmt: skip
    row_hash = chain(head_hash, run_content_hash(fields))
    con.execute(
        "DELETE FROM report_cell WHERE realm_id = ? AND report = ? AND period_key = ?",
        [run.realm_id, run.report, run.period_key],
    )
    con.register("report_cells_in", table)
    try:
        con.execute("INSERT INTO report_cell BY NAME SELECT * FROM report_cells_in")
    finally:
        con.unregister("report_cells_in")
    names = [*RUN_CONTENT_FIELDS, "prev_row_hash", "row_hash"]
    con.execute(
        f"INSERT INTO report_run ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
        [*(fields[n] for n in RUN_CONTENT_FIELDS), head_hash, row_hash],
    )
    return StoredRun(run_seq, previous_hash, changed, closed, table.num_rows, head_hash, row_hash)


@dataclass(frozen=True)
class RunChainVerification:
    rows_checked: int
    first_broken: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_broken is None


def verify_runs(con: duckdb.DuckDBPyConnection) -> RunChainVerification:
    """Recompute every run row's hash and the chain; name the first row that does not match."""
    if not has_report_tables(con):
        return RunChainVerification(0)
    columns = ", ".join(RUN_CONTENT_FIELDS)
    cur = con.execute(f"SELECT {columns}, prev_row_hash, row_hash FROM report_run ORDER BY run_seq")
    prev, expected, checked = GENESIS_HASH, 1, 0
    for row in cur.fetchall():
        fields = dict(zip(RUN_CONTENT_FIELDS, row, strict=False))
        checked += 1
        seq = fields["run_seq"]
        if seq != expected:
            return RunChainVerification(checked, expected, f"report run {expected} is missing (next is {seq})")
        if row[-2] != prev or chain(prev, run_content_hash(fields)) != row[-1]:
            return RunChainVerification(checked, seq, f"report run {seq} was modified after it was recorded")
        prev, expected = row[-1], expected + 1
    return RunChainVerification(checked)


__all__ = [
    "CELL_FIELDS",
    "REPORT_VIEWS",
    "ReportRun",
    "RunChainVerification",
    "StoredRun",
    "copy_reports",
    "ensure_schema",
    "store_run",
    "verify_runs",
]
