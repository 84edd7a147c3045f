"""``smartsync connect`` / ``smartsync companies``: register QBO companies (realms)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.credentials import CompanyConnection, CompanyStore, TokenSet
from smartsync_pipeline.qbo.secrets import encrypt

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
    """Store the connection, optionally prove it works (one token refresh + one COUNT query), and add
    the realm as a Dagster partition. Returns a summary without secrets."""
    from smartsync_pipeline.qbo.client import QBOClient
    from smartsync_pipeline.qbo.query import Query

    for label, value in (("--api-base", api_base), ("--token-url", token_url)):
        if not value.startswith(("http://", "https://")):
            raise click.BadParameter(f"{label} must be an http(s) URL, got {value!r}")
    store = CompanyStore(home)
    conn = CompanyConnection(realm_id, api_base.rstrip("/"), token_url, client_id, client_secret, name)
    store.save(conn, TokenSet(access_token=None, refresh_token=refresh_token))
    if webhook_verifier:
        path = home.root / "webhook_verifier"
        path.write_text(encrypt(webhook_verifier, home=home))
        path.chmod(0o600)
    summary: dict[str, Any] = {"realm_id": realm_id, "api_base": conn.api_base, "verified": False}
    if verify:
        try:
            client = QBOClient(conn, store.tokens(realm_id), home=home)
            summary["accounts"] = client.query(Query.count("Account").include_inactive()).total_count
            summary["verified"] = True
        except Exception:
            store.remove(realm_id)
            raise
    summary["dagster_partition"] = _add_partition(realm_id)
    return summary


def _add_partition(realm_id: str) -> bool:
    """Add the realm to the Dagster ``realms`` partitions when a Dagster instance is configured."""
    try:
        from smartsync_pipeline.defs.partitions import register_realm
    except ImportError:
        return False
    return register_realm(realm_id)


@click.command()
@click.option("--api-base", help="QBO API base, e.g. https://quickbooks.api.intuit.com/v3")
@click.option("--token-url", help="OAuth token endpoint")
@click.option("--realm", "realm_id", help="The company's realm id")
@click.option("--client-id")
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
) -> None:
    """Connect a QBO company: store its credentials (encrypted) and check that they work."""
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
    click.echo(f"connected company {summary['realm_id']} at {summary['api_base']}{verified}")


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
