"""Rows leave DuckDB with exact money: every DECIMAL value of every mirror table reaches Python as the
Decimal DuckDB holds (compared with DuckDB's own text of it), and every other column is typed as
DuckDB's ``.df()`` types it. Before smart/rows.py, the reader used ``.df()``: balances were float64."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from smartsync_pipeline.entities import iter_entities
from smartsync_pipeline.entities.registry import MONEY
from smartsync_pipeline.mirror.snapshots import SnapshotReader
from smartsync_pipeline.smart.rows import fetch_frame
from smartsync_pipeline_tests.conftest import ConnectedCompany

ENTITIES = list(iter_entities())
WITH_MONEY = [s for s in ENTITIES if any(c.type == MONEY for c in s.columns)]


@pytest.fixture(scope="module")
def company(sandbox, tmp_path_factory) -> ConnectedCompany:
    connected = ConnectedCompany(tmp_path_factory.mktemp("rows_home"), sandbox)
    connected.engine().sync(connected.realm_id, mode="full")
    return connected


@pytest.fixture(scope="module")
def snapshot(company):
    reader = SnapshotReader(company.home)
    with reader.cursor(realm_id=company.realm_id) as (cur, _info):
        yield cur
    reader.close()


@pytest.mark.parametrize("spec", WITH_MONEY, ids=[s.name for s in WITH_MONEY])
def test_money_columns_are_the_exact_decimals_duckdb_holds(snapshot, spec) -> None:
    money = [c.name for c in spec.columns if c.type == MONEY]
    rows = fetch_frame(snapshot, f"SELECT id, {', '.join(money)} FROM {spec.table} ORDER BY id")
    texts = snapshot.execute(
        f"SELECT id, {', '.join(f'CAST({m} AS VARCHAR)' for m in money)} FROM {spec.table} ORDER BY id"
    ).fetchall()
    assert len(rows) == len(texts) > 0
    for column_index, name in enumerate(money, start=1):
        values = rows[name].tolist()
        expected = [None if t[column_index] is None else Decimal(t[column_index]) for t in texts]
        assert [type(v) for v in values if v is not None] == [Decimal] * sum(v is not None for v in values), name
        assert values == expected, name
        # Sums are exact decimal arithmetic, not float: the same as summing DuckDB's own text.
        total = rows[name].sum()
        assert isinstance(total, Decimal) and total == sum((e for e in expected if e is not None), Decimal(0))


@pytest.mark.parametrize("spec", ENTITIES, ids=[s.name for s in ENTITIES])
def test_other_columns_are_typed_as_duckdb_types_them(snapshot, spec) -> None:
    """Only money changes: the rest of the frame equals DuckDB's own ``.df()`` (dtypes and values)."""
    others = [c.name for c in spec.columns if c.type != MONEY]
    sql = f"SELECT id, {', '.join(others)}, last_updated_time, is_deleted FROM {spec.table} ORDER BY id"
    ours = fetch_frame(snapshot, sql)
    theirs = snapshot.execute(sql).df()
    pd.testing.assert_frame_equal(ours, theirs)


def test_nulls_and_parameters(snapshot) -> None:
    """Missing amounts, dates, integers and booleans come back as pandas' missing values, as with ``.df()``."""
    sql = (
        "SELECT CAST(NULL AS DECIMAL(18,2)) AS m, CAST(? AS DECIMAL(18,2)) AS p, CAST(NULL AS DATE) AS d, "
        "CAST(NULL AS INTEGER) AS i, CAST(NULL AS BOOLEAN) AS b UNION ALL "
        "SELECT 0.10, 0.20, DATE '2026-01-31', 3, true"
    )
    ours = fetch_frame(snapshot, sql, ["-12.34"])
    theirs = snapshot.execute(sql, ["-12.34"]).df()
    assert ours["m"].isna().tolist() == [True, False] and ours["m"].iloc[1] == Decimal("0.10")
    assert ours["p"].tolist() == [Decimal("-12.34"), Decimal("0.20")]
    assert ours["m"].sum() + ours["p"].sum() == Decimal("-12.04")  # 0.1 + 0.2 is 0.3, not 0.30000000000000004
    pd.testing.assert_frame_equal(ours[["d", "i", "b"]], theirs[["d", "i", "b"]])
    assert ours.to_dict("records")[0]["m"] is None


def test_the_reader_answers_with_decimal_money(company) -> None:
    """The one call site: SmartReader.read hands services Decimal balances (float64 before)."""
    result = company.reader(record_in_dagster=False).read("Bill", company.realm_id, where="balance > 0")
    assert len(result.rows) > 0
    assert all(type(v) is Decimal for v in result.rows["balance"].tolist())
    assert isinstance(result.rows["balance"].sum(), Decimal)


@pytest.mark.parametrize(
    "shape",
    ["no rows", "only nulls", "mixed"],
)
def test_edge_shapes_are_typed_as_duckdb_types_them(snapshot, shape) -> None:
    """No rows, or a column of nothing but NULL: text, integers, booleans and dates still match ``.df()``."""
    columns = "CAST(s AS VARCHAR) s, CAST(n AS INTEGER) n, CAST(b AS BOOLEAN) b, CAST(d AS DATE) d"
    rows = {
        "no rows": "SELECT NULL s, NULL n, NULL b, NULL d WHERE false",
        "only nulls": "SELECT NULL s, NULL n, NULL b, NULL d",
        "mixed": "SELECT 'a' s, 1 n, true b, DATE '2026-01-01' d UNION ALL SELECT NULL, NULL, NULL, NULL",
    }[shape]
    sql = f"SELECT {columns} FROM ({rows}) ORDER BY n NULLS LAST"
    pd.testing.assert_frame_equal(fetch_frame(snapshot, sql), snapshot.execute(sql).df())
