"""Connecting a company through OAuth 2.0 (authorization code grant), as a real user does it.

The user is sent to the authorization URL with a signed ``state``; the provider sends them back with
``code`` and ``realmId``; the code is exchanged once for tokens, which are stored encrypted through
``qbo.connect.connect_credentials`` (the same concurrency-safe path and files as ``smartsync
connect``: the company's token lock held throughout, nothing left behind by a failure before the
tokens are stored); one ``COUNT`` query proves them; the company joins the fleet index and
``analyst.sql``; the realm becomes a Dagster partition; the first sync starts. Shared by ``GET /connect/quickbooks`` and
``smartsync connect --oauth``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from smartsync_pipeline.api.settings import OAuthApp
from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.connect import ConnectedUnverified, connect_credentials
from smartsync_pipeline.qbo.credentials import CompanyConnection, TokenSet
from smartsync_pipeline.qbo.secrets import redact
from smartsync_pipeline.sync.company_shards import mark_connected

log = logging.getLogger("smartsync.api.onboarding")
_REALM = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class OnboardingError(Exception):
    """A step of the flow failed; ``slug`` names the kind, the message says what to do."""

    def __init__(self, slug: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.slug = slug
        self.status = status


def authorization_url(app: OAuthApp, redirect_uri: str, state: str) -> str:
    query = {"client_id": app.client_id, "response_type": "code", "scope": app.scope,
             "redirect_uri": redirect_uri, "state": state}  # fmt: skip
    separator = "&" if "?" in app.authorize_url else "?"
    return app.authorize_url + separator + urlencode(query)


def callback_error(error: str | None, description: str | None = None) -> OnboardingError | None:
    """The provider's ``error`` parameter, as what the user should read."""
    if not error:
        return None
    if error == "access_denied":
        return OnboardingError(
            "consent-denied", "access to QuickBooks was declined on the consent screen; nothing was connected. "
            "Start again at /connect/quickbooks and choose Connect to allow it."
        )  # fmt: skip
    text = redact(f"{error}: {description}" if description else error)[:300]
    return OnboardingError("authorization-failed", f"QuickBooks refused the authorization ({text}); start again")


def exchange_code(app: OAuthApp, code: str, redirect_uri: str, timeout: float = 30.0) -> dict[str, Any]:
    """One POST to the token endpoint; ``invalid_grant`` means the code was used or has expired."""
    try:
        response = requests.post(
            app.token_url,
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            auth=(app.client_id, app.client_secret), headers={"Accept": "application/json"}, timeout=timeout,
        )  # fmt: skip
    except requests.RequestException as exc:
        raise OnboardingError(
            "token-endpoint-unreachable", f"the token endpoint did not answer ({type(exc).__name__}); start again", 502
        ) from None
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    if response.status_code == 200 and isinstance(payload, dict):
        return payload
    error = payload.get("error") if isinstance(payload, dict) else None
    if error == "invalid_grant":
        raise OnboardingError(
            "invalid-code", "this authorization code was already used or has expired (codes work once, for a few "
            "minutes); start again at /connect/quickbooks"
        )  # fmt: skip
    if error == "invalid_client":
        raise OnboardingError(
            "invalid-client", "the token endpoint rejected this server's OAuth client id or secret", 502
        )
    raise OnboardingError("token-exchange-failed", f"the token endpoint answered HTTP {response.status_code}", 502)


@dataclass(frozen=True)
class Connected:
    business_id: str
    accounts: int | None
    dagster_partition: bool


def store_connection(
    home: Home, app: OAuthApp, realm_id: str, token_payload: dict[str, Any], *, name: str = "", verify: bool = True
) -> Connected:
    """Store the company's connection and tokens (encrypted), prove them, add the Dagster partition."""
    if not isinstance(realm_id, str) or not _REALM.match(realm_id):
        raise OnboardingError("bad-realm", "the provider sent back no valid realmId (company id); start again")
    try:
        tokens = TokenSet.from_token_response(token_payload)
    except Exception:
        raise OnboardingError("token-exchange-failed", "the token endpoint answered without tokens", 502) from None
    conn = CompanyConnection(realm_id, app.api_base.rstrip("/"), app.token_url, app.client_id, app.client_secret, name)
    try:
        connected = connect_credentials(home, conn, tokens=tokens, webhook_verifier=app.webhook_verifier, verify=verify)
    except ConnectedUnverified as exc:
        # Kept (the code is spent): it joins the fleet like any company, so it does sync once QBO answers.
        mark_connected(home, realm_id)
        _add_partition(realm_id)
        cause = redact(" ".join(str(exc.__cause__ or exc).split()))[:300]
        raise OnboardingError(
            "verification-failed",
            f"company {realm_id} is connected (its tokens are stored) but QuickBooks did not answer a first "
            f"query: {cause}; it syncs once QuickBooks answers",
            502,
        ) from None
    mark_connected(home, realm_id)  # due for a first sync in the fleet index; in analyst.sql once published
    return Connected(realm_id, connected.accounts, _add_partition(realm_id))


def _add_partition(realm_id: str) -> bool:
    """The company as a Dagster partition; False (and a warning) when the instance refuses: the
    company is connected either way, and the answer's ``dagster_partition`` says which it is."""
    try:
        from smartsync_pipeline.defs.partitions import PartitionRegistrationError, register_realm
    except ImportError:
        return False
    try:
        return register_realm(realm_id)
    except PartitionRegistrationError as exc:
        log.warning("company %s is connected, but Dagster did not take it as a partition: %s", realm_id, exc)
        return False


def start_first_sync(home: Home, realm_id: str, on_error: Callable[[str], None] | None = None) -> threading.Thread:
    """The company's first (full) sync, in the background: the callback answers at once."""

    def run() -> None:
        from smartsync_pipeline.sync.engine import SyncEngine

        try:
            SyncEngine(home).sync(realm_id, mode="auto", trigger="backfill")
        except Exception as exc:
            detail = redact(" ".join(str(exc).split()))[:500]
            log.warning("first sync of company %s failed: %s", realm_id, detail)
            if on_error is not None:
                on_error(detail)

    thread = threading.Thread(target=run, name=f"first-sync-{realm_id}", daemon=True)
    thread.start()
    return thread
