"""``smartsync connect`` / ``smartsync companies``: register QBO companies (realms)."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import click
from filelock import FileLock

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.credentials import (
    CompanyConnection,
    CompanyStore,
    TokenSet,
    TokenStore,
    token_digest,
    write_atomically,
)
from smartsync_pipeline.qbo.errors import QBOError
from smartsync_pipeline.qbo.secrets import VERIFIER_FILE, encrypt

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
    their old content back. Made before the company's token lock is taken (which folders existed),
    then ``remember`` under the lock (what the files held), so a concurrent connect's work is never
    undone. The caller skips the rollback once QBO has rotated the refresh token, because then the
    stored new token is the only one that still works."""

    def __init__(self, home: Home, realm_id: str) -> None:
        store = CompanyStore(home)
        self.home = home
        self.folders = [home.companies_dir, home.snapshots_dir, home.archive_dir]
        self.files = [home.key_path, home.root / VERIFIER_FILE]
        with contextlib.suppress(QBOError):  # an invalid realm id: nothing will be written for it
            tokens = store.tokens(realm_id)
            self.files += [store.connection_path(realm_id), tokens.path, tokens.refresh_path]
        self.home_was_new = not home.root.exists()
        self.new_folders: list[Path] = []
        self.old_bytes: dict[Path, bytes] = {}

    def remember(self) -> None:
        """What is there now (call while holding the company's token lock)."""
        self.new_folders = [d for d in self.folders if not d.exists()]
        self.old_bytes = {f: f.read_bytes() for f in self.files if f.exists()}

    def undo(self) -> None:
        for path in self.files:
            if path in self.old_bytes:
                write_atomically(path, self.old_bytes[path])
            else:
                path.unlink(missing_ok=True)
        for folder in self.new_folders:
            with contextlib.suppress(OSError):  # not empty: another company's connect wrote there meanwhile
                folder.rmdir()
        if self.home_was_new and self._only_locks_left():
            # We made the home for the token lock; waiters notice the lock file went and take a new one.
            shutil.rmtree(self.home.root, ignore_errors=True)

    def _only_locks_left(self) -> bool:
        root, locks = self.home.root, self.home.locks_dir
        others = [p for p in root.iterdir() if p != locks] if root.is_dir() else []
        return not others and all(p.suffix == ".lock" for p in (locks.iterdir() if locks.is_dir() else []))


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

    Connects of one company are serialized by its token lock (with its refreshes), and the user's
    refresh token is exchanged before anything is stored: the token file goes from the old tokens
    straight to the new ones, never through the given token, which QBO may have rotated by then. A
    second connect with a refresh token this home already exchanged keeps the stored tokens.

    A connect that fails leaves SMARTSYNC_HOME as it was, with one exception: when QBO already rotated
    the refresh token and only the API call failed, the connection is kept (the old refresh token is
    dead now) and the error says so."""
    for label, value in (("--api-base", api_base), ("--token-url", token_url)):
        if not value.startswith(("http://", "https://")):
            raise click.BadParameter(f"{label} must be an http(s) URL, got {value!r}")
    store = CompanyStore(home)
    tokens = store.tokens(realm_id)  # checks the realm id before anything is written
    conn = CompanyConnection(realm_id, api_base.rstrip("/"), token_url, client_id, client_secret, name)
    rollback = ConnectRollback(home, realm_id)
    exchanged = False
    with tokens.lock():
        rollback.remember()
        try:
            summary: dict[str, Any] = {"realm_id": realm_id, "api_base": conn.api_base, "verified": False}
            summary["kept_tokens"] = _already_exchanged(store, tokens, conn, refresh_token)
            if verify:
                from smartsync_pipeline.qbo.client import QBOClient
                from smartsync_pipeline.qbo.query import Query

                client = QBOClient(conn, tokens, home=home)
                if not summary["kept_tokens"]:
                    client.oauth.exchange(refresh_token, connected_with=token_digest(refresh_token))
                    exchanged = True
                store.save(conn)
                _save_verifier(home, webhook_verifier)
                summary["accounts"] = client.query(Query.count("Account").include_inactive()).total_count
                summary["verified"] = True
            else:
                store.save(conn)
                if not summary["kept_tokens"]:
                    tokens.save(TokenSet(None, refresh_token), connected_with=token_digest(refresh_token))
                _save_verifier(home, webhook_verifier)
        except Exception as exc:
            if not exchanged:
                rollback.undo()
                raise
            raise QBOError(
                f"company {realm_id} is connected but could not be verified: {' '.join(str(exc).split())}. "
                "QBO already rotated its refresh token, so the connection was kept; run `smartsync sync` once "
                "QBO answers"
            ) from exc
    summary["dagster_partition"] = _add_partition(home, realm_id)
    if summary["dagster_partition"]:
        from smartsync_pipeline.defs.company_status import record_freshness_checks

        summary["checks_recorded"] = record_freshness_checks(home)  # the UI shows its status at once
    return summary


def _already_exchanged(store: CompanyStore, tokens: TokenStore, conn: CompanyConnection, refresh_token: str) -> bool:
    """True when this home already connected the company with ``refresh_token`` for the same app (an
    earlier or concurrent connect exchanged it): its stored tokens are the live ones, the given token
    may be dead, so the stored ones are kept."""
    if not tokens.connected_with(refresh_token):
        return False
    try:
        stored = store.load(conn.realm_id)
    except QBOError:
        return False
    return (stored.client_id, stored.token_url) == (conn.client_id, conn.token_url)


def _save_verifier(home: Home, webhook_verifier: str | None) -> None:
    if webhook_verifier:
        write_atomically(home.root / VERIFIER_FILE, encrypt(webhook_verifier, home=home).encode("ascii"))


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
