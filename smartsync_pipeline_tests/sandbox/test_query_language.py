"""The query parser on its own: structure comes from tokens, never from what is inside a quote."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartsync_pipeline.sandbox.query_language import (
    MAX_RESULTS_CAP,
    Condition,
    QuerySyntaxError,
    parse_query,
    tokenize,
)


def test_full_grammar_parses_case_insensitively():
    q = parse_query(
        "select COUNT(*) FrOm Bill where Balance > '0' AND VendorRef IN ('1', '2') and DocNumber LIKE '12%' "
        "OrderBy DueDate desc startPosition 11 maxResults 50"
    )
    assert q.entity == "Bill" and q.count
    assert q.where == [
        Condition("Balance", ">", "0"),
        Condition("VendorRef", "IN", ("1", "2")),
        Condition("DocNumber", "LIKE", "12%"),
    ]
    assert (q.order_by, q.descending, q.start_position, q.max_results) == ("DueDate", True, 11, 50)


def test_defaults_and_cap():
    q = parse_query("SELECT * FROM Vendor")
    assert (q.start_position, q.max_results, q.where, q.order_by) == (1, 100, [], None)
    assert parse_query("SELECT * FROM Bill MAXRESULTS 5000").max_results == MAX_RESULTS_CAP


def test_literals_numbers_booleans_and_escaped_quotes():
    q = parse_query(r"SELECT * FROM Vendor WHERE DisplayName = 'O\'Brien' AND Balance >= 10.5 AND Active = false")
    assert [c.value for c in q.where] == ["O'Brien", 10.5, False]


def test_nested_metadata_field_is_one_token():
    q = parse_query("SELECT * FROM Bill WHERE MetaData.LastUpdatedTime >= '2026-01-01T00:00:00-08:00'")
    assert q.where[0].field == "MetaData.LastUpdatedTime"


def test_injection_inside_a_quote_stays_a_value():
    q = parse_query(r"SELECT * FROM Vendor WHERE DisplayName = 'x\' OR Id > \'0'")
    assert q.where == [Condition("DisplayName", "=", "x' OR Id > '0")]
    # Without the escapes the quote closes early and the rest is a syntax error, not a second condition.
    with pytest.raises(QuerySyntaxError):
        parse_query("SELECT * FROM Vendor WHERE DisplayName = 'x' OR Id > '0'")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SELECT",
        "SELECT Id FROM Bill",
        "SELECT * FROM",
        "SELECT * FROM Bill WHERE",
        "SELECT * FROM Bill WHERE Balance",
        "SELECT * FROM Bill WHERE Balance <> 1",
        "SELECT * FROM Bill WHERE Balance = 'open",
        "SELECT * FROM Bill WHERE Id IN ()",
        "SELECT * FROM Bill WHERE Id IN ('1' '2')",
        "SELECT * FROM Bill STARTPOSITION 'x'",
        "SELECT * FROM Bill MAXRESULTS 10 MAXRESULTS 20",
        "SELECT * FROM Bill; DROP TABLE Bill",
        "SELECT * FROM Bill WHERE DocNumber LIKE 5",
    ],
)
def test_malformed_queries_are_rejected(text):
    with pytest.raises(QuerySyntaxError):
        parse_query(text)


@given(st.text(max_size=40))
def test_any_quoted_value_round_trips_as_one_literal(value):
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    q = parse_query(f"SELECT * FROM Vendor WHERE DisplayName = '{escaped}' MAXRESULTS 3")
    assert q.where == [Condition("DisplayName", "=", value)]
    assert q.max_results == 3


def test_tokenizer_positions():
    tokens = tokenize("SELECT * FROM Bill")
    assert [t.kind for t in tokens] == ["word", "punct", "word", "word", "end"]
    assert tokens[3].position == 14
