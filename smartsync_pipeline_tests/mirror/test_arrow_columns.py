"""Arrow columns built without ``pa.array``: the same arrays, and no pandas or pyarrow.compute import."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest

from smartsync_pipeline.mirror.apply import STAGING_SCHEMA, stage
from smartsync_pipeline.mirror.arrow_columns import (
    bools,
    dates,
    decimals,
    int32s,
    int64s,
    joined_strings,
    string_lists,
    strings,
)


@pytest.mark.parametrize("values", [[], [0], [1, -2, 2**63 - 1, -(2**63)]])
def test_int64s_equal_what_pa_array_makes(values: list[int]) -> None:
    assert int64s(values).equals(pa.array(values, pa.int64()))


@pytest.mark.parametrize("length", [0, 1, 7, 8, 9, 17, 1000])
def test_bools_pack_every_bit_where_arrow_reads_it(length: int) -> None:
    values = [i % 3 == 0 or i % 7 == 0 for i in range(length)]
    column = bools(values)
    assert column.equals(pa.array(values, pa.bool_()))
    assert column.to_pylist() == values


def test_strings_keep_nulls_and_non_ascii() -> None:
    values = ["1", None, "O'Brien — Zürich", "", "日本"]
    column = strings(values)
    assert column.type == pa.string()
    assert column.to_pylist() == values
    assert column.null_count == 1


def test_nullable_columns_equal_what_pa_array_makes() -> None:
    """The report cells' columns: nulls where None, in every position of a validity byte."""
    ints = [1, None, -(2**31), 2**31 - 1, None, 0, 7, 8, 9]
    assert int32s(ints).equals(pa.array(ints, pa.int32()))
    days = [date(2026, 3, 31), None, date(1969, 12, 31), date(1, 1, 1), date(9999, 12, 31)]
    assert dates(days).equals(pa.array(days, pa.date32()))
    amounts = [Decimal("1.50"), None, Decimal("-9999999999999999.99"), Decimal("0"), Decimal("12.3"), Decimal("-0.01")]
    assert decimals(amounts, 18, 2).equals(pa.array(amounts, pa.decimal128(18, 2)))
    lists = [["Income", "Sales"], None, [], ["Zoë — Zürich"], None]
    assert string_lists(lists).equals(pa.array(lists, pa.list_(pa.string())))
    assert int32s([1, 2]).null_count == 0 and dates([]).to_pylist() == []


@pytest.mark.parametrize(
    "amount",
    [Decimal("1.005"), Decimal("10000000000000000"), Decimal("-1E+16"), Decimal("1." + "0" * 28 + "1"), Decimal("NaN")],
)
def test_decimals_refuse_what_the_type_cannot_hold_exactly(amount: Decimal) -> None:
    with pytest.raises(ValueError, match="is not exact in DECIMAL"):
        decimals([Decimal("1.00"), amount], 18, 2)


def test_joined_strings_cut_the_joined_bytes_at_each_text() -> None:
    texts = [t.encode() for t in ['{"a":1}', "", '{"name":"Zoë"}', "x" * 5000]]
    column = joined_strings(texts, b"".join(texts))
    assert column.type == pa.string()
    assert column.to_pylist() == [t.decode() for t in texts]


def test_a_staged_page_has_the_staging_schema_and_its_values() -> None:
    objects = [
        {"Id": "12", "SyncToken": 3, "MetaData": {"LastUpdatedTime": "2026-11-01T09:00:00-08:00"}},
        {"Id": "x-9", "status": "Deleted", "MetaData": {"CreateTime": "2026-10-01T09:00:00-08:00"}},
    ]
    table = stage(objects, first_seq=1000)
    assert table.schema == STAGING_SCHEMA
    rows = table.to_pylist()
    assert [r["seq"] for r in rows] == [1000, 1001]
    assert [r["id"] for r in rows] == ["12", "x-9"]
    assert rows[0]["id_key"] == 12 and rows[1]["id_key"] < 0
    assert [r["sync_token"] for r in rows] == ["3", None]
    assert [r["is_deleted"] for r in rows] == [False, True]
    assert [r["last_updated"] for r in rows] == ["2026-11-01T09:00:00-08:00", None]
    assert [r["created"] for r in rows] == [None, "2026-10-01T09:00:00-08:00"]
    assert rows[1]["raw"] == '{"Id":"x-9","MetaData":{"CreateTime":"2026-10-01T09:00:00-08:00"},"status":"Deleted"}'


PROBE = """
import sys
from datetime import UTC, datetime
import duckdb
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.apply import ApplyContext, apply_staged, stage
from smartsync_pipeline.mirror.schema import migrate
from smartsync_pipeline.entities import entity

con = duckdb.connect()
migrate(con)
staged = stage([{"Id": str(i), "SyncToken": "0", "TotalAmt": 1.5} for i in range(1, 2001)])
ctx = ApplyContext("r1", "manual", None, "s1", datetime(2026, 11, 30, tzinfo=UTC))
con.execute("BEGIN TRANSACTION")
result = apply_staged(con, entity("Bill"), staged, ctx, change_log.ChangeLogAppender(con))
con.execute("COMMIT")
print(result.created, change_log.verify(con).ok, "pandas" in sys.modules, "pyarrow.compute" in sys.modules)
"""


def test_staging_and_applying_a_page_import_neither_pandas_nor_pyarrow_compute() -> None:
    """A fresh process (pandas is loaded in this one): the first ``pa.array`` of a list would import
    pandas, ~0.45 s of a backfill's first page (see arrow_columns.py)."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2000", "True", "False", "False"]


REPORT_PROBE = """
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from smartsync_pipeline.mirror.reports import ReportRun, cell_table
run = ReportRun("1", "ProfitAndLoss", "2026-03", date(2026, 3, 1), date(2026, 3, 31), "{}", "0" * 64, 1, 1, 0,
                False, datetime(2026, 4, 1, tzinfo=UTC), "manual")
cell = (date(2026, 3, 1), date(2026, 3, 31), 1, "data", ["Income"], "Income", None, "Sales", "1", "total",
        "Total", None, None, "10.50", Decimal("10.50"), None)
table = cell_table(run, 7, [cell, cell])
print(table.num_rows, table.column("amount").to_pylist()[0], "pandas" in sys.modules)
"""


def test_a_report_runs_cells_import_no_pandas() -> None:
    """Storing a report run built its cell columns with ``pa.array``: the first one imported pandas
    (0.45-0.7 s of every report run's process)."""
    out = subprocess.run([sys.executable, "-c", REPORT_PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2", "10.50", "False"]


def test_text_past_a_string_columns_reach_is_refused_clearly(monkeypatch) -> None:
    """32-bit offsets cannot address past 2 GiB: a clear error, never wrapped offsets (the bound is
    lowered here so the test need not allocate 2 GiB)."""
    from smartsync_pipeline.mirror import arrow_columns

    monkeypatch.setattr(arrow_columns, "_INT32_MAX", 10)
    texts = [b"abcdef", b"ghijkl"]
    with pytest.raises(ValueError, match="12 bytes of text do not fit one Arrow string column"):
        arrow_columns.joined_strings(texts, b"".join(texts))
    assert arrow_columns.joined_strings(texts[:1], texts[0]).to_pylist() == ["abcdef"]
