"""The query builder: rendering, validation, immutability, and that no value can change structure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartsync_pipeline.qbo.errors import QueryError
from smartsync_pipeline.qbo.query import Query, entity_of, render_value


def tokenize(sql: str) -> list[tuple[str, str]]:
    """A reference tokenizer for QBO's query language: ('str', decoded) for quoted literals (backslash
    escapes the next character), ('word', text) for everything else."""
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(sql):
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif ch == "'":
            i += 1
            out = []
            while True:
                if i >= len(sql):
                    raise AssertionError(f"unterminated string in {sql!r}")
                if sql[i] == "\\":
                    out.append(sql[i + 1])
                    i += 2
                elif sql[i] == "'":
                    i += 1
                    break
                else:
                    out.append(sql[i])
                    i += 1
            tokens.append(("str", "".join(out)))
        elif ch in "(),":
            tokens.append(("word", ch))
            i += 1
        else:
            j = i
            while j < len(sql) and not sql[j].isspace() and sql[j] not in "'(),":
                j += 1
            tokens.append(("word", sql[i:j]))
            i = j
    return tokens


def test_the_briefs_example_renders_exactly() -> None:
    q = (
        Query.select("Bill")
        .where("DueDate", "<=", date(2026, 12, 1))
        .where("VendorRef", "=", "12")
        .where_in("Id", ["1", "2"])
        .order_by("MetaData.LastUpdatedTime", desc=True)
        .start_position(1)
        .max_results(1000)
    )
    assert q.to_sql() == (
        "SELECT * FROM Bill WHERE DueDate <= '2026-12-01' AND VendorRef = '12' AND Id IN ('1', '2') "
        "ORDERBY MetaData.LastUpdatedTime DESC STARTPOSITION 1 MAXRESULTS 1000"
    )
    assert str(q) == q.to_sql()


def test_count_and_include_inactive() -> None:
    assert Query.count("Bill").to_sql() == "SELECT COUNT(*) FROM Bill"
    assert (
        Query.count("vendor").include_inactive().to_sql() == "SELECT COUNT(*) FROM Vendor WHERE Active IN (true, false)"
    )
    q = Query.select("Customer").where("DisplayName", "LIKE", "Acme%").include_inactive()
    assert q.to_sql() == "SELECT * FROM Customer WHERE DisplayName LIKE 'Acme%' AND Active IN (true, false)"


def test_builder_is_immutable() -> None:
    base = Query.select("Invoice")
    narrowed = base.where("Balance", ">", 0)
    assert base.to_sql() == "SELECT * FROM Invoice"
    assert narrowed.to_sql() == "SELECT * FROM Invoice WHERE Balance > 0"
    with pytest.raises(AttributeError):
        base.entity = "Bill"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("O'Brien", "'O\\'Brien'"),
        ("back\\slash", "'back\\\\slash'"),
        ("tail\\", "'tail\\\\'"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (12.5, "12.5"),
        (1e-7, "0.0000001"),
        (Decimal("1234.50"), "1234.50"),
        (date(2026, 1, 31), "'2026-01-31'"),
        (
            datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-8))),
            "'2026-11-26T10:00:00-08:00'",
        ),
        (datetime(2026, 11, 26, 18, 0, tzinfo=UTC), "'2026-11-26T18:00:00+00:00'"),
    ],
)
def test_values_render_as_qbo_expects(value: object, literal: str) -> None:
    assert render_value(value) == literal


@pytest.mark.parametrize(
    "bad",
    [None, float("nan"), float("inf"), Decimal("NaN"), datetime(2026, 1, 1), b"bytes", object(), "a\x00b", "x\ny"],
)
def test_bad_values_are_refused(bad: object) -> None:
    with pytest.raises(QueryError):
        render_value(bad)


def test_validation_happens_before_any_request() -> None:
    with pytest.raises(QueryError, match="unknown QBO entity"):
        Query.select("Bils")
    with pytest.raises(QueryError, match="cannot be queried on"):
        Query.select("Bill").where("Password", "=", "x")
    with pytest.raises(QueryError, match="invalid field name"):
        Query.select("Bill").where("Id = '1' OR Id", "=", "x")
    with pytest.raises(QueryError, match="not allowed"):
        Query.select("Bill").where("Id", "!=", "1")
    with pytest.raises(QueryError, match="not allowed"):
        Query.select("Bill").where("Id", "= '1' OR", "1")
    with pytest.raises(QueryError):
        Query.select("Bill").where("DocNumber", "LIKE", 5)
    with pytest.raises(QueryError):
        Query.select("Bill").where("Id", "=", ["1", "2"])
    with pytest.raises(QueryError):
        Query.select("Bill").where_in("Id", [])
    with pytest.raises(QueryError):
        Query.select("Bill").where_in("Id", "12")
    with pytest.raises(QueryError, match="not a name list"):
        Query.select("Bill").include_inactive()
    with pytest.raises(QueryError):
        Query.select("Vendor").where("Active", "=", True).include_inactive()
    with pytest.raises(QueryError):
        Query.select("Vendor").include_inactive().where("Active", "=", True)


@pytest.mark.parametrize("n", [0, -1, 1001, True, 1.5, "10"])
def test_max_results_bounds(n: object) -> None:
    with pytest.raises(QueryError):
        Query.select("Bill").max_results(n)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [0, -5, False, 2.0])
def test_start_position_bounds(n: object) -> None:
    with pytest.raises(QueryError):
        Query.select("Bill").start_position(n)  # type: ignore[arg-type]


def test_paging_limits_accepted_and_count_not_pageable() -> None:
    assert Query.select("Bill").max_results(1).max_results(1000).limit == 1000
    with pytest.raises(QueryError):
        Query.count("Bill").max_results(10)
    with pytest.raises(QueryError):
        Query.count("Bill").order_by("Id")


def test_fields_and_operators_are_canonicalised() -> None:
    q = Query.select("Bill").where("metadata.lastupdatedtime", ">=", "2026-01-01").where("id", "in", ["3"])
    assert q.to_sql() == "SELECT * FROM Bill WHERE MetaData.LastUpdatedTime >= '2026-01-01' AND Id IN ('3')"


def test_entity_of_raw_sql() -> None:
    assert entity_of("select count(*) from bill where Id = '1'") == "Bill"
    assert entity_of("SELECT * FROM Vendor") == "Vendor"
    with pytest.raises(QueryError):
        entity_of("SELECT 1")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40).filter(lambda s: not any(ord(c) < 32 or ord(c) == 127 for c in s)))
def test_no_string_value_can_change_the_structure(value: str) -> None:
    sql = Query.select("Vendor").where("DisplayName", "=", value).max_results(10).to_sql()
    assert tokenize(sql) == [
        ("word", "SELECT"),
        ("word", "*"),
        ("word", "FROM"),
        ("word", "Vendor"),
        ("word", "WHERE"),
        ("word", "DisplayName"),
        ("word", "="),
        ("str", value),
        ("word", "MAXRESULTS"),
        ("word", "10"),
    ]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="ab'\\ ,()%", max_size=8), min_size=1, max_size=5))
def test_in_lists_keep_their_structure(values: list[str]) -> None:
    sql = Query.select("Bill").where_in("DocNumber", values).to_sql()
    tokens = tokenize(sql)
    literals = [t for t in tokens if t[0] == "str"]
    assert [v for _, v in literals] == values
    words = [w for kind, w in tokens if kind == "word"]
    assert words == ["SELECT", "*", "FROM", "Bill", "WHERE", "DocNumber", "IN", "(", *[","] * (len(values) - 1), ")"]
