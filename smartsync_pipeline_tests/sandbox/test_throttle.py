"""QBO-like throttling: sliding window and concurrency per realm, 429 with Retry-After, XML knob."""

from __future__ import annotations

import threading

import requests

from smartsync_pipeline_tests.sandbox.api_session import SandboxApi

THROTTLE_MESSAGE = "message=ThrottleExceeded; errorCode=003001; statusCode=429"


def test_window_limit_gives_429_with_retry_after(sandbox_factory):
    sandbox = sandbox_factory(seed=41, per_window=5, window_seconds=30)
    api = SandboxApi(sandbox)
    statuses = [api.query_response("SELECT COUNT(*) FROM Bill").status_code for _ in range(5)]
    assert statuses == [200] * 5
    throttled = api.query_response("SELECT COUNT(*) FROM Bill")
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 30
    body = throttled.json()
    assert body["Fault"]["type"] == "SERVICE"
    assert body["Fault"]["Error"][0] == {"Message": THROTTLE_MESSAGE, "Detail": body["Fault"]["Error"][0]["Detail"],
                                         "code": "3001"}  # fmt: skip
    # The token endpoint and the control API are not throttled.
    assert api.refresh(sandbox.info["refresh_token"]).status_code == 200
    stats = sandbox.control("stats", method="GET")
    assert stats["throttled_429"] == 1


def test_limits_are_per_realm_and_changeable_at_run_time(sandbox_factory):
    sandbox = sandbox_factory(seed=42, realms=2, per_window=3, window_seconds=60)
    first = SandboxApi(sandbox, realm_id=sandbox.info["realms"][0]["realm_id"])
    second = SandboxApi(sandbox, realm_id=sandbox.info["realms"][1]["realm_id"])
    assert [first.query_response("SELECT COUNT(*) FROM Bill").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert second.query_response("SELECT COUNT(*) FROM Bill").status_code == 200
    limits = sandbox.control("limits", {"per_window": 100})
    assert limits == {"per_window": 100, "window_seconds": 60.0, "max_concurrent": 10}
    assert first.query_response("SELECT COUNT(*) FROM Bill").status_code == 200


def test_concurrency_limit(sandbox_factory):
    sandbox = sandbox_factory(seed=43, max_concurrent=2)
    sandbox.control("faults", {"latency_ms": 800})
    api = SandboxApi(sandbox)
    start = threading.Barrier(6)
    results: list[requests.Response] = []
    lock = threading.Lock()

    def call() -> None:
        session = requests.Session()
        start.wait()
        response = session.get(f"{api.base}/query", params={"query": "SELECT COUNT(*) FROM Bill", "minorversion": 75},
                               headers=api.headers(), timeout=30)  # fmt: skip
        with lock:
            results.append(response)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = sorted(r.status_code for r in results)
    assert len(statuses) == 6
    assert statuses.count(429) >= 1 and statuses.count(200) >= 2
    assert all(r.headers.get("Retry-After") == "1" for r in results if r.status_code == 429)
    stats = sandbox.control("stats", method="GET")
    assert stats["max_concurrent_seen"] == 2
    assert stats["throttled_429"] == statuses.count(429)


def test_xml_throttle_body_and_no_retry_after_knobs(sandbox_factory):
    sandbox = sandbox_factory(seed=44, per_window=1)
    api = SandboxApi(sandbox)
    sandbox.control("faults", {"xml_throttle": True, "retry_after": False})
    assert api.query_response("SELECT COUNT(*) FROM Bill").status_code == 200
    throttled = api.query_response("SELECT COUNT(*) FROM Bill")
    assert throttled.status_code == 429
    assert throttled.headers["Content-Type"] == "text/xml"
    assert "Retry-After" not in throttled.headers
    assert throttled.text.startswith("<?xml")
    assert '<Fault type="SERVICE"><Error code="3001">' in throttled.text
