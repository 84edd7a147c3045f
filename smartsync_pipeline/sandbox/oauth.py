"""OAuth 2.0 the way Intuit does it: hour-long access tokens, rotating refresh tokens bound to a realm.

Intuit's documented rotation (developer help article "Validity of Refresh Token"): a refresh token
keeps its value for its first 24 hours — refreshing with it returns a new access token and the same
refresh token —; the first refresh after that returns a new refresh token and the old one stops
working at once (``invalid_grant``). No grace period for the old token is documented.
``rotation_interval_seconds=86400`` is that model. The default, 0, is stricter than Intuit: every
refresh rotates, which is what our client must survive anyway. ``rotation_grace_seconds`` keeps a
replaced token working for a while (an experiment; not Intuit's behaviour). Tokens are random and
are never logged or echoed anywhere but in the token response itself.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smartsync_pipeline.sandbox.clock import SandboxClock

ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 8_726_400


class InvalidGrant(Exception):
    """Unknown, used, expired or revoked refresh token / authorization code."""


class InvalidClient(Exception):
    """Wrong client id or secret."""


@dataclass
class _AccessGrant:
    realm_id: str
    expires_at: float
    generation: int


@dataclass
class _RefreshGrant:
    realm_id: str
    expires_at: float
    rotated_at: float | None = None
    issued_at: float = 0.0  # state files from before this field: treated as old, so they rotate


@dataclass(frozen=True)
class AuthCheck:
    ok: bool
    reason: str = ""


class TokenAuthority:
    """Issues and checks tokens for the realms of one sandbox."""

    def __init__(
        self,
        clock: SandboxClock,
        realm_ids: list[str],
        client_id: str | None = None,
        client_secret: str | None = None,
        rotation_grace_seconds: float = 0.0,
        rotation_interval_seconds: float = 0.0,
    ) -> None:
        self.clock = clock
        self.realm_ids = list(realm_ids)
        self.client_id = client_id or f"sandbox-{secrets.token_hex(8)}"
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.rotation_grace_seconds = rotation_grace_seconds
        self.rotation_interval_seconds = rotation_interval_seconds
        self._lock = threading.Lock()
        self._access: dict[str, _AccessGrant] = {}
        self._refresh: dict[str, _RefreshGrant] = {}
        self._codes: dict[str, str] = {}  # authorization code → realm (single use)
        self._code_redirects: dict[str, str] = {}  # code → the redirect_uri it was issued for
        self._generation = dict.fromkeys(self.realm_ids, 0)
        self.on_change: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"TokenAuthority(realms={self.realm_ids!r})"

    def check_client(self, client_id: str, client_secret: str) -> None:
        same_id = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        same_secret = hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        if not (same_id and same_secret):
            raise InvalidClient

    def _issue_locked(self, realm_id: str, keep_refresh: str | None = None) -> dict[str, Any]:
        """A new access token with a new refresh token, or with ``keep_refresh`` (still young: Intuit
        returns the same refresh token, its expiry rolled forward)."""
        now = self.clock.now()
        access = secrets.token_urlsafe(32)
        self._access[access] = _AccessGrant(realm_id, now + ACCESS_TOKEN_SECONDS, self._generation[realm_id])
        if keep_refresh is None:
            refresh = secrets.token_urlsafe(32)
            self._refresh[refresh] = _RefreshGrant(realm_id, now + REFRESH_TOKEN_SECONDS, issued_at=now)
        else:
            refresh = keep_refresh
            self._refresh[refresh].expires_at = now + REFRESH_TOKEN_SECONDS
        self._prune_locked(now)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "x_refresh_token_expires_in": REFRESH_TOKEN_SECONDS,
            "token_type": "bearer",
        }

    def _prune_locked(self, now: float) -> None:
        for token in [t for t, g in self._access.items() if g.expires_at < now - 86_400]:
            del self._access[token]
        grace = self.rotation_grace_seconds
        for token in [
            t
            for t, g in self._refresh.items()
            if g.expires_at < now or (g.rotated_at is not None and now - g.rotated_at > grace)
        ]:
            del self._refresh[token]

    def issue(self, realm_id: str) -> dict[str, Any]:
        """A fresh token pair for a realm (start-up and tests)."""
        with self._lock:
            pair = self._issue_locked(realm_id)
        self._changed()
        return pair

    def new_authorization_code(self, realm_id: str) -> str:
        with self._lock:
            code = secrets.token_urlsafe(18)
            self._codes[code] = realm_id
        self._changed()
        return code

    def authorize(self, client_id: str, redirect_uri: str, realm_id: str) -> str:
        """The authorize endpoint's consent, given: a single-use code bound to ``redirect_uri``."""
        if not hmac.compare_digest(client_id.encode(), self.client_id.encode()):
            raise InvalidClient
        if realm_id not in self._generation:
            raise KeyError(realm_id)
        code = self.new_authorization_code(realm_id)
        with self._lock:
            self._code_redirects[code] = redirect_uri
        return code

    def refresh(self, refresh_token: str) -> tuple[str, dict[str, Any]]:
        """Rotate: (realm, new token response). Raises InvalidGrant."""
        with self._lock:
            now = self.clock.now()
            grant = self._refresh.get(refresh_token)
            if grant is None or grant.expires_at < now:
                raise InvalidGrant
            if grant.rotated_at is not None and now - grant.rotated_at > self.rotation_grace_seconds:
                raise InvalidGrant
            if grant.rotated_at is None and now - grant.issued_at < self.rotation_interval_seconds:
                pair = self._issue_locked(grant.realm_id, keep_refresh=refresh_token)
            else:
                if grant.rotated_at is None:
                    grant.rotated_at = now
                pair = self._issue_locked(grant.realm_id)
        self._changed()
        return grant.realm_id, pair

    def exchange_code(self, code: str, redirect_uri: str | None = None) -> tuple[str, dict[str, Any]]:
        """Single use; a code from the authorize endpoint also needs the same ``redirect_uri``."""
        with self._lock:
            realm_id = self._codes.pop(code, None)
            bound = self._code_redirects.pop(code, None)
            if realm_id is None or (bound is not None and bound != redirect_uri):
                raise InvalidGrant
            pair = self._issue_locked(realm_id)
        self._changed()
        return realm_id, pair

    def authenticate(self, access_token: str | None, realm_id: str) -> AuthCheck:
        if not access_token:
            return AuthCheck(False, "Authorization header missing or not a Bearer token")
        with self._lock:
            grant = self._access.get(access_token)
            if grant is None:
                return AuthCheck(False, "Token invalid or unknown")
            if grant.realm_id != realm_id:
                return AuthCheck(False, "Token was issued for another company (realm)")
            if grant.expires_at <= self.clock.now():
                return AuthCheck(False, "Token expired")
            if grant.generation != self._generation.get(realm_id):
                return AuthCheck(False, "Token revoked")
        return AuthCheck(True)

    def revoke_access(self, realm_id: str) -> int:
        """Invalidate every current access token of a realm (refresh tokens keep working)."""
        with self._lock:
            if realm_id not in self._generation:
                raise KeyError(realm_id)
            self._generation[realm_id] += 1
            revoked = sum(1 for g in self._access.values() if g.realm_id == realm_id)
        self._changed()
        return revoked

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def snapshot(self) -> dict[str, Any]:
        """Everything a restarted sandbox needs so the same tokens keep working."""
        with self._lock:
            self._prune_locked(self.clock.now())
            return {
                "access": {t: vars(g).copy() for t, g in self._access.items()},
                "refresh": {t: vars(g).copy() for t, g in self._refresh.items()},
                "codes": dict(self._codes),
                "generation": dict(self._generation),
            }

    def restore(self, state: dict[str, Any]) -> None:
        with self._lock:
            self._access = {t: _AccessGrant(**g) for t, g in state.get("access", {}).items()}
            self._refresh = {t: _RefreshGrant(**g) for t, g in state.get("refresh", {}).items()}
            self._codes = dict(state.get("codes", {}))
            self._generation.update(state.get("generation", {}))

    def newest_refresh_token(self, realm_id: str) -> str | None:
        """The most recently issued, still usable refresh token of a realm (start-up info)."""
        with self._lock:
            usable = [
                (g.expires_at, t) for t, g in self._refresh.items() if g.realm_id == realm_id and g.rotated_at is None
            ]
        return max(usable)[1] if usable else None

    def newest_access_token(self, realm_id: str) -> str | None:
        now = self.clock.now()
        with self._lock:
            usable = [
                (g.expires_at, t)
                for t, g in self._access.items()
                if g.realm_id == realm_id and g.expires_at > now and g.generation == self._generation[realm_id]
            ]
        return max(usable)[1] if usable else None

    def code_for(self, realm_id: str) -> str | None:
        with self._lock:
            return next((c for c, r in self._codes.items() if r == realm_id), None)
