"""API keys: who may read which businesses.

A key is ``ssk_<key id>_<secret>``. Only the SHA-256 of the secret is stored (the secret is 256 random
bits, so a fast hash is enough: there is nothing to brute-force), compared in constant time. Each key
names the businesses (realm ids, or ``*``) and the scopes it grants (``read``: business data;
``connect``: onboard companies through OAuth) and its own rate limit. The file is
``SMARTSYNC_HOME/api/keys.json`` (0600), replaced atomically under a file lock, so
``smartsync keys revoke`` in another process takes effect on the server's next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.credentials import write_atomically

SCOPES = ("read", "connect")
ALL_BUSINESSES = "*"
PREFIX = "ssk_"
DEFAULT_RATE_PER_MINUTE = 600
_KEY = re.compile(r"^ssk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
_BUSINESS = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class KeyRequestError(ValueError):
    """A bad key request (unknown id, bad scope or business)."""


@dataclass(frozen=True)
class ApiKey:
    """One key's record: never the secret, only its hash."""

    key_id: str
    name: str
    businesses: tuple[str, ...]
    scopes: tuple[str, ...]
    rate_per_minute: int
    created_at: str
    secret_sha256: str = field(repr=False)
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def may_see(self, business_id: str) -> bool:
        return ALL_BUSINESSES in self.businesses or business_id in self.businesses

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        del d["secret_sha256"]
        d["businesses"], d["scopes"] = list(self.businesses), list(self.scopes)
        return d


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_dir(home: Home) -> Path:
    return home.root / "api"


class KeyStore:
    """The keys of one SMARTSYNC_HOME. Reads are cached until the file changes on disk."""

    def __init__(self, home: Home) -> None:
        self.path = api_dir(home) / "keys.json"
        self._lock = FileLock(str(self.path) + ".lock")
        self._cache: tuple[tuple[int, int, int], dict[str, ApiKey]] | None = None

    # -- reading ---------------------------------------------------------------------------------

    def _version(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _load(self) -> dict[str, ApiKey]:
        version = self._version()
        if version is None:
            return {}
        if self._cache is not None and self._cache[0] == version:
            return self._cache[1]
        doc = json.loads(self.path.read_text())
        keys = {}
        for rec in doc.get("keys", []):
            rec = {**rec, "businesses": tuple(rec["businesses"]), "scopes": tuple(rec["scopes"])}
            keys[rec["key_id"]] = ApiKey(**rec)
        self._cache = (version, keys)
        return keys

    def list(self) -> list[ApiKey]:
        return sorted(self._load().values(), key=lambda k: k.created_at)

    def authenticate(self, presented: str | None) -> ApiKey | None:
        """The active key ``presented`` is, or None (unknown, malformed, revoked)."""
        match = _KEY.match(presented or "")
        if match is None:
            return None
        key = self._load().get(match.group(1))
        if key is None or not key.active:
            return None
        if not hmac.compare_digest(key.secret_sha256, _digest(match.group(2))):
            return None
        return key

    # -- writing ---------------------------------------------------------------------------------

    def _write(self, keys: Iterable[ApiKey]) -> None:
        doc = {"version": 1, "keys": [asdict(k) for k in keys]}
        write_atomically(self.path, json.dumps(doc, indent=1).encode())

    def create(
        self,
        name: str,
        businesses: Iterable[str],
        scopes: Iterable[str] = ("read",),
        rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
    ) -> tuple[ApiKey, str]:
        """A new key; returns its record and the full key text (shown once, never stored)."""
        businesses = tuple(dict.fromkeys(b.strip() for b in businesses if b.strip()))
        scopes = tuple(dict.fromkeys(s.strip() for s in scopes if s.strip()))
        bad = [b for b in businesses if b != ALL_BUSINESSES and not _BUSINESS.match(b)]
        if bad:
            raise KeyRequestError(f"not a business id: {', '.join(map(repr, bad))}")
        if not businesses and "connect" not in scopes:
            raise KeyRequestError("a key needs at least one business (a realm id, or * for all)")
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise KeyRequestError(f"scopes must be among {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
        if isinstance(rate_per_minute, bool) or not 1 <= int(rate_per_minute) <= 1_000_000:
            raise KeyRequestError("rate_per_minute must be between 1 and 1000000")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        record = ApiKey(
            key_id=key_id, name=name.strip() or key_id, businesses=businesses, scopes=scopes,
            rate_per_minute=int(rate_per_minute), created_at=datetime.now(UTC).isoformat(),
            secret_sha256=_digest(secret),
        )  # fmt: skip
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock:
            keys = self._load()
            self._write([*keys.values(), record])
        return record, f"{PREFIX}{key_id}_{secret}"

    def _update(self, key_id: str, change: Any) -> ApiKey:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock:
            keys = dict(self._load())
            key_id = key_id.removeprefix(PREFIX).split("_")[0]
            if key_id not in keys:
                raise KeyRequestError(f"no API key {key_id!r}")
            keys[key_id] = change(keys[key_id])
            self._write(keys.values())
            return keys[key_id]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke for good (idempotent: the first revocation time is kept)."""
        now = datetime.now(UTC).isoformat()
        return self._update(key_id, lambda k: k if k.revoked_at else replace(k, revoked_at=now))

    def grant(self, key_id: str, business_id: str) -> ApiKey:
        """Let a key see one more business (the one it just connected)."""
        if not _BUSINESS.match(business_id):
            raise KeyRequestError(f"not a business id: {business_id!r}")
        return self._update(
            key_id, lambda k: k if k.may_see(business_id) else replace(k, businesses=(*k.businesses, business_id))
        )


def mask(presented: str) -> str:
    """How a key may appear in a log line: its id only."""
    match = _KEY.match(presented or "")
    return f"{PREFIX}{match.group(1)}_***" if match else "***"


__all__ = ["ALL_BUSINESSES", "SCOPES", "ApiKey", "KeyRequestError", "KeyStore", "api_dir", "mask"]
