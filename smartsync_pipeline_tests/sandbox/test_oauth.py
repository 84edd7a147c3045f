"""The token endpoint and bearer checks: strict rotation, expiry on the sandbox clock, revocation,
realm binding, QBO's 401 body, and secrets that never leak."""

from __future__ import annotations

import time

import pytest
import requests

from smartsync_pipeline_tests.sandbox.api_session import SandboxApi

AUTH_MESSAGE = "message=AuthenticationFailed; errorCode=003200; statusCode=401"


def assert_auth_fault(response, detail_part: str = "") -> None:
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"fault", "time"}
    assert body["fault"]["type"] == "AUTHENTICATION"
    [error] = body["fault"]["error"]
    assert set(error) == {"message", "detail", "code"}
    assert error["message"] == AUTH_MESSAGE and error["code"] == "3200"
    assert detail_part in error["detail"]


def test_refresh_rotates_strictly(sandbox_factory):
    sandbox = sandbox_factory(seed=31)
    api = SandboxApi(sandbox)
    first = sandbox.info["refresh_token"]
    response = api.refresh(first)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    pair = response.json()
    assert set(pair) == {"access_token", "refresh_token", "expires_in", "x_refresh_token_expires_in", "token_type"}
    assert (pair["expires_in"], pair["x_refresh_token_expires_in"], pair["token_type"]) == (3600, 8726400, "bearer")
    assert pair["refresh_token"] != first and pair["access_token"] != sandbox.info["access_token"]

    old = api.refresh(first)
    assert old.status_code == 400 and old.json() == {"error": "invalid_grant"}
    second = api.refresh(pair["refresh_token"])
    assert second.status_code == 200
    assert api.refresh(pair["refresh_token"]).json() == {"error": "invalid_grant"}

    fresh = SandboxApi(sandbox, access_token=second.json()["access_token"])
    assert fresh.query_response("SELECT COUNT(*) FROM Bill").status_code == 200
    # The access token from before the refresh keeps working until it expires.
    assert api.query_response("SELECT COUNT(*) FROM Bill").status_code == 200
    stats = sandbox.control("stats", method="GET")
    assert stats["token_refreshes"] == {"successful": 2, "failed": 2}


def test_rotation_grace_knob(sandbox_factory):
    sandbox = sandbox_factory(seed=31, rotation_grace_seconds=30)
    api = SandboxApi(sandbox)
    first = sandbox.info["refresh_token"]
    assert api.refresh(first).status_code == 200
    assert api.refresh(first).status_code == 200  # inside the grace period
    sandbox.control("clock", {"advance_seconds": 31})
    assert api.refresh(first).json() == {"error": "invalid_grant"}


def test_client_credentials_and_grant_types(sandbox):
    api = SandboxApi(sandbox)
    bad_client = api.refresh(sandbox.info["refresh_token"], client=(sandbox.info["client_id"], "wrong"))
    assert bad_client.status_code == 401 and bad_client.json() == {"error": "invalid_client"}
    unknown = api.refresh("not-a-token")
    assert unknown.status_code == 400 and unknown.json() == {"error": "invalid_grant"}
    odd = requests.post(
        sandbox.info["token_url"],
        auth=(sandbox.info["client_id"], sandbox.info["client_secret"]),
        data={"grant_type": "password"},
        timeout=10,
    )
    assert odd.status_code == 400 and odd.json() == {"error": "unsupported_grant_type"}


def test_authorization_code_works_once(sandbox_factory):
    sandbox = sandbox_factory(seed=32)
    info = sandbox.info

    def exchange():
        return requests.post(
            info["token_url"],
            auth=(info["client_id"], info["client_secret"]),
            data={"grant_type": "authorization_code", "code": info["auth_code"], "redirect_uri": info["redirect_uri"]},
            timeout=10,
        )

    first = exchange()
    assert first.status_code == 200
    assert first.json()["realmId"] == info["realm_id"]
    api = SandboxApi(sandbox, access_token=first.json()["access_token"])
    assert api.query_response("SELECT COUNT(*) FROM Vendor").status_code == 200
    assert exchange().json() == {"error": "invalid_grant"}


def test_access_token_expires_on_the_sandbox_clock(sandbox_factory):
    sandbox = sandbox_factory(seed=33)
    api = SandboxApi(sandbox)
    assert api.query_response("SELECT COUNT(*) FROM Bill").status_code == 200
    sandbox.control("clock", {"advance_seconds": 3599})
    assert api.query_response("SELECT COUNT(*) FROM Bill").status_code == 200
    sandbox.control("clock", {"advance_seconds": 2})
    assert_auth_fault(api.query_response("SELECT COUNT(*) FROM Bill"), "expired")
    pair = api.refresh(sandbox.info["refresh_token"]).json()
    assert SandboxApi(sandbox, access_token=pair["access_token"]).count("SELECT COUNT(*) FROM Bill") > 0


def test_401_body_for_missing_and_unknown_tokens(sandbox):
    api = SandboxApi(sandbox)
    url = f"{api.base}/query"
    params = {"query": "SELECT * FROM Bill", "minorversion": 75}
    assert_auth_fault(requests.get(url, params=params, timeout=10), "missing")
    assert_auth_fault(requests.get(url, params=params, headers={"Authorization": "Bearer abc"}, timeout=10))
    assert_auth_fault(requests.get(url, params=params, headers={"Authorization": "Basic abc"}, timeout=10))


def test_revoke_kills_access_tokens_but_not_refresh(sandbox_factory):
    sandbox = sandbox_factory(seed=34)
    api = SandboxApi(sandbox)
    result = sandbox.control("revoke", {"realm_id": sandbox.realm_id})
    assert result["revoked_access_tokens"] >= 1
    assert_auth_fault(api.query_response("SELECT COUNT(*) FROM Bill"), "revoked")
    pair = api.refresh(sandbox.info["refresh_token"]).json()
    assert SandboxApi(sandbox, access_token=pair["access_token"]).count("SELECT COUNT(*) FROM Bill") > 0


def test_tokens_are_bound_to_their_realm(sandbox_factory):
    sandbox = sandbox_factory(seed=35, realms=2)
    realms = sandbox.info["realms"]
    assert len({r["realm_id"] for r in realms}) == 2
    first, second = realms
    cross = SandboxApi(sandbox, realm_id=second["realm_id"], access_token=first["access_token"])
    assert_auth_fault(cross.query_response("SELECT COUNT(*) FROM Bill"), "realm")
    own = SandboxApi(sandbox, realm_id=second["realm_id"])
    assert own.count("SELECT COUNT(*) FROM Bill") > 0
    # Each realm has its own company.
    one = SandboxApi(sandbox, realm_id=first["realm_id"]).read("Vendor", "1")
    two = own.read("Vendor", "1")
    assert one["DisplayName"] != two["DisplayName"] or one["Balance"] != two["Balance"]


def test_secrets_never_appear_in_responses_or_logs(sandbox_factory):
    sandbox = sandbox_factory(seed=36, access_log=True)
    info = sandbox.info
    api = SandboxApi(sandbox)
    bodies = [
        api.query_response("SELECT COUNT(*) FROM Bill").text,
        requests.get(
            f"{api.base}/bill/1", headers={"Authorization": "Bearer " + info["refresh_token"]}, timeout=10
        ).text,
        api.refresh(info["refresh_token"]).text,  # the one place tokens are sent: the token response
        api.refresh(info["refresh_token"]).text,
        api.refresh("x", client=(info["client_id"], "wrong")).text,
        requests.get(sandbox.control_url + "/stats", timeout=10).text,
        requests.get(sandbox.control_url + "/webhooks", timeout=10).text,
        requests.get(sandbox.control_url + "/faults", timeout=10).text,
    ]
    secrets = [info["access_token"], info["refresh_token"], info["client_secret"], info["webhook_verifier"]]
    for index, body in enumerate(bodies):
        if index == 2:
            continue
        for secret in secrets:
            assert secret not in body, index
    sandbox.control("stats", method="GET")
    deadline = time.monotonic() + 10
    while "GET /_sandbox/stats" not in sandbox.stderr and time.monotonic() < deadline:
        time.sleep(0.02)  # waiting for the log pipe to be drained, not for a race
    log = sandbox.stderr
    assert "GET /v3/company/" in log and "GET /_sandbox/stats" in log  # the access log is on
    for secret in [*secrets, *(r["access_token"] for r in info["realms"])]:
        assert secret not in log


def test_intuit_rotation_model(sandbox_factory):
    """``rotation_interval_seconds=86400``: a refresh token keeps its value for its first 24 h (the
    answer carries the same refresh token and it keeps working); the first refresh after that returns
    a new one and the old one is refused at once (Intuit's help article "Validity of Refresh Token")."""
    sandbox = sandbox_factory(seed=34, rotation_interval_seconds=86_400)
    api = SandboxApi(sandbox)
    first = sandbox.info["refresh_token"]
    for _ in range(3):
        answer = api.refresh(first)
        assert answer.status_code == 200 and answer.json()["refresh_token"] == first
    sandbox.control("clock", {"advance_seconds": 86_401})
    rotated = api.refresh(first).json()["refresh_token"]
    assert rotated != first
    assert api.refresh(first).json() == {"error": "invalid_grant"}
    assert api.refresh(rotated).json()["refresh_token"] == rotated  # the new one is young again


def test_token_pause_knob_answers_late_after_issuing(sandbox_factory):
    sandbox = sandbox_factory(seed=35)
    sandbox.control("faults", {"token_pause_ms": 300})
    started = time.monotonic()
    assert SandboxApi(sandbox).refresh(sandbox.info["refresh_token"]).status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(RuntimeError, match="must be >= 0"):
        sandbox.control("faults", {"token_pause_ms": -1})
