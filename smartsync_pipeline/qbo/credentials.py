"""Where a connected company's credentials live, encrypted, and how token writes stay safe.

One connection file and one token file per company under ``home.companies_dir`` (0600, secrets
Fernet-encrypted). Every write is atomic (temporary file, fsync, rename, fsync of the folder), so a
crash mid-write leaves either the old or the new refresh token on disk, never half of one: losing the
newest refresh token after a rotation is how existing connectors end with a dead connection.
``TokenStore.lock()`` is the one cross-process, cross-thread lock that serializes refreshes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from smartsync_pipeline.durable_files import write_atomically  # the one atomic-write helper
from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.errors import QBOError, ReauthorizationRequired
from smartsync_pipeline.qbo.secrets import decrypt, encrypt

_REALM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FORMAT_VERSION = 1


class CompanyNotConnected(QBOError):
    """No connection file for that realm under this SMARTSYNC_HOME."""


def _check_realm_id(realm_id: str) -> str:
    if not isinstance(realm_id, str) or not _REALM_ID.match(realm_id):
        raise QBOError(f"invalid realm id {realm_id!r}: expected letters, digits, '-' or '_'")
    return realm_id


@dataclass(frozen=True)
class CompanyConnection:
    """How to reach one QBO company: its realm, the API and token endpoints, and the app's credentials."""

    realm_id: str
    api_base: str  # e.g. https://quickbooks.api.intuit.com/v3
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    name: str = ""


def _fingerprint(secret: str | None) -> str:
    """A short, non-reversible label so logs and reprs can tell two tokens apart without showing them."""
    if not secret:
        return "None"
    return "<sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8] + ">"


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TokenSet:
    """The current OAuth tokens of one company. ``repr`` shows fingerprints, never the tokens."""

    access_token: str | None
    refresh_token: str
    access_expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None

    def __repr__(self) -> str:
        return (
            f"TokenSet(access_token={_fingerprint(self.access_token)}, "
            f"refresh_token={_fingerprint(self.refresh_token)}, "
            f"access_expires_at={self.access_expires_at!r}, refresh_expires_at={self.refresh_expires_at!r})"
        )

    __str__ = __repr__

    def access_expires_within(self, seconds: float, now: datetime | None = None) -> bool:
        """True when there is no access token or it expires within ``seconds`` (unknown expiry counts
        as valid: the server's 401 then triggers the refresh)."""
        if not self.access_token:
            return True
        if self.access_expires_at is None:
            return False
        now = now or datetime.now(UTC)
        return self.access_expires_at - now <= timedelta(seconds=seconds)

    @classmethod
    def from_token_response(cls, payload: Mapping[str, Any], now: datetime | None = None) -> TokenSet:
        """Build from the token endpoint's JSON (``access_token``, ``refresh_token``, ``expires_in``,
        ``x_refresh_token_expires_in``)."""
        now = now or datetime.now(UTC)
        access, refresh = payload.get("access_token"), payload.get("refresh_token")
        if not isinstance(access, str) or not isinstance(refresh, str) or not access or not refresh:
            raise QBOError("token endpoint answer lacks access_token or refresh_token")

        def later(key: str) -> datetime | None:
            try:
                return now + timedelta(seconds=float(payload[key]))
            except (KeyError, TypeError, ValueError):
                return None

        return cls(access, refresh, later("expires_in"), later("x_refresh_token_expires_in"))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class TokenStore:
    """The encrypted token file of one company plus the lock that serializes its refreshes."""

    def __init__(self, realm_id: str, path: Path, lock_path: Path, home: Home) -> None:
        self.realm_id = _check_realm_id(realm_id)
        self.path = path
        self.lock_path = lock_path
        self._home = home
        self._lock = FileLock(lock_path, thread_local=True, poll_interval=0.01)

    def __repr__(self) -> str:
        return f"TokenStore(realm_id={self.realm_id!r}, path={str(self.path)!r})"

    def load(self) -> TokenSet:
        """The stored tokens, read fresh from disk (another process may have rotated them)."""
        try:
            doc = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            raise ReauthorizationRequired(self.realm_id, "no tokens are stored for it") from None
        except ValueError:
            raise QBOError(f"token file {self.path} is corrupt") from None
        try:
            sealed = json.loads(decrypt(doc["sealed"], home=self._home))
            return TokenSet(
                access_token=sealed.get("access_token") or None,
                refresh_token=sealed["refresh_token"],
                access_expires_at=_parse_time(doc.get("access_expires_at")),
                refresh_expires_at=_parse_time(doc.get("refresh_expires_at")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, QBOError):
                raise
            raise QBOError(f"token file {self.path} is corrupt") from None

    def save(self, tokens: TokenSet) -> None:
        """Persist atomically and durably (fsync) before anyone uses the new tokens."""
        sealed = json.dumps({"access_token": tokens.access_token, "refresh_token": tokens.refresh_token})
        doc = {
            "version": _FORMAT_VERSION,
            "realm_id": self.realm_id,
            "access_expires_at": _iso(tokens.access_expires_at),
            "refresh_expires_at": _iso(tokens.refresh_expires_at),
            "saved_at": datetime.now(UTC).isoformat(),
            "sealed": encrypt(sealed, home=self._home),
        }
        write_atomically(self.path, json.dumps(doc, indent=1).encode())

    @contextlib.contextmanager
    def lock(self, timeout: float = 120.0) -> Iterator[None]:
        """Hold the company's refresh lock (exclusive across processes and threads; reentrant within
        one thread)."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._lock.acquire(timeout=timeout)
        except FileLockTimeout:
            raise QBOError(
                f"timed out after {timeout:.0f} s waiting for the token lock of company {self.realm_id}"
            ) from None
        try:
            yield
        finally:
            self._lock.release()


class CompanyStore:
    """All connected companies of one SMARTSYNC_HOME."""

    def __init__(self, home: Home | None = None) -> None:
        self.home = home if home is not None else Home.from_env()

    def connection_path(self, realm_id: str) -> Path:
        """The company's connection file (raises QBOError for a realm id that could escape the folder)."""
        return self.home.companies_dir / f"{_check_realm_id(realm_id)}.json"

    def tokens_path(self, realm_id: str) -> Path:
        """The company's encrypted token file."""
        return self.home.companies_dir / f"{_check_realm_id(realm_id)}.tokens.json"

    def save(self, conn: CompanyConnection, tokens: TokenSet | None = None) -> None:
        """Store (or replace) a company's connection and, when given, its tokens."""
        self.home.ensure()
        doc = {
            "version": _FORMAT_VERSION,
            "realm_id": _check_realm_id(conn.realm_id),
            "name": conn.name,
            "api_base": conn.api_base,
            "token_url": conn.token_url,
            "client_id": conn.client_id,
            "client_secret": encrypt(conn.client_secret, home=self.home),
        }
        write_atomically(self.connection_path(conn.realm_id), json.dumps(doc, indent=1).encode())
        if tokens is not None:
            self.tokens(conn.realm_id).save(tokens)

    def load(self, realm_id: str) -> CompanyConnection:
        path = self.connection_path(realm_id)
        try:
            doc = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise CompanyNotConnected(
                f"company {realm_id} is not connected; run `smartsync connect --realm {realm_id}`"
            ) from None
        except ValueError:
            raise QBOError(f"connection file {path} is corrupt") from None
        return CompanyConnection(
            realm_id=doc["realm_id"],
            api_base=doc["api_base"],
            token_url=doc["token_url"],
            client_id=doc["client_id"],
            client_secret=decrypt(doc["client_secret"], home=self.home),
            name=doc.get("name", ""),
        )

    def realms(self) -> list[str]:
        """Realm ids of every connected company, sorted."""
        folder = self.home.companies_dir
        if not folder.is_dir():
            return []
        files = (p.name for p in folder.glob("*.json") if not p.name.endswith(".tokens.json"))
        names = (name[: -len(".json")] for name in files)
        return sorted(n for n in names if _REALM_ID.match(n))

    def tokens(self, realm_id: str) -> TokenStore:
        return TokenStore(
            realm_id,
            self.tokens_path(realm_id),
            self.home.locks_dir / f"oauth-{_check_realm_id(realm_id)}.lock",
            self.home,
        )


__all__ = [
    "CompanyConnection",
    "CompanyNotConnected",
    "CompanyStore",
    "TokenSet",
    "TokenStore",
    "write_atomically",
]
