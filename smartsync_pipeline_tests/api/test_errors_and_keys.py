"""Errors as problem+json for a table of bad inputs, tenant isolation, key revocation, rate limits,
a company needing reconnection, the server's own stale-if-error bound, graceful shutdown and the
access log: against a real server process and sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from smartsync_pipeline.qbo.credentials import CompanyStore, TokenSet
from smartsync_pipeline_tests.api.conftest import ApiServer, ServedHome

BAD_INPUTS = [
    ("/bills/due?days=-1", {}, "days"),
    ("/bills/due?days=abc", {}, "days"),
    ("/bills/due?days=99999", {}, "days"),
    ("/invoices/due?limit=0", {}, "limit"),
    ("/invoices/overdue?limit=5000", {}, "limit"),
    ("/bills/due?cursor=not-a-cursor", {}, "cursor"),
    ("/vendors?cursor=WyJ4Il0", {}, "cursor"),  # a valid encoding of the wrong shape
    ("/vendors?active_only=perhaps", {}, "active_only"),
    ("/bills/by-vendor", {}, "vendor"),
    ("/cash", {"Cache-Control": "max-age=abc"}, "Cache-Control"),
    ("/cash", {"Cache-Control": "max-age=-5"}, "Cache-Control"),
    ("/cash", {"Cache-Control": "max-age=99999999999999"}, "Cache-Control"),
    ("/digest", {"Cache-Control": "stale-if-error=soon"}, "Cache-Control"),
    ("/changes?entity=Nope", {}, "entity"),
    ("/changes?after=-1", {}, "after"),
    ("/changes/Bill/not%20an%20id", {}, "entity_id"),
]


@pytest.mark.parametrize(("suffix", "headers", "param"), BAD_INPUTS, ids=[f"{p}:{s}" for s, _, p in BAD_INPUTS])
def test_bad_input_is_a_400_problem_naming_the_parameter(served: ServedHome, suffix, headers, param) -> None:
    key = served.keys["all"]
    response = served.server.get(f"/businesses/{served.realm}{suffix}", key, headers)
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 400 and body["type"] == "/problems/bad-parameter" and body["title"]
    assert param in [p["name"] for p in body["invalid_params"]] and param in body["detail"]
    assert "Traceback" not in response.text and key not in response.text


def test_unknown_routes_methods_and_ids_are_problems_too(served: ServedHome) -> None:
    key = served.keys["all"]
    for path, status in (("/nowhere", 404), ("/businesses/bad!id/cash", 400), ("/businesses/999/cash", 404)):
        response = served.server.get(path, key)
        assert (path, response.status_code) == (path, status)
        assert response.headers["Content-Type"] == "application/problem+json"
    post = served.server.session.post(f"{served.server.url}/businesses/{served.realm}/cash", timeout=30)
    assert post.status_code == 405 and post.json()["status"] == 405


def test_no_key_or_a_bad_key_is_401(served: ServedHome) -> None:
    path = f"/businesses/{served.realm}/cash"
    for headers in (
        {},
        {"Authorization": "Bearer ssk_000000000000_" + "x" * 43},
        {"Authorization": "Basic Zm9vOmJhcg=="},
    ):
        response = served.server.get(path, headers=headers)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["type"] == "/problems/unauthorized"


def test_a_key_for_one_business_gets_the_unknown_business_404_for_another(served: ServedHome) -> None:
    only_a = served.key("only-a", [served.realm])
    assert served.server.get(f"/businesses/{served.realm}/cash", only_a).status_code == 200
    hidden = served.server.get(f"/businesses/{served.other_realm}/cash", only_a)
    missing = served.server.get("/businesses/1234567890/cash", only_a)
    assert hidden.status_code == missing.status_code == 404

    def shape(r, business):
        return json.loads(r.text.replace(business, "<id>"))

    assert shape(hidden, served.other_realm) == shape(missing, "1234567890")  # nothing tells them apart
    for suffix in ("/digest", "/changes", "/sync-status", "/changes/Bill/1", "/vendors"):
        assert served.server.get(f"/businesses/{served.other_realm}{suffix}", only_a).status_code == 404
    listed = served.server.get("/businesses", only_a).json()["items"]
    assert [b["business_id"] for b in listed] == [served.realm]


def test_a_key_without_the_read_scope_is_403(served: ServedHome) -> None:
    connect_only = served.key("connect-only", ["*"], scopes=("connect",))
    response = served.server.get(f"/businesses/{served.realm}/cash", connect_only)
    assert response.status_code == 403 and "read" in response.json()["detail"]


def test_revocation_by_the_cli_takes_effect_on_the_next_request(served: ServedHome) -> None:
    key = served.key("to-revoke", [served.realm])
    assert served.server.get(f"/businesses/{served.realm}/cash", key).status_code == 200
    key_id = key.split("_")[1]
    done = subprocess.run(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", "keys", "revoke", key_id],
        env={**os.environ, "SMARTSYNC_HOME": str(served.home)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert served.server.get(f"/businesses/{served.realm}/cash", key).status_code == 401
    listing = subprocess.run(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", "keys", "list", "--json"],
        env={**os.environ, "SMARTSYNC_HOME": str(served.home)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    records = {r["key_id"]: r for r in json.loads(listing.stdout)}
    assert records[key_id]["revoked_at"] and key.split("_", 2)[2] not in listing.stdout
    stored = (served.home / "api" / "keys.json").read_text()
    assert key.split("_", 2)[2] not in stored  # only the hash is on disk


def test_per_key_rate_limit_with_headers_and_429(served: ServedHome) -> None:
    slow = served.key("three-a-minute", [served.realm], rate=3)
    answers = [served.server.get("/businesses", slow) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    remaining = [r.headers["RateLimit"] for r in answers[:3]]
    assert [h.split(";")[1] for h in remaining] == ["r=2", "r=1", "r=0"]
    assert answers[0].headers["RateLimit-Policy"] == '"per-key";q=3;w=60'
    limited = answers[3]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60 and limited.json()["type"] == "/problems/rate-limited"
    # another key is not affected
    assert served.server.get("/businesses", served.keys["all"]).status_code == 200


def test_a_company_needing_reconnection_is_a_409_saying_what_to_do(served: ServedHome) -> None:
    company = served.companies[1]
    store = CompanyStore(company.home).tokens(company.realm_id)
    saved = store.load()
    store.save(TokenSet(access_token=None, refresh_token="revoked-by-the-user-0123456789"))
    try:
        response = served.server.get(
            f"/businesses/{company.realm_id}/bills/due", served.keys["all"], {"Cache-Control": "max-age=0"}
        )
        assert response.status_code == 409, response.text
        body = response.json()
        assert body["type"] == "/problems/reconnect-required" and "/connect/quickbooks" in body["detail"]
        assert "revoked-by-the-user" not in response.text
    finally:
        store.save(saved)


def test_the_servers_stale_if_error_bound_then_graceful_shutdown(served: ServedHome) -> None:
    """A second server on the same home with a 0 s bound: QBO down is a 503 there. Then a slow
    in-flight read survives SIGTERM: the server finishes it before exiting 0."""
    strict = ApiServer(served.home, "--stale-if-error", "0")
    try:
        key, path = served.keys["all"], f"/businesses/{served.realm}/customers"
        served.sandbox.control("faults", {"down": True})
        try:
            refused = strict.get(path, key, {"Cache-Control": "max-age=0"})
        finally:
            served.sandbox.control("faults", {"down": False})
        assert refused.status_code == 503 and refused.json()["type"] == "/problems/qbo-unavailable"
        assert int(refused.headers["Retry-After"]) > 0 and "stale-if-error bound" in refused.json()["detail"]

        served.sandbox.control("faults", {"latency_ms": 1500})
        try:
            result: dict = {}
            before = served.sandbox.control("stats", method="GET")["requests_total"]

            def slow_read() -> None:
                result["response"] = strict.get(path, key, {"Cache-Control": "max-age=0"}, timeout=60)

            reader = threading.Thread(target=slow_read)
            reader.start()
            # The read is in flight once its refresh reaches the sandbox (which then holds it 1.5 s).
            for _ in range(600):
                if served.sandbox.control("stats", method="GET")["requests_total"] > before:
                    break
                threading.Event().wait(0.01)
            else:
                raise AssertionError("the read never reached the sandbox")
            assert strict.stop(signal.SIGTERM) == 0
            reader.join(60)
        finally:
            served.sandbox.control("faults", {"latency_ms": 0})
        response = result["response"]
        assert response.status_code == 200 and response.json()["provenance"][0]["source"] == "api"
    finally:
        strict.kill()
    assert strict.proc.returncode == 0


def test_access_log_has_key_ids_and_no_secrets(served: ServedHome) -> None:
    key = served.keys["all"]
    path = f"/businesses/{served.realm}/ar-aging"
    assert served.server.get(path + "?days=7", key).status_code == 200

    def mine() -> list[dict]:
        lines = [line.split(" access ", 1)[1] for line in list(served.server.stderr_lines) if " access " in line]
        return [r for r in map(json.loads, lines) if r["path"] == path and r["status"] == 200]

    deadline = time.monotonic() + 30
    while not mine() and time.monotonic() < deadline:
        time.sleep(0.05)  # the line is written after the response is sent, then read from the pipe
    [record] = mine()
    assert record["key_id"] == key.split("_")[1] and record["business"] == served.realm and record["ms"] >= 0
    text = "".join(served.server.stderr_lines)
    for secret in [key, key.split("_", 2)[2], served.sandbox.info["client_secret"], "days=7"]:
        assert secret not in text
    assert "Traceback" not in text
