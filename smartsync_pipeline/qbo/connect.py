"""Connecting a company: storing its credentials so that concurrent connects, token refreshes and
failures never leave a dead refresh token or half a connection behind (ARCHITECTURE.md, "Token
rotation"). Shared by ``smartsync connect`` (a refresh token from the user) and the Runway Service's
OAuth onboarding (tokens from an authorization code it just exchanged).

Connects of one company are serialized by its token lock, held throughout (with its refreshes). A
refresh token from the user is exchanged before anything is stored: the token file goes from the old
tokens straight to the new ones, never through the given token, which QBO may have rotated by then. A
second connect with a refresh token this home already exchanged keeps the stored tokens.

A connect that fails leaves SMARTSYNC_HOME as it was (``ConnectRollback``, undone under the lock),
with one exception: once QBO has rotated the refresh token (or an authorization code was exchanged),
the new tokens are the only ones that work, so they are kept and ``ConnectedUnverified`` says so.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from smartsync_pipeline.durable_files import write_atomically
from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyConnection, CompanyStore, TokenSet, TokenStore, token_digest
from smartsync_pipeline.qbo.errors import QBOError
from smartsync_pipeline.qbo.query import Query
from smartsync_pipeline.qbo.secrets import VERIFIER_FILE, encrypt


class ConnectedUnverified(QBOError):
    """The company is connected (its new tokens are stored and kept) but the first query failed."""


@dataclass(frozen=True)
class Connected:
    """What a connect stored; no secrets."""

    realm_id: str
    api_base: str
    verified: bool
    accounts: int | None
    kept_tokens: bool  # the given refresh token was already exchanged here: the stored tokens were kept


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
        self.folders: list[Path] = [home.companies_dir, home.realms_dir]
        self.files: list[Path] = [home.key_path, home.root / VERIFIER_FILE]
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


def connect_credentials(
    home: Home,
    conn: CompanyConnection,
    *,
    refresh_token: str | None = None,
    tokens: TokenSet | None = None,
    webhook_verifier: str | None = None,
    verify: bool = True,
) -> Connected:
    """Store ``conn`` with either the user's ``refresh_token`` (exchanged first when ``verify``) or
    ``tokens`` already obtained from an authorization code; with ``verify``, prove them with one COUNT
    query. See the module docstring for what holds under concurrency and failure."""
    if (refresh_token is None) == (tokens is None):
        raise ValueError("give exactly one of refresh_token and tokens")
    store = CompanyStore(home)
    token_store = store.tokens(conn.realm_id)  # checks the realm id before anything is written
    rollback = ConnectRollback(home, conn.realm_id)
    exchanged = False
    accounts: int | None = None
    with token_store.lock():
        rollback.remember()
        try:
            kept = refresh_token is not None and _already_exchanged(store, token_store, conn, refresh_token)
            if tokens is not None:
                store.save(conn)
                token_store.save(tokens, connected_with=token_digest(tokens.refresh_token))
                exchanged = True  # the authorization code is spent: these tokens are the only ones
            elif verify and not kept:
                with _client(home, conn, token_store) as client:
                    client.oauth.exchange(refresh_token, connected_with=token_digest(refresh_token))
                exchanged = True
                store.save(conn)
            else:
                store.save(conn)
                if not kept:
                    token_store.save(TokenSet(None, refresh_token), connected_with=token_digest(refresh_token))
            save_verifier(home, webhook_verifier)
            if verify:
                accounts = _count_accounts(home, conn, token_store)
        except Exception as exc:
            if not exchanged:
                rollback.undo()
                raise
            what = "QBO already rotated its refresh token" if refresh_token else "its tokens are stored"
            raise ConnectedUnverified(
                f"company {conn.realm_id} is connected but could not be verified: {' '.join(str(exc).split())}. "
                f"{what[0].upper() + what[1:]}, so the connection was kept; run `smartsync sync` once QBO answers"
            ) from exc
    return Connected(conn.realm_id, conn.api_base, verify, accounts, kept)


def _client(home: Home, conn: CompanyConnection, tokens: TokenStore) -> QBOClient:
    return QBOClient(conn, tokens, home=home)


def _count_accounts(home: Home, conn: CompanyConnection, tokens: TokenStore) -> int:
    with _client(home, conn, tokens) as client:
        return client.query(Query.count("Account").include_inactive()).total_count


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


def save_verifier(home: Home, webhook_verifier: str | None) -> None:
    """Store the webhook verifier token (encrypted) when one is given."""
    if webhook_verifier:
        write_atomically(home.root / VERIFIER_FILE, encrypt(webhook_verifier, home=home).encode("ascii"))


__all__ = ["ConnectRollback", "Connected", "ConnectedUnverified", "connect_credentials", "save_verifier"]
