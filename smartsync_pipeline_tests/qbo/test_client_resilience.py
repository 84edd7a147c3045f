"""Throttling, server errors, odd bodies and dead connections, against real loopback servers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.qbo.errors import (
    EndpointRefused,
    QBOFault,
    RetriesExhausted,
    ServerError,
    ThrottledError,
    TransportError,
    ValidationFault,
)
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.qbo.conftest import ScriptedQBO, json_body, save_company

FAST = {"backoff_base": 0.02, "backoff_cap": 0.1}


def stats(sandbox: SandboxProcess) -> dict[str, Any]:
    return sandbox.control("stats", method="GET")


@pytest.fixture
def fresh(sandbox_factory: Callable[..., SandboxProcess]) -> SandboxProcess:
    return sandbox_factory()


def test_429_is_honoured_then_succeeds(fresh: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    client = client_for(fresh)
    fresh.control("faults", {"fail_next": [{"status": 429, "count": 2}]})
    started = time.monotonic()
    assert client.count("Term") == 4
    elapsed = time.monotonic() - started
    assert elapsed >= 2.0  # two answers with Retry-After: 1, each waited out
    assert (client.stats.throttled, client.stats.retries) == (2, 2)
    seen = stats(fresh)
    assert seen["throttled_429"] == 2
    assert seen["requests"]["query"] == 3


def test_throttling_is_waited_out_by_time_not_by_attempts(
    fresh: SandboxProcess, client_for: Callable[..., QBOClient]
) -> None:
    """QBO's advice is to wait (up to 60 s) on 429: more 429s than ``max_attempts`` still get through
    while the throttle waits stay inside the budget, and they do not use up the 5xx retries; 5xx
    get no such grace."""
    fresh.control("faults", {"fail_next": [{"status": 429, "count": 4}, {"status": 503, "count": 1}]})
    client = client_for(fresh, max_attempts=2)
    assert client.count("Term") == 4  # the 429s did not use up the one 5xx retry
    assert (client.stats.throttled, client.stats.retries) == (4, 5)
    assert stats(fresh)["requests"]["query"] == 6

    fresh.control("faults", {"fail_next": [{"status": 503, "count": 4}]})
    with pytest.raises(RetriesExhausted, match="after 2 attempts"):
        client_for(fresh, max_attempts=2, **FAST).count("Term")


def test_throttle_budget_bounds_the_wait(fresh: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    """The budget is a deadline: Retry-After 1 each time, waits of ~1 s after attempts 1 and 2; the
    third wait would end past 2.5 s, so the call stops at once (before, the attempt count extended it
    to 4 attempts and more than 3 s)."""
    fresh.control("faults", {"fail_next": [{"status": 429, "count": 50}]})
    client = client_for(fresh, max_attempts=2, throttle_budget=2.5)
    started = time.monotonic()
    with pytest.raises(RetriesExhausted, match="after 3 attempts") as info:
        client.count("Term")
    elapsed = time.monotonic() - started
    assert 2.0 <= elapsed <= 2.5 + 1.0  # the budget, plus at most one (fast) request
    assert isinstance(info.value.last_error, ThrottledError)
    assert "throttle budget" in str(info.value)
    fresh.control("faults", {"fail_next": []})


@pytest.mark.parametrize(("budget", "retry_after"), [(60.0, 100), (5.0, 10), (15.0, 20)])
def test_a_retry_after_beyond_the_budget_stops_the_call_at_once(
    fresh: SandboxProcess, client_for: Callable[..., QBOClient], budget: float, retry_after: int
) -> None:
    """A 429 asking for more than the remaining budget ends the call at once: no sleep that would
    fail later (before: with Retry-After 60 one call waited ~300 s; with budget 15 and Retry-After 10
    a read waited ~51 s). Retry-After ≤ 60 s is shared with the realm's limiter; the next caller with
    a short budget also fails at once instead of sleeping out the block."""
    fresh.control("faults", {"throttle_retry_after": retry_after, "fail_next": [{"status": 429, "count": 1}]})
    try:
        started = time.monotonic()
        with pytest.raises(ThrottledError, match="throttle budget"):
            client_for(fresh, throttle_budget=budget).count("Term")
        assert time.monotonic() - started < 2.0  # one request, no sleep
        if retry_after <= 60:  # the realm is now blocked for everyone: a second caller does not sleep it out
            started = time.monotonic()
            with pytest.raises(ThrottledError, match="throttle budget"):
                client_for(fresh, throttle_budget=1.0).count("Term")
            assert time.monotonic() - started < 1.0
    finally:
        fresh.control("faults", {"throttle_retry_after": 1, "fail_next": []})


def test_xml_throttle_body(fresh: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    fresh.control("faults", {"xml_throttle": True, "fail_next": [{"status": 429, "count": 1}]})
    single = client_for(fresh, max_attempts=1, throttle_budget=0)
    with pytest.raises(ThrottledError) as info:
        single.count("Term")
    assert info.value.code == "3001"
    assert info.value.http_status == 429
    assert info.value.retry_after == 1.0
    assert "ThrottleExceeded" in str(info.value)
    fresh.control("faults", {"fail_next": [{"status": 429, "count": 1}]})
    assert client_for(fresh).count("Term") == 4  # and with retries it goes through


def test_5xx_is_retried(fresh: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    client = client_for(fresh, **FAST)
    fresh.control("faults", {"fail_next": [{"status": 500, "count": 2}, {"status": 503, "count": 1}]})
    assert client.count("Term") == 4
    assert client.stats.retries == 3
    assert stats(fresh)["server_errors_5xx"] == 3


def test_retries_are_bounded_and_say_how_many(fresh: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    client = client_for(fresh, max_attempts=3, **FAST)
    fresh.control("faults", {"fail_next": [{"status": 503, "count": 10}]})
    with pytest.raises(RetriesExhausted, match="after 3 attempts") as info:
        client.count("Term")
    assert info.value.attempts == 3
    assert isinstance(info.value.last_error, ServerError)
    assert info.value.last_error.http_status == 503
    assert info.value.last_error.code == "10000"
    assert stats(fresh)["requests"]["query"] == 3


def test_html_503_body(fresh: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    fresh.control("faults", {"html_errors": True, "fail_next": [{"status": 503, "count": 1}]})
    with pytest.raises(ServerError, match="503 Service Unavailable") as info:
        client_for(fresh, max_attempts=1).count("Term")
    assert info.value.code is None
    fresh.control("faults", {"fail_next": [{"status": 502, "count": 1}]})
    assert client_for(fresh, **FAST).count("Term") == 4


def test_timeouts_are_retried_for_reads(fresh: SandboxProcess, client_for: Callable[..., QBOClient]) -> None:
    fresh.control("faults", {"latency_ms": 1500})
    client = client_for(fresh, timeout=(2.0, 0.3), max_attempts=2, **FAST)
    with pytest.raises(RetriesExhausted, match="2 attempts") as info:
        client.count("Term")
    assert isinstance(info.value.last_error, TransportError)
    assert "ReadTimeout" in str(info.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connection(home: Home) -> None:
    port = _free_port()
    info = {
        "realm_id": "123",
        "api_base": f"http://127.0.0.1:{port}/v3",
        "token_url": f"http://127.0.0.1:{port}/token",
        "client_id": "c",
        "client_secret": "client-secret-value",
        "access_token": "access-token-value-1",
        "refresh_token": "refresh-token-value-1",
    }
    conn, tokens = save_company(info, home)
    client = QBOClient(conn, tokens, home=home, max_attempts=3, **FAST)
    # Nothing listens there: no retries (before: 3 attempts, ~40 s with the default backoff), one
    # message saying what to do; a write the same (nothing was sent).
    for call in (lambda: client.count("Term"), lambda: client.create("Term", {"Name": "Net 5", "DueDays": 5})):
        started = time.monotonic()
        with pytest.raises(EndpointRefused, match="refused the connection") as info_:
            call()
        assert time.monotonic() - started < 1.0
        assert "smartsync sandbox start" in str(info_.value)
        assert isinstance(info_.value, TransportError)
    assert client.stats.retries == 0


def _scripted_client(server: ScriptedQBO, home: Home, **options: Any) -> QBOClient:
    save_company(server.info, home)
    store = CompanyStore(home)
    return QBOClient(store.load("4620816365"), store.tokens("4620816365"), home=home, **options)


def test_fault_under_http_200(scripted: Callable[..., ScriptedQBO], home: Home) -> None:
    fault = {
        "Fault": {
            "Error": [
                {
                    "Message": "Duplicate Name Exists Error",
                    "Detail": "The name supplied already exists.",
                    "code": "6240",
                }
            ],
            "type": "ValidationFault",
        },
        "time": "2026-11-26T10:00:00.000-08:00",
    }
    xml = (
        b'<IntuitResponse><Fault type="ValidationFault"><Error code="6000">'
        b"<Message>A business validation error has occurred</Message></Error></Fault></IntuitResponse>"
    )
    server = scripted(
        [
            (200, {"Content-Type": "application/json"}, json_body(fault)),
            (200, {"Content-Type": "application/xml"}, xml),
        ]
    )
    client = _scripted_client(server, home, **FAST)
    with pytest.raises(ValidationFault) as info:
        client.create("Vendor", {"DisplayName": "Dup"})
    assert (info.value.code, info.value.http_status, info.value.attempts) == ("6240", 200, 1)
    assert "Duplicate Name" in str(info.value)
    with pytest.raises(QBOFault) as xml_info:
        client.count("Vendor")
    assert xml_info.value.code == "6000" and xml_info.value.http_status == 200
    assert len(server.requests) == 2  # neither was retried
    assert client.server_time is not None  # the fault's "time" still counts


def test_non_json_bodies_never_crash(scripted: Callable[..., ScriptedQBO], home: Home) -> None:
    server = scripted(
        [
            (200, {"Content-Type": "text/html"}, b"<html><title>Captive portal</title></html>"),
            (200, {"Content-Type": "application/json"}, b'{"QueryResponse": {"Bill": [{"Id": "1"'),
            (404, {"Content-Type": "text/plain"}, b"not here"),
            (200, {"Content-Type": "application/json"}, json_body({"QueryResponse": {"totalCount": 3}})),
        ]
    )
    client = _scripted_client(server, home, **FAST)
    with pytest.raises(QBOFault, match="not a JSON object"):
        client.count("Bill")
    with pytest.raises(QBOFault, match="not a JSON object"):
        client.count("Bill")
    with pytest.raises(QBOFault, match="not here") as info:
        client.count("Bill")
    assert info.value.http_status == 404
    assert client.count("Bill") == 3


def test_retry_after_beyond_the_limit_is_not_slept(scripted: Callable[..., ScriptedQBO], home: Home) -> None:
    throttle = json_body({"Fault": {"Error": [{"Message": "ThrottleExceeded", "code": "3001"}], "type": "SERVICE"}})
    server = scripted([(429, {"Content-Type": "application/json", "Retry-After": "3600"}, throttle)])
    client = _scripted_client(server, home, **FAST)
    started = time.monotonic()
    with pytest.raises(ThrottledError) as info:
        client.count("Bill")
    assert time.monotonic() - started < 2
    assert info.value.retry_after == 3600
    assert len(server.requests) == 1
