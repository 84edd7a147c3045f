"""Query and CDC envelopes, and the retry policy: pure functions on literal data."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

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
