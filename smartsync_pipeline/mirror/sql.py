"""Small DuckDB conveniences shared by the mirror modules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb


def fetch_one(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> tuple | None:
    """First row of a query, consuming the whole result (DuckDB 2 refuses new work on a connection
    whose previous result was left half-read)."""
    rows = con.execute(sql, list(params)).fetchall()
    return rows[0] if rows else None


def sql_literal(text: str) -> str:
    """``text`` as a quoted SQL string literal (for paths in statements that take no parameters)."""
    return "'" + text.replace("'", "''") + "'"
