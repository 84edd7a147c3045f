"""Fault knobs of the control API: scripted failures, error rate, HTML bodies, outage, latency."""

from __future__ import annotations

import time

import pytest

from smartsync_pipeline_tests.sandbox.api_session import SandboxApi


@pytest.fixture
def sandbox_api(sandbox_factory):
    sandbox = sandbox_factory(seed=51)
    return sandbox, SandboxApi(sandbox)


def test_fail_next_scripts_exact_failures(sandbox_api):
    sandbox, api = sandbox_api
    sandbox.control("faults", {"fail_next": [{"status": 429, "count": 2}, {"status": 503, "count": 1},
                                             {"status": 401, "count": 1}]})  # fmt: skip
    responses = [api.query_response("SELECT COUNT(*) FROM Bill") for _ in range(5)]
    assert [r.status_code for r in responses] == [429, 429, 503, 401, 200]
    assert responses[0].headers["Retry-After"] == "1"
    assert responses[0].json()["Fault"]["Error"][0]["code"] == "3001"
    assert responses[2].json()["Fault"]["type"] == "SystemFault"
    assert responses[3].json()["fault"]["type"] == "AUTHENTICATION"
    stats = sandbox.control("stats", method="GET")
    assert (stats["throttled_429"], stats["server_errors_5xx"]) == (2, 1)
    assert sandbox.control("faults", method="GET")["fail_next"] == []


def test_html_errors_and_outage(sandbox_api):
    sandbox, api = sandbox_api
    sandbox.control("faults", {"down": True, "html_errors": True})
    response = api.query_response("SELECT COUNT(*) FROM Bill")
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "text/html"
    assert "<html>" in response.text
    assert api.get("bill/1").status_code == 503
    # The token endpoint and the control API keep working during an outage.
    assert api.refresh(sandbox.info["refresh_token"]).status_code == 200
    sandbox.control("faults", {"down": False})
    assert api.query_response("SELECT COUNT(*) FROM Bill").status_code == 200


def test_error_rate_uses_the_listed_statuses(sandbox_api):
    sandbox, api = sandbox_api
    sandbox.control("faults", {"error_rate": 1.0, "error_statuses": [502]})
    assert {api.query_response("SELECT COUNT(*) FROM Bill").status_code for _ in range(5)} == {502}
    sandbox.control("faults", {"error_rate": 0.5, "error_statuses": [500, 503]})
    statuses = [api.query_response("SELECT COUNT(*) FROM Bill").status_code for _ in range(60)]
    assert set(statuses) <= {200, 500, 503}
    assert 10 <= statuses.count(200) <= 50
    sandbox.control("faults", {"reset": True})
    assert api.query_response("SELECT COUNT(*) FROM Bill").status_code == 200


def test_latency(sandbox_api):
    sandbox, api = sandbox_api
    sandbox.control("faults", {"latency_ms": 300, "latency_jitter_ms": 50})
    start = time.monotonic()
    assert api.query_response("SELECT COUNT(*) FROM Bill").status_code == 200
    assert time.monotonic() - start >= 0.3


def test_bad_knobs_are_refused(sandbox_api):
    sandbox, _ = sandbox_api
    for payload in ({"error_rate": 2}, {"fail_next": [{"status": 418}]}, {"colour": "red"}):
        with pytest.raises(RuntimeError, match="HTTP 400"):
            sandbox.control("faults", payload)
