"""``smartsync connect`` / ``smartsync companies``: register QBO companies (realms)."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from typing import Any

import click

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.credentials import CompanyConnection, CompanyStore, TokenSet, write_atomically
from smartsync_pipeline.qbo.errors import QBOError
from smartsync_pipeline.qbo.secrets import encrypt

VERIFIER_FILE = "webhook_verifier"  # under Home.root, encrypted; read by `smartsync webhooks serve`
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


class ConnectRollback:
    """Puts SMARTSYNC_HOME back as it was when a connect fails, so a refused connect writes nothing:
    folders and files it created are removed, files it replaced (a reconnect of a known company) get
    their old content back. The caller skips the rollback once QBO has rotated the refresh token,
    because then the stored new token is the only one that still works."""

    def __init__(self, home: Home, realm_id: str) -> None:
        store = CompanyStore(home)
        self.folders = [home.root, home.companies_dir, home.locks_dir, home.realms_dir]
        self.files = [home.key_path, home.root / VERIFIER_FILE]
        with contextlib.suppress(QBOError):  # an invalid realm id: nothing will be written for it
            self.files += [store.connection_path(realm_id), store.tokens_path(realm_id)]
        self.new_folders = [d for d in self.folders if not d.exists()]
        self.old_bytes = {f: f.read_bytes() for f in self.files if f.exists()}

    def undo(self) -> None:
        for folder in self.new_folders:
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)  # created by this connect: all of it is ours
        for path in self.files:
            if path in self.old_bytes:
                write_atomically(path, self.old_bytes[path])
            else:
                path.unlink(missing_ok=True)


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
    the realm as a Dagster partition. Returns a summary without secrets.

    A connect that fails leaves SMARTSYNC_HOME as it was, with one exception: when QBO already rotated
    the refresh token and only the API call failed, the connection is kept (the old refresh token is
    dead now) and the error says so."""
    from smartsync_pipeline.qbo.client import QBOClient
    from smartsync_pipeline.qbo.query import Query

    for label, value in (("--api-base", api_base), ("--token-url", token_url)):
        if not value.startswith(("http://", "https://")):
            raise click.BadParameter(f"{label} must be an http(s) URL, got {value!r}")
    store = CompanyStore(home)
    rollback = ConnectRollback(home, realm_id)
    try:
        conn = CompanyConnection(realm_id, api_base.rstrip("/"), token_url, client_id, client_secret, name)
        store.save(conn, TokenSet(access_token=None, refresh_token=refresh_token))
        if webhook_verifier:
            write_atomically(home.root / VERIFIER_FILE, encrypt(webhook_verifier, home=home).encode("ascii"))
        summary: dict[str, Any] = {"realm_id": realm_id, "api_base": conn.api_base, "verified": False}
        if verify:
            client = QBOClient(conn, store.tokens(realm_id), home=home)
            summary["accounts"] = client.query(Query.count("Account").include_inactive()).total_count
            summary["verified"] = True
    except Exception as exc:
        if not _rotated(store, realm_id, refresh_token):
            rollback.undo()
            raise
        raise QBOError(
            f"company {realm_id} is connected but could not be verified: {' '.join(str(exc).split())}. "
            "QBO already rotated its refresh token, so the connection was kept; run `smartsync sync` once QBO "
            "answers"
        ) from exc
    from smartsync_pipeline.sync.company_shards import mark_connected

    mark_connected(home, realm_id)  # due for a first sync in the fleet index; back in analyst.sql
    summary["dagster_partition"] = _add_partition(realm_id)
    return summary


def _rotated(store: CompanyStore, realm_id: str, given_refresh_token: str) -> bool:
    """True when the stored refresh token is no longer the one the user gave: QBO rotated it."""
    try:
        return store.tokens(realm_id).load().refresh_token != given_refresh_token
    except Exception:
        return False


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
