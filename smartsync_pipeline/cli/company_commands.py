"""``smartsync connect`` / ``smartsync companies``: register QBO companies (realms)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from filelock import FileLock

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.connect import connect_credentials
from smartsync_pipeline.qbo.credentials import CompanyConnection, CompanyStore
from smartsync_pipeline.qbo.errors import QBOError
from smartsync_pipeline.qbo.secrets import VERIFIER_FILE
from smartsync_pipeline.sync.company_shards import mark_connected

__all__ = ["VERIFIER_FILE", "companies", "connect", "connect_company"]

SANDBOX_KEYS = ("api_base", "token_url", "realm_id", "client_id", "client_secret", "refresh_token")


def read_sandbox_line(source: str) -> dict[str, Any]:
    """The JSON line ``smartsync sandbox serve`` prints first (from a file, or ``-`` for stdin)."""
    text = sys.stdin.readline() if source == "-" else open(source).readline()  # noqa: SIM115
    try:
        doc = json.loads(text)
    except ValueError:
        raise click.BadParameter("expected the JSON line printed by `smartsync sandbox serve`") from None
    missing = [k for k in SANDBOX_KEYS if not doc.get(k)]
    if missing:
        raise click.BadParameter(f"the sandbox JSON lacks {', '.join(missing)}")
    return doc


def connect_company(
    home: Home,
    *,
    realm_id: str,
    api_base: str,
    token_url: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    name: str = "",
    webhook_verifier: str | None = None,
    verify: bool = True,
) -> dict[str, Any]:
    """Store the connection, optionally prove it works (one token exchange + one COUNT query), and add
    the realm as a Dagster partition. Returns a summary without secrets.

    The credentials go through ``qbo.connect.connect_credentials`` (the same path as the Runway
    Service's onboarding): connects of one company are serialized by its token lock, the refresh
    token is exchanged before anything is stored, and a connect that fails leaves SMARTSYNC_HOME as it
    was, unless QBO already rotated the refresh token (then the connection is kept and the error says
    so)."""
    for label, value in (("--api-base", api_base), ("--token-url", token_url)):
        if not value.startswith(("http://", "https://")):
            raise click.BadParameter(f"{label} must be an http(s) URL, got {value!r}")
    conn = CompanyConnection(realm_id, api_base.rstrip("/"), token_url, client_id, client_secret, name)
    connected = connect_credentials(
        home, conn, refresh_token=refresh_token, webhook_verifier=webhook_verifier, verify=verify
    )
    summary: dict[str, Any] = {
        "realm_id": connected.realm_id,
        "api_base": connected.api_base,
        "verified": connected.verified,
        "kept_tokens": connected.kept_tokens,
    }
    if connected.accounts is not None:
        summary["accounts"] = connected.accounts
    mark_connected(home, realm_id)  # due for a first sync in the fleet index; back in analyst.sql
    summary["dagster_partition"] = _add_partition(home, realm_id)
    if summary["dagster_partition"]:
        from smartsync_pipeline.defs.company_status import record_freshness_checks

        summary["checks_recorded"] = record_freshness_checks(home)  # the UI shows its status at once
    return summary


def _add_partition(home: Home, realm_id: str) -> bool:
    """Add the realm to the Dagster ``realms`` partitions when a Dagster instance is configured
    (``DAGSTER_HOME``); False when none is. A configured instance that refuses is an error: the
    company is connected, but Dagster will not sync it until the partition exists."""
    from smartsync_pipeline.defs.partitions import PartitionRegistrationError, register_realm

    try:
        # One connect at a time talks to the instance: concurrent first uses of a fresh SQLite instance
        # can corrupt its schema bookkeeping ("more than one head"), which no retry undoes.
        with FileLock(home.locks_dir / "dagster-partitions.lock"):
            return register_realm(realm_id)
    except PartitionRegistrationError as exc:
        raise QBOError(
            f"company {realm_id} is connected, but adding it to the Dagster instance failed ({exc}); run "
            "`smartsync connect` again once the instance is reachable (the stored tokens are kept)"
        ) from None


@click.command()
@click.option("--api-base", help="QBO API base, e.g. https://quickbooks.api.intuit.com/v3")
@click.option("--token-url", help="OAuth token endpoint")
@click.option("--realm", "realm_id", help="The company's realm id")
@click.option("--client-id", help="the app's OAuth client id")
@click.option("--client-secret", envvar="SMARTSYNC_CLIENT_SECRET", help="or env SMARTSYNC_CLIENT_SECRET")
@click.option("--refresh-token", envvar="SMARTSYNC_REFRESH_TOKEN", help="or env SMARTSYNC_REFRESH_TOKEN")
@click.option("--webhook-verifier", envvar="SMARTSYNC_WEBHOOK_VERIFIER", help="verifier token for webhooks")
@click.option("--name", default="", help="a display name for the company")
@click.option(
    "--from-sandbox",
    "sandbox_json",
    metavar="FILE|-",
    help="take every value from the JSON line `smartsync sandbox serve` printed",
)
@click.option("--no-verify", is_flag=True, help="store without calling QBO")
@click.option("--oauth", is_flag=True, help="sign in to QuickBooks in a browser instead (a local redirect listener)")
@click.option("--oauth-app", metavar="FILE", help="with --oauth: client id/secret and URLs (JSON; or env)")
@click.option("--redirect-port", default=0, type=click.IntRange(0, 65535), help="with --oauth: listener port")
@click.option("--no-browser", is_flag=True, help="with --oauth: print the sign-in URL only")
@friendly_errors
def connect(
    api_base: str | None,
    token_url: str | None,
    realm_id: str | None,
    client_id: str | None,
    client_secret: str | None,
    refresh_token: str | None,
    webhook_verifier: str | None,
    name: str,
    sandbox_json: str | None,
    no_verify: bool,
    oauth: bool = False,
    oauth_app: str | None = None,
    redirect_port: int = 0,
    no_browser: bool = False,
) -> None:
    """Connect a QBO company: store its credentials (encrypted) and check that they work."""
    if oauth:  # a separate path: the authorization-code flow of the Runway Service's onboarding
        from smartsync_pipeline.cli.oauth_connect import connect_with_oauth

        result = connect_with_oauth(
            oauth_app, redirect_port=redirect_port, open_browser=not no_browser, timeout=600, sync=True
        )
        click.echo(
            f"connected company {result['business_id']} through OAuth, {result['accounts']} accounts visible; "
            f"first sync done ({result['synced_entities']} entities)"
        )
        return
    values = {
        "api_base": api_base,
        "token_url": token_url,
        "realm_id": realm_id,
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
        "webhook_verifier": webhook_verifier,
    }
    if sandbox_json:
        doc = read_sandbox_line(sandbox_json)
        for key in (*SANDBOX_KEYS, "webhook_verifier"):
            values[key] = values[key] or doc.get(key)
        name = name or "sandbox company"
    missing = [f"--{k.replace('_', '-')}".replace("realm-id", "realm") for k in SANDBOX_KEYS if not values[k]]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or use --from-sandbox)")
    summary = connect_company(Home.from_env(), name=name, verify=not no_verify, **values)  # type: ignore[arg-type]
    verified = f", {summary['accounts']} accounts visible" if summary["verified"] else " (not verified)"
    kept = " (this refresh token was already exchanged here: kept the stored tokens)" if summary["kept_tokens"] else ""
    click.echo(f"connected company {summary['realm_id']} at {summary['api_base']}{verified}{kept}")


@click.command()
@friendly_errors
def companies() -> None:
    """List connected companies."""
    home = Home.from_env()
    store = CompanyStore(home)
    realms = store.realms()
    if not realms:
        click.echo("no company connected; run `smartsync connect`")
        return
    for realm in realms:
        conn = store.load(realm)
        click.echo(f"{realm}\t{conn.name or '-'}\t{conn.api_base}")
