"""The query builder: rendering, validation, immutability, and that no value can change structure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.qbo.errors import QueryError
from smartsync_pipeline.qbo.query import OPERATORS, Query, entity_of, render_value
from smartsync_pipeline.sandbox.query_language import parse_query


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


# -- the builder against the sandbox's own parser (reliability brief, part 2) -------------------------
# Whatever a caller passes (entity, field, operator, value), the builder either refuses it with
# QueryError or produces text that QBO's grammar parses back into exactly the query that was built.


_TEXT = st.text(max_size=30).filter(lambda s: not any(ord(c) < 32 or ord(c) == 127 for c in s))
_SCALARS = st.one_of(
    _TEXT,
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**9), max_value=10**9),
    st.booleans(),
    st.dates(),
    st.datetimes(
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-8)), timezone(timedelta(hours=5, minutes=30))])
    ),
)
_ANY_VALUE = st.one_of(_SCALARS, st.lists(_SCALARS, min_size=1, max_size=4), st.none(), st.binary(max_size=4))
_ENTITY_NAMES = st.one_of(st.sampled_from([e.name for e in ENTITIES]), _TEXT)


def _expected_value(value: object) -> object:
    """What the sandbox's parser reads back for a value the builder rendered."""
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _same_value(parsed: object, value: object) -> bool:
    if isinstance(value, bool) or isinstance(value, str | date):
        return parsed == _expected_value(value)
    if isinstance(value, int | float | Decimal):
        return not isinstance(parsed, bool | str) and Decimal(repr(float(parsed))) == Decimal(repr(float(value)))
    if isinstance(value, list):
        return isinstance(parsed, tuple) and len(parsed) == len(value) and all(map(_same_value, parsed, value))
    return False


def _mostly(draw: st.DrawFn, usual: st.SearchStrategy, odd: st.SearchStrategy) -> object:
    """Nine draws in ten from what callers usually pass, one from anything at all."""
    return draw(odd) if draw(st.integers(0, 9)) == 0 else draw(usual)


@st.composite
def _built(draw: st.DrawFn) -> tuple[Query, list[tuple[str, str, object]]] | None:
    """A query built from drawn caller input, with the conditions it should hold; None when refused."""
    name = _mostly(draw, st.sampled_from([e.name for e in ENTITIES]), _TEXT)
    try:
        q = Query.count(name) if draw(st.booleans()) else Query.select(name)
    except QueryError:
        return None
    spec = q.spec
    fields = sorted(spec.query_fields - {"Active"})
    odd_ops = st.sampled_from(["in", " like ", "<>", "!=", "= 1 OR", "=="])
    expected: list[tuple[str, str, object]] = []
    try:
        for _ in range(draw(st.integers(0, 4))):
            field = _mostly(draw, st.sampled_from(fields) | st.sampled_from(fields).map(str.lower), _TEXT)
            op = str(_mostly(draw, st.sampled_from(sorted(OPERATORS)), odd_ops | _TEXT))
            kind = op.strip().upper()
            usual = {"IN": st.lists(_SCALARS, min_size=1, max_size=4), "LIKE": _TEXT}.get(kind, _SCALARS)
            value = _mostly(draw, usual, _ANY_VALUE)
            q = q.where(field, op, value)
            expected.append((q.conditions[-1].field, kind, value))
        if spec.name_list and draw(st.booleans()):
            q = q.include_inactive()
            expected.append(("Active", "IN", [True, False]))
        if not q.is_count:
            if draw(st.booleans()):
                q = q.order_by(draw(st.sampled_from(fields)), desc=draw(st.booleans()))
            if draw(st.booleans()):
                q = q.start_position(draw(st.integers(1, 10**6)))
            if draw(st.booleans()):
                q = q.max_results(draw(st.integers(1, 1000)))
    except QueryError:
        return None
    return q, expected


@settings(max_examples=500, deadline=None)
@given(_built())
def test_no_input_changes_the_structure_the_sandbox_parses(built: tuple[Query, list] | None) -> None:
    if built is None:
        return  # refused before anything was sent: also a correct outcome
    q, expected = built
    parsed = parse_query(q.to_sql())
    assert parsed.entity == q.entity
    assert parsed.count == q.is_count
    assert [(c.field, c.op) for c in parsed.where] == [(f, op) for f, op, _ in expected]
    for condition, (_, _, value) in zip(parsed.where, expected, strict=True):
        assert _same_value(condition.value, value), (condition.value, value, q.to_sql())
    assert (parsed.order_by, parsed.descending) == (q.ordering or (None, False))
    assert parsed.start_position == (q.start or 1)
    assert parsed.max_results == (q.limit or 100)
