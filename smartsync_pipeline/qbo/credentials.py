"""Where a connected company's credentials live, encrypted, and how token writes stay safe.

One connection file and one token file per company under ``home.companies_dir`` (0600, secrets
Fernet-encrypted). Every write is atomic (temporary file, fsync, rename, fsync of the folder), so a
crash mid-write leaves either the old or the new refresh token on disk, never half of one: losing the
newest refresh token after a rotation is how existing connectors end with a dead connection.
``TokenStore.lock()`` is the one cross-process, cross-thread lock that serializes refreshes and
connects of a company.

Two more facts live beside the tokens, so that a crash or a second ``connect`` can never cost the
connection (see ARCHITECTURE.md, "Token rotation"): the token file remembers a digest of the refresh
token the company was connected with (a second ``connect`` with that same, already-used token keeps
the stored tokens instead of writing a dead one back), and ``<realm>.refreshing`` records a refresh in
flight (written durably before the token request, removed when the answer is stored), so an
``invalid_grant`` after a process died mid-refresh says exactly that.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from filelock import FileLock
from filelock import Timeout as FileLockTimeout

from smartsync_pipeline.durable_files import make_private_dirs, write_atomically  # the one atomic-write helper
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


def token_digest(secret: str) -> str:
    """A SHA-256 digest of a token: enough to recognize it again, useless to anyone who reads it."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class RefreshInFlight:
    """A token refresh that was sent but whose answer was never stored (the process ended)."""

    refresh_digest: str
    started_at: datetime
    pid: int


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

    @property
    def home(self) -> Home:
        return self._home

    def load(self) -> TokenSet:
        """The stored tokens, read fresh from disk (another process may have rotated them)."""
        try:
            doc = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            raise ReauthorizationRequired(self.realm_id, "no tokens are stored for it") from None
        except ValueError:
            raise self._damaged("it is not JSON") from None
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
            raise self._damaged("a field is missing or malformed") from None

    def _damaged(self, what: str) -> QBOError:
        return QBOError(
            f"the token file of company {self.realm_id} ({self.path}) is damaged: {what}; restore it from a "
            f"backup or connect the company again (`smartsync connect --realm {self.realm_id} …`)"
        )

    def save(self, tokens: TokenSet, *, connected_with: str | None = None) -> None:
        """Persist atomically and durably (fsync) before anyone uses the new tokens, then forget the
        refresh in flight (its answer is stored now). ``connected_with`` (a ``connect``) replaces the
        remembered connect token; a refresh keeps it."""
        if connected_with is None:
            connected_with = self._doc().get("connected_with")
        sealed = json.dumps({"access_token": tokens.access_token, "refresh_token": tokens.refresh_token})
        doc = {
            "version": _FORMAT_VERSION,
            "realm_id": self.realm_id,
            "access_expires_at": _iso(tokens.access_expires_at),
            "refresh_expires_at": _iso(tokens.refresh_expires_at),
            "saved_at": datetime.now(UTC).isoformat(),
            "connected_with": connected_with,
            "sealed": encrypt(sealed, home=self._home),
        }
        write_atomically(self.path, json.dumps(doc, indent=1).encode())
        self.refresh_path.unlink(missing_ok=True)

    def _doc(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def connected_with(self, refresh_token: str) -> bool:
        """True when the stored tokens came from connecting with ``refresh_token`` (or are it): that
        token was already exchanged here, and writing it back would store a dead token."""
        digest = token_digest(refresh_token)
        if self._doc().get("connected_with") == digest:
            return True
        try:
            return self.load().refresh_token == refresh_token
        except QBOError:
            return False

    @property
    def refresh_path(self) -> Path:
        """Marks a refresh in flight (see the module docstring)."""
        return self.path.with_name(f"{self.realm_id}.refreshing")

    def begin_refresh(self, refresh_token: str) -> RefreshInFlight | None:
        """Record, durably, that a refresh with ``refresh_token`` is about to be sent. Returns the
        earlier refresh with the same token that never finished (a process died after sending it),
        which is then kept as it is."""
        earlier = self.refresh_in_flight()
        digest = token_digest(refresh_token)
        if earlier is not None and earlier.refresh_digest == digest:
            return earlier
        doc = {"refresh_digest": digest, "started_at": datetime.now(UTC).isoformat(), "pid": os.getpid()}
        write_atomically(self.refresh_path, json.dumps(doc).encode())
        return None

    def refresh_in_flight(self) -> RefreshInFlight | None:
        try:
            doc = json.loads(self.refresh_path.read_bytes())
            return RefreshInFlight(str(doc["refresh_digest"]), _parse_time(doc["started_at"]), int(doc["pid"]))  # type: ignore[arg-type]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged marker says nothing reliable; the next stored answer removes it

    def end_refresh(self) -> None:
        """The refresh got a definite answer that rotated nothing (e.g. refused): forget it."""
        self.refresh_path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def lock(self, timeout: float = 120.0) -> Iterator[None]:
        """Hold the company's refresh lock (exclusive across processes and threads; reentrant within
        one thread and one ``TokenStore``)."""
        deadline = time.monotonic() + timeout
        while True:
            make_private_dirs(self.lock_path.parent)
            try:
                self._lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
            except FileLockTimeout:
                raise QBOError(
                    f"timed out after {timeout:.0f} s waiting for the token lock of company {self.realm_id}"
                ) from None
            except FileNotFoundError:
                continue  # a failed first connect removed the folder meanwhile: make it again
            if self._holds_the_lock_file():
                break
            self._lock.release()  # the file was removed and made again while we waited: lock the new one
        try:
            other_hosts = contextlib.ExitStack()
            try:
                other_hosts.enter_context(self._other_hosts_excluded(deadline))
            except TimeoutError:  # locking.LockTimeout: another host is refreshing this company's tokens
                raise QBOError(
                    f"timed out after {timeout:.0f} s waiting for the token lock of company {self.realm_id} "
                    "(held on another host)"
                ) from None
            with other_hosts:
                yield
        finally:
            self._lock.release()

    def _other_hosts_excluded(self, deadline: float) -> contextlib.AbstractContextManager[object]:
        """With SMARTSYNC_COORDINATION set, the outermost hold also takes the company's token lock in
        PostgreSQL, so refreshes on different hosts never race over one rotating refresh token."""
        from smartsync_pipeline.coordination import cross_host_lock

        if self._lock.lock_counter > 1:  # nested in this thread: the outer hold has it
            return contextlib.nullcontext()
        shared = cross_host_lock(self._home.realm(self.realm_id), "token", f"the token lock of company {self.realm_id}")
        if shared is None:
            return contextlib.nullcontext()
        return shared.exclusive(max(0.0, deadline - time.monotonic()))

    def _holds_the_lock_file(self) -> bool:
        """True unless the locked file is no longer the one at ``lock_path`` (a failed first connect
        removes the home it created, lock file included, while holding the lock)."""
        if self._lock.lock_counter > 1:
            return True
        fd = getattr(getattr(self._lock, "_context", None), "lock_file_fd", None)
        if fd is None:
            return True
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.lock_path))
        except FileNotFoundError:
            return False


_CONNECTION_FIELDS = ("realm_id", "api_base", "token_url", "client_id", "client_secret")


def _damaged(realm_id: str, path: Path, what: str) -> QBOError:
    return QBOError(
        f"the connection file of company {realm_id} ({path}) is damaged: {what}; restore it from a backup "
        f"or connect the company again (`smartsync connect --realm {realm_id} …`)"
    )


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
            raise _damaged(realm_id, path, "it is not JSON") from None
        if not isinstance(doc, dict):
            raise _damaged(realm_id, path, "it is not a JSON object")
        missing = [k for k in _CONNECTION_FIELDS if not isinstance(doc.get(k), str) or not doc.get(k)]
        if missing:
            raise _damaged(realm_id, path, f"{', '.join(missing)} missing or empty")
        if doc["realm_id"] != realm_id:
            raise _damaged(realm_id, path, f"it names company {doc['realm_id']!r}")
        return CompanyConnection(
            realm_id=doc["realm_id"],
            api_base=doc["api_base"],
            token_url=doc["token_url"],
            client_id=doc["client_id"],
            client_secret=decrypt(doc["client_secret"], home=self.home),
            name=str(doc.get("name") or ""),
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
    "RefreshInFlight",
    "TokenSet",
    "TokenStore",
    "token_digest",
    "write_atomically",
]
