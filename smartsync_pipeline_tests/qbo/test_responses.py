"""Query and CDC envelopes, and the retry policy: pure functions on literal data."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartsync_pipeline.qbo.errors import (
    QBOFault,
    QueryError,
    ServerError,
    StaleObjectError,
    ThrottledError,
    TransportError,
    ValidationFault,
)
from smartsync_pipeline.qbo.responses import parse_cdc_response, parse_qbo_time, parse_query_response
from smartsync_pipeline.qbo.retry_policy import RetryPolicy

SINCE = datetime(2026, 11, 1, tzinfo=UTC)


def test_query_page_shapes() -> None:
    page = parse_query_response(
        {"QueryResponse": {"Bill": [{"Id": "1"}, {"Id": "2"}], "startPosition": 1, "maxResults": 2}}, "Bill"
    )
    assert [b["Id"] for b in page.items] == ["1", "2"]
    assert (page.start_position, page.max_results, page.total_count) == (1, 2, None)
    assert parse_query_response({"QueryResponse": {}}, "Bill").items == []
    assert parse_query_response({"QueryResponse": {"totalCount": 37}}, "Bill").total_count == 37
    with pytest.raises(QBOFault):
        parse_query_response({"nothing": 1}, "Bill")


def test_cdc_splits_deletes_and_keeps_everything() -> None:
    doc = {
        "CDCResponse": [
            {
                "QueryResponse": [
                    {
                        "Bill": [
                            {"Id": "1", "SyncToken": "2"},
                            {"Id": "9", "status": "Deleted", "MetaData": {"LastUpdatedTime": "x"}},
                        ],
                        "startPosition": 1,
                        "maxResults": 2,
                        "totalCount": 2,
                    },
                    {"Invoice": [{"Id": "5"}]},
                    {"Surprise": [{"Id": "77"}]},
                ]
            }
        ],
        "time": "2026-11-26T10:00:00.123-08:00",
    }
    result = parse_cdc_response(doc, ["Bill", "Invoice", "Vendor"], SINCE)
    assert [o["Id"] for o in result.entities["Bill"].active] == ["1"]
    assert [o["Id"] for o in result.entities["Bill"].deleted] == ["9"]
    assert [o["Id"] for o in result.entities["Invoice"].active] == ["5"]
    assert result.entities["Vendor"].count == 0
    assert result.entities["Surprise"].count == 1  # never silently dropped
    assert result.object_count == 4
    assert not result.is_full
    assert result.server_time == datetime(2026, 11, 26, 18, 0, 0, 123000, tzinfo=UTC)


def test_cdc_full_response_is_flagged() -> None:
    bills = [{"Id": str(i)} for i in range(600)]
    invoices = [{"Id": str(i)} for i in range(400)]
    doc = {"CDCResponse": [{"QueryResponse": [{"Bill": bills}, {"Invoice": invoices}]}], "time": "2026-11-26T10:00:00Z"}
    result = parse_cdc_response(doc, ["Bill", "Invoice"], SINCE)
    assert result.object_count == 1000 and result.is_full


def test_qbo_times() -> None:
    assert parse_qbo_time("2026-11-26T10:00:00-08:00") == datetime(
        2026, 11, 26, 10, tzinfo=timezone(timedelta(hours=-8))
    )
    assert parse_qbo_time("2026-11-26T10:00:00Z") == datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert parse_qbo_time("garbage") is None
    assert parse_qbo_time(None) is None


def test_backoff_is_bounded_full_jitter() -> None:
    policy = RetryPolicy(max_attempts=6, backoff_base=0.5, backoff_cap=3.0)
    rng = random.Random(1)
    for attempt in range(1, 10):
        ceiling = min(3.0, 0.5 * 2 ** (attempt - 1))
        waits = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # full jitter spreads over the whole range
        assert min(waits) < ceiling * 0.2


def test_retry_after_wins_and_is_bounded() -> None:
    policy = RetryPolicy()
    assert 4.0 <= policy.delay(1, 4.0) <= 4.25
    assert policy.delay(1, 3600.0) is None


def test_what_is_retried() -> None:
    is_retryable = RetryPolicy.is_retryable
    assert is_retryable(ThrottledError("t"), idempotent=False)
    assert is_retryable(ServerError("s"), idempotent=False)
    assert not is_retryable(ValidationFault("v"), idempotent=True)
    assert not is_retryable(StaleObjectError("s"), idempotent=True)
    assert not is_retryable(QueryError("q"), idempotent=True)
    assert is_retryable(TransportError("x"), idempotent=True)
    assert not is_retryable(TransportError("x"), idempotent=False)
    assert is_retryable(TransportError("x"), idempotent=False, sent=False)


# -- malformed answers: a typed error, never "no objects" (reliability brief, part 2) ------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_KEYS = st.sampled_from(["QueryResponse", "CDCResponse", "Bill", "Invoice", "time", "Id", "SyncToken", "totalCount"])
_SHAPED = st.recursive(
    st.none() | st.integers() | st.text(max_size=5) | st.just("2026-11-26T10:00:00Z"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_JSON, _SHAPED))
def test_any_json_is_a_page_or_a_typed_fault(doc: object) -> None:
    try:
        page = parse_query_response(doc, "Bill")
    except QBOFault:
        return
    assert all(isinstance(i, dict) and isinstance(i["Id"], str | int) for i in page.items)
    for n in (page.start_position, page.max_results, page.total_count):
        assert n is None or (isinstance(n, int) and n >= 0)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_JSON, _SHAPED))
def test_any_json_is_a_cdc_result_or_a_typed_fault(doc: object) -> None:
    try:
        result = parse_cdc_response(doc, ["Bill", "Invoice"], SINCE)
    except QBOFault:
        return
    assert result.server_time.tzinfo is not None
    for changes in result.entities.values():
        assert all(isinstance(o, dict) and str(o["Id"]).strip() for o in (*changes.active, *changes.deleted))


@pytest.mark.parametrize(
    "body",
    [
        {"QueryResponse": {"Bill": "nope"}},
        {"QueryResponse": {"Bill": None}},
        {"QueryResponse": {"Bill": [1, 2]}},
        {"QueryResponse": {"Bill": [{"SyncToken": "1"}]}},
        {"QueryResponse": {"Bill": [{"Id": None}]}},
        {"QueryResponse": {"Bill": [{"Id": True}]}},
        {"QueryResponse": {"Bill": [{"Id": "1", "SyncToken": 3}]}},
        {"QueryResponse": {"Foo": [{"Id": "1"}], "Bar": [{"Id": "2"}]}},
        {"QueryResponse": {"totalCount": "lots"}},
        {"QueryResponse": {"totalCount": -1}},
        {"QueryResponse": {"startPosition": [1]}},
    ],
)
def test_malformed_pages_are_typed_faults_not_empty_pages(body: dict) -> None:
    with pytest.raises(QBOFault, match="malformed answer"):
        parse_query_response(body, "Bill")


@pytest.mark.parametrize(
    "body",
    [
        {"CDCResponse": [{"QueryResponse": "nope"}], "time": "2026-11-26T10:00:00Z"},
        {"CDCResponse": [42], "time": "2026-11-26T10:00:00Z"},
        {"CDCResponse": [{"QueryResponse": ["Bill"]}], "time": "2026-11-26T10:00:00Z"},
        {"CDCResponse": [{"QueryResponse": [{"Bill": "nope"}]}], "time": "2026-11-26T10:00:00Z"},
        {"CDCResponse": [{"QueryResponse": [{"Bill": None}]}], "time": "2026-11-26T10:00:00Z"},
        {"CDCResponse": [{"QueryResponse": [{"Bill": [7]}]}], "time": "2026-11-26T10:00:00Z"},
        {"CDCResponse": [{"QueryResponse": [{"Bill": [{"status": "Deleted"}]}]}], "time": "2026-11-26T10:00:00Z"},
        {"CDCResponse": [{"QueryResponse": [{"Bill": []}]}]},
        {"CDCResponse": [{"QueryResponse": [{"Bill": []}]}], "time": "yesterday"},
    ],
)
def test_malformed_cdc_answers_are_typed_faults_not_no_changes(body: dict) -> None:
    """Read as "nothing changed", these advanced the watermark past changes never delivered."""
    with pytest.raises(QBOFault, match=r"malformed answer|no valid server time"):
        parse_cdc_response(body, ["Bill"], SINCE)


def test_well_formed_extras_still_parse() -> None:
    """Extra fields, unknown entities and another spelling of the entity key stay accepted."""
    page = parse_query_response({"QueryResponse": {"bill": [{"Id": "1", "SyncToken": "0", "New": 1}]}}, "Bill")
    assert page.items == [{"Id": "1", "SyncToken": "0", "New": 1}]
    assert parse_query_response({"QueryResponse": {"Bill": {"Id": 7}}}, "Bill").items == [{"Id": 7}]
    doc = {"CDCResponse": {"QueryResponse": {"Estimate": [{"Id": "3"}]}}, "time": "2026-11-26T10:00:00Z"}
    assert parse_cdc_response(doc, ["Bill"], SINCE).entities["Estimate"].count == 1
