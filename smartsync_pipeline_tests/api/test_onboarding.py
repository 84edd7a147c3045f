"""OAuth onboarding end to end against the sandbox's real authorize and token endpoints: through the
server (``/connect/quickbooks``) and from a terminal (``smartsync connect --oauth``), with its
failures: a bad or replayed state, declined consent, a code used twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from smartsync_pipeline.api.keys import KeyStore
from smartsync_pipeline.api.oauth_state import StateError, StateSigner
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror.fleet_state import FleetState
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.api.conftest import REPO, ApiServer


@dataclass
class Onboarding:
    home: Path
    sandbox: SandboxProcess
    server: ApiServer
    app_file: Path
    key: str

    def start(self, key: str | None = None) -> str:
        """GET /connect/quickbooks: the authorization URL it redirects to."""
        r = self.server.get("/connect/quickbooks", key or self.key, allow_redirects=False)
        assert r.status_code == 302, r.text
        return r.headers["Location"]

    def authorize(self, url: str, **choices: str) -> str:
        """The sandbox's consent (given at once, or as ``choices`` say): the callback URL it sends back."""
        extra = "".join(f"&sandbox_{k}={v}" for k, v in choices.items())
        r = requests.get(url + extra, allow_redirects=False, timeout=30)
        assert r.status_code == 302, r.text
        return r.headers["Location"]

    def callback(self, url: str) -> requests.Response:
        return requests.get(url, timeout=120)


@pytest.fixture(scope="module")
def onboarding(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Onboarding]:
    root = tmp_path_factory.mktemp("onboarding")
    sandbox = SandboxProcess.start(scale="small", seed=7, realms=2)
    server = None
    try:
        app_file = root / "sandbox.json"
        app_file.write_text(json.dumps(sandbox.info))
        home = root / "home"
        server = ApiServer(home, "--oauth-app", str(app_file))
        _, key = KeyStore(Home(home)).create("onboarder", [], ("connect", "read"))
        yield Onboarding(home, sandbox, server, app_file, key)
    finally:
        if server is not None:
            server.kill()
        sandbox.stop()


def test_connecting_through_the_server_end_to_end(onboarding: Onboarding) -> None:
    realm = onboarding.sandbox.info["realms"][0]["realm_id"]
    authorize_url = onboarding.start()
    assert authorize_url.startswith(onboarding.sandbox.info["authorize_url"] + "?")
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["response_type"] == ["code"] and query["scope"] == ["com.intuit.quickbooks.accounting"]
    assert query["redirect_uri"] == [onboarding.server.url + "/connect/quickbooks/callback"]
    back = onboarding.authorize(authorize_url, realm=realm)
    assert back.startswith(onboarding.server.url + "/connect/quickbooks/callback?")
    done = onboarding.callback(back)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["business_id"] == realm and body["connected"] and body["accounts"] > 0
    assert body["first_sync"] == "started"
    # stored encrypted, with the same files `smartsync connect` writes
    store = CompanyStore(Home(onboarding.home))
    assert store.realms() == [realm] and store.tokens(realm).load().refresh_token
    on_disk = "".join(p.read_text() for p in (onboarding.home / "companies").iterdir())
    assert (
        onboarding.sandbox.info["client_secret"] not in on_disk
        and store.tokens(realm).load().refresh_token not in on_disk
    )
    # the key that connected it may read it now; the first sync completes in the background
    listed = onboarding.server.get("/businesses", onboarding.key).json()["items"]
    assert [b["business_id"] for b in listed] == [realm]
    deadline = time.monotonic() + 180
    while True:
        status = onboarding.server.get(f"/businesses/{realm}/sync-status", onboarding.key).json()
        if all(e["state"] == "fresh" for e in status["entities"]) or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # polling the background sync, bounded by the deadline
    assert {e["state"] for e in status["entities"]} == {"fresh"}, status
    assert {e["last_trigger"] for e in status["entities"]} == {"backfill"}
    bills = onboarding.server.get(f"/businesses/{realm}/bills/due", onboarding.key).json()
    assert bills["count"] > 0 and bills["provenance"][0]["source"] == "mirror"
    # the same callback again: the state was used
    again = onboarding.callback(back)
    assert again.status_code == 400 and again.json()["type"] == "/problems/invalid-state"
    assert "already completed" in again.json()["detail"]
    # the same code with a fresh state: the code was used
    code = parse_qs(urlsplit(back).query)["code"][0]
    fresh_back = onboarding.authorize(onboarding.start(), realm=realm)
    reused = fresh_back.replace(parse_qs(urlsplit(fresh_back).query)["code"][0], code)
    refused = onboarding.callback(reused)
    assert refused.status_code == 400 and refused.json()["type"] == "/problems/invalid-code"
    assert "already used" in refused.json()["detail"] and code not in refused.text


def test_declined_consent_connects_nothing(onboarding: Onboarding) -> None:
    other = onboarding.sandbox.info["realms"][1]["realm_id"]
    back = onboarding.authorize(onboarding.start(), realm=other, consent="deny")
    assert "error=access_denied" in back
    refused = onboarding.callback(back)
    assert refused.status_code == 400 and refused.json()["type"] == "/problems/consent-denied"
    assert "declined" in refused.json()["detail"]
    assert other not in CompanyStore(Home(onboarding.home)).realms()


@pytest.mark.parametrize("how", ["tampered", "missing", "foreign"])
def test_a_bad_state_is_refused_before_the_code_is_used(onboarding: Onboarding, how: str) -> None:
    back = onboarding.authorize(onboarding.start(), realm=onboarding.sandbox.info["realms"][1]["realm_id"])
    state = parse_qs(urlsplit(back).query)["state"][0]
    if how == "tampered":
        body, mac = state.split(".")
        bad = back.replace(state, body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac)
    elif how == "missing":
        bad = back.replace(f"state={state}", "state=")
    else:  # signed by another server's key
        bad = back.replace(state, StateSigner(Home(onboarding.home / "elsewhere")).issue("http://x/cb", None))
    refused = onboarding.callback(bad)
    assert refused.status_code == 400 and refused.json()["type"] == "/problems/invalid-state"
    # the code was not spent: the genuine callback still works
    assert onboarding.callback(back).status_code == 200


def test_starting_needs_the_connect_scope(onboarding: Onboarding) -> None:
    _, reader = KeyStore(Home(onboarding.home)).create("reader", ["*"], ("read",))
    r = onboarding.server.get("/connect/quickbooks", reader, allow_redirects=False)
    assert r.status_code == 403 and "connect" in r.json()["detail"]
    assert onboarding.server.get("/connect/quickbooks", allow_redirects=False).status_code == 401


def test_an_expired_state_is_refused(tmp_path: Path) -> None:
    now = [1_000_000.0]
    signer = StateSigner(Home(tmp_path), clock=lambda: now[0])
    state = signer.issue("http://127.0.0.1/cb", "k1")
    assert signer.verify(state).key_id == "k1"
    now[0] += 601
    with pytest.raises(StateError, match="longer than 10 minutes"):
        signer.verify(state)


def _connect_oauth(home: Path, app_file: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    return subprocess.Popen(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", "connect", "--oauth", "--no-browser",
         "--oauth-app", str(app_file), *extra],
        cwd=REPO, env={**env, "SMARTSYNC_HOME": str(home)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.parametrize("consent", ["given", "denied"])
def test_connect_oauth_from_a_terminal(onboarding: Onboarding, tmp_path: Path, consent: str) -> None:
    home = tmp_path / "cli_home"
    proc = _connect_oauth(home, onboarding.app_file)
    try:
        line = proc.stdout.readline()
        url = line.strip().split(": ", 1)[1]
        realm = onboarding.sandbox.info["realms"][1]["realm_id"]
        choices = {"realm": realm} if consent == "given" else {"realm": realm, "consent": "deny"}
        back = onboarding.authorize(url, **choices)
        assert back.startswith("http://127.0.0.1:")
        page = requests.get(back, timeout=120)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    if consent == "given":
        assert page.status_code == 200 and "connected" in page.text
        assert proc.returncode == 0, err
        assert f"connected company {realm} through OAuth" in out
        assert CompanyStore(Home(home)).realms() == [realm]
        assert Home(home).realm(realm).current_link.exists()  # the first sync ran and published
    else:
        assert page.status_code == 400 and "declined" in page.text
        assert proc.returncode == 1 and "declined" in err
        assert CompanyStore(Home(home)).realms() == []


def test_onboarding_stores_through_the_connect_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The callback's store step is `smartsync connect`'s own path (qbo/connect.py): tokens stored
    encrypted with the connection, and the company joins the fleet state index, due for a first sync."""
    from datetime import UTC, datetime

    from smartsync_pipeline.api.onboarding import store_connection
    from smartsync_pipeline.api.settings import OAuthApp
    from smartsync_pipeline.entities import entity_names

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = Home(tmp_path / "home")
    app = OAuthApp("cid", "csecret", token_url="http://127.0.0.1:9/token", api_base="http://127.0.0.1:9/v3")
    payload = {"access_token": "a1", "refresh_token": "r1", "expires_in": 3600, "x_refresh_token_expires_in": 86400}
    connected = store_connection(home, app, "4620", payload, verify=False)
    assert (connected.business_id, connected.accounts, connected.dagster_partition) == ("4620", None, False)
    store = CompanyStore(home)
    assert store.realms() == ["4620"] and store.tokens("4620").load().refresh_token == "r1"
    assert store.tokens("4620").connected_with("r1")
    assert FleetState(home).stale(datetime.now(UTC)) == {"4620": entity_names()}


def test_a_refusing_dagster_instance_leaves_the_onboarded_company_connected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The instance at DAGSTER_HOME cannot be opened: the company is connected all the same (its tokens
    are spent on it) and the answer says it is not a partition, instead of a 500."""
    from smartsync_pipeline.api.onboarding import store_connection
    from smartsync_pipeline.api.settings import OAuthApp

    broken = tmp_path / "dagster_home"
    broken.mkdir()
    (broken / "dagster.yaml").write_text("storage: [this is not a storage\n")
    monkeypatch.setenv("DAGSTER_HOME", str(broken))
    home = Home(tmp_path / "home")
    app = OAuthApp("cid", "csecret", token_url="http://127.0.0.1:9/token", api_base="http://127.0.0.1:9/v3")
    payload = {"access_token": "a1", "refresh_token": "r1", "expires_in": 3600, "x_refresh_token_expires_in": 86400}
    connected = store_connection(home, app, "4621", payload, verify=False)
    assert (connected.business_id, connected.dagster_partition) == ("4621", False)
    assert CompanyStore(home).realms() == ["4621"]
