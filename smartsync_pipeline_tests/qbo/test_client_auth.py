"""Tokens: one refresh per 401, serialized across threads and real processes, never leaked."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.qbo.errors import AuthenticationError, QBOError, ReauthorizationRequired
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.qbo.conftest import count_terms_together, run_in_processes, save_company, secrets_of


def stats(sandbox: SandboxProcess) -> dict[str, Any]:
    return sandbox.control("stats", method="GET")


def refreshes(sandbox: SandboxProcess) -> dict[str, int]:
    return stats(sandbox)["token_refreshes"]


def test_401_gets_exactly_one_refresh_and_one_retry(
    sandbox_factory: Callable[..., SandboxProcess], client_for: Callable[..., QBOClient], home: Home
) -> None:
    sandbox = sandbox_factory()
    client = client_for(sandbox)
    assert client.count("Term") == 4
    sandbox.control("revoke", {"realm_id": client.realm_id})
    assert client.count("Term") == 4
    assert refreshes(sandbox) == {"successful": 1, "failed": 0}
    seen = stats(sandbox)
    assert seen["auth_failures_401"] == 1
    assert seen["requests"]["query"] == 3
    assert client.stats.refreshes == 1

    # The rotated tokens are on disk (0600, encrypted) before they were used.
    stored = CompanyStore(home).tokens(client.realm_id).load()
    assert stored.refresh_token != sandbox.info["refresh_token"]
    assert stored.access_token != sandbox.info["access_token"]
    for path in home.companies_dir.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600
        raw = path.read_bytes()
        for secret in [*secrets_of(sandbox.info), stored.access_token, stored.refresh_token]:
            assert secret.encode() not in raw
            assert secret[:12].encode() not in raw


def test_a_second_401_is_an_authentication_error(
    sandbox_factory: Callable[..., SandboxProcess], client_for: Callable[..., QBOClient]
) -> None:
    sandbox = sandbox_factory()
    client = client_for(sandbox)
    sandbox.control("faults", {"fail_next": [{"status": 401, "count": 2}]})
    with pytest.raises(AuthenticationError) as info:
        client.count("Term")
    assert info.value.code == "3200"
    assert info.value.http_status == 401
    assert refreshes(sandbox) == {"successful": 1, "failed": 0}
    assert stats(sandbox)["requests"]["query"] == 2


def _refresh_in_process(root: str, realm: str, barrier: Any, out: Any) -> None:
    """A separate process sharing SMARTSYNC_HOME: query once (hitting the revoked token)."""
    home = Home(Path(root))
    store = CompanyStore(home)
    try:
        client = QBOClient(store.load(realm), store.tokens(realm), home=home)
        barrier.wait(timeout=30)
        out.put(("ok", client.count("Term"), client.stats.refreshes))
    except Exception as exc:  # report, do not hang the parent
        out.put(("error", f"{type(exc).__name__}: {exc}", 0))


def test_two_processes_refreshing_at_once_do_it_once(
    sandbox_factory: Callable[..., SandboxProcess], home: Home
) -> None:
    sandbox = sandbox_factory()
    conn, _ = save_company(sandbox.info, home)
    sandbox.control("revoke", {"realm_id": conn.realm_id})
    results = run_in_processes(_refresh_in_process, str(home.root), conn.realm_id, timeout=60)
    assert [r[:2] for r in results] == [("ok", 4), ("ok", 4)], results
    assert sorted(r[2] for r in results) == [0, 1]  # one process refreshed, the other used its token
    assert refreshes(sandbox) == {"successful": 1, "failed": 0}
    # Both ended with working tokens: the stored pair is the newest, and it still works here.
    store = CompanyStore(home)
    again = QBOClient(store.load(conn.realm_id), store.tokens(conn.realm_id), home=home)
    assert again.count("Term") == 4
    sandbox.control("revoke", {"realm_id": conn.realm_id})
    assert again.count("Term") == 4  # the stored refresh token was not burnt
    assert refreshes(sandbox) == {"successful": 2, "failed": 0}


def test_eight_threads_refreshing_do_it_once(sandbox_factory: Callable[..., SandboxProcess], home: Home) -> None:
    sandbox = sandbox_factory()
    conn, _ = save_company(sandbox.info, home)
    store = CompanyStore(home)
    clients = [QBOClient(store.load(conn.realm_id), store.tokens(conn.realm_id), home=home) for _ in range(8)]
    for client in clients:
        assert client.oauth.access_token() == sandbox.info["access_token"]  # all cache the old token
    sandbox.control("revoke", {"realm_id": conn.realm_id})
    results = count_terms_together(clients)
    assert results == [4] * 8
    assert refreshes(sandbox) == {"successful": 1, "failed": 0}
    assert sum(c.stats.refreshes for c in clients) == 1
    assert stats(sandbox)["auth_failures_401"] == 8


def test_eight_threads_sharing_one_client_refresh_once(
    sandbox_factory: Callable[..., SandboxProcess], client_for: Callable[..., QBOClient]
) -> None:
    sandbox = sandbox_factory()
    client = client_for(sandbox)
    client.count("Term")
    sandbox.control("revoke", {"realm_id": client.realm_id})
    results = count_terms_together([client] * 8)
    assert results == [4] * 8
    assert refreshes(sandbox) == {"successful": 1, "failed": 0}
    assert client.stats.refreshes == 1


def test_invalid_grant_asks_for_reconnection_without_retrying(
    sandbox_factory: Callable[..., SandboxProcess], client_for: Callable[..., QBOClient]
) -> None:
    sandbox = sandbox_factory()
    client = client_for(sandbox)
    info = sandbox.info
    # Someone else rotates the refresh token behind the store's back: the stored one is now dead.
    answer = requests.post(
        info["token_url"],
        data={"grant_type": "refresh_token", "refresh_token": info["refresh_token"]},
        auth=(info["client_id"], info["client_secret"]),
        timeout=10,
    )
    assert answer.status_code == 200
    sandbox.control("revoke", {"realm_id": client.realm_id})
    with pytest.raises(ReauthorizationRequired) as err:
        client.count("Term")
    message = str(err.value)
    assert client.realm_id in message
    assert "smartsync connect" in message
    assert "invalid_grant" in message
    assert refreshes(sandbox) == {"successful": 1, "failed": 1}  # ours failed once, not retried
    assert stats(sandbox)["requests"]["token"] == 2
    assert stats(sandbox)["requests"]["query"] == 1
    with pytest.raises(ReauthorizationRequired):  # and it keeps saying so
        client.count("Term")


def test_no_secret_in_logs_errors_or_reprs(
    sandbox_factory: Callable[..., SandboxProcess],
    client_for: Callable[..., QBOClient],
    home: Home,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox = sandbox_factory()
    client = client_for(sandbox, backoff_base=0.01, max_attempts=3)
    errors: list[BaseException] = []
    client.count("Term")
    sandbox.control("revoke", {"realm_id": client.realm_id})  # 401 + refresh
    client.count("Term")
    sandbox.control("faults", {"fail_next": [{"status": 429, "count": 1}, {"status": 503, "count": 1}]})
    client.count("Term")  # throttled, then a server error, then through
    sandbox.control("faults", {"fail_next": [{"status": 503, "count": 3}]})
    for call in (
        lambda: client.count("Term"),  # 503 three times: retries exhausted
        lambda: client.read("Bill", "999999"),  # object not found
        lambda: client.update("Bill", {"Id": "1", "SyncToken": "99"}),  # stale
    ):
        try:
            call()
        except QBOError as exc:
            errors.append(exc)
    sandbox.control("faults", {"fail_next": [{"status": 401, "count": 2}]})
    try:
        client.count("Term")
    except QBOError as exc:
        errors.append(exc)
    # A dead refresh token: invalid_grant.
    store = CompanyStore(home).tokens(client.realm_id)
    current = store.load()
    requests.post(
        sandbox.info["token_url"],
        data={"grant_type": "refresh_token", "refresh_token": current.refresh_token},
        auth=(sandbox.info["client_id"], sandbox.info["client_secret"]),
        timeout=10,
    )
    sandbox.control("revoke", {"realm_id": client.realm_id})
    try:
        client.count("Term")
    except QBOError as exc:
        errors.append(exc)
    assert [type(e).__name__ for e in errors] == [
        "RetriesExhausted",
        "ValidationFault",
        "StaleObjectError",
        "AuthenticationError",
        "ReauthorizationRequired",
    ]
    secrets = [*secrets_of(sandbox.info), current.access_token, current.refresh_token]
    texts = [caplog.text, *(str(e) for e in errors), *(repr(e) for e in errors)]
    texts += [repr(client), repr(client.oauth), repr(store), repr(current), repr(client.connection)]
    texts += [str(vars(e)) for e in errors]
    assert any("GET /company/" in line and "-> 200" in line for line in caplog.messages)  # DEBUG per request
    for text in texts:
        for secret in secrets:
            assert secret not in text
