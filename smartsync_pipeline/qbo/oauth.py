"""Access tokens for one company, refreshed exactly once however many threads and processes ask.

QBO rotates refresh tokens: once a refresh returns a new refresh token, the old one is dead. Two workers refreshing with
the same token means one of them gets ``invalid_grant`` and, if it overwrote the store, a company that
must be reconnected by hand. The protocol here: take the company's cross-process lock, re-read the
store, and if the stored access token is no longer the one that failed, someone else already
refreshed — use theirs. Otherwise refresh, persist the new pair durably, and only then use it.

The one moment a crash can still cost the connection is between QBO rotating the refresh token and
the new one reaching disk. ``exchange`` keeps that window to the network return trip, the parsing of
the answer and one atomic write (the key is checked and the refresh recorded as in flight before the
request is sent; until the write the previous token stays on disk), and an ``invalid_grant`` after
such a crash names it (see ARCHITECTURE.md, "Token rotation").
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import requests

from smartsync_pipeline.qbo.credentials import CompanyConnection, RefreshInFlight, TokenSet, TokenStore
from smartsync_pipeline.qbo.errors import (
    EndpointRefused,
    QBOError,
    ReauthorizationRequired,
    RetriesExhausted,
    TransportError,
    connection_refused,
    parse_fault,
)
from smartsync_pipeline.qbo.secrets import fernet, redact

EXPIRY_MARGIN_SECONDS = 60.0

_log = logging.getLogger("smartsync.qbo.oauth")


class OAuthSession:
    """Hands out a valid access token for ``conn`` and refreshes it safely when needed."""

    def __init__(
        self,
        conn: CompanyConnection,
        token_store: TokenStore,
        http_session: requests.Session | None = None,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 3,
    ) -> None:
        self.conn = conn
        self.token_store = token_store
        self.http = http_session or requests.Session()
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.refresh_count = 0  # refreshes this session actually performed against the token endpoint
        self._tokens: TokenSet | None = None
        self._memory_lock = threading.Lock()
        # The refresh token the token endpoint refused, and why: the pool threads of one backfill that
        # all find the access token dead get that answer too, without asking (and logging) again.
        self._refused: tuple[str, str] | None = None

    def __repr__(self) -> str:
        return f"OAuthSession(realm_id={self.conn.realm_id!r}, refreshes={self.refresh_count})"

    def known_secrets(self) -> tuple[str, ...]:
        """The secrets this session holds, so callers can scrub them from anything they show."""
        tokens = self._tokens
        values = [self.conn.client_secret]
        if tokens is not None:
            values += [tokens.access_token or "", tokens.refresh_token]
        return tuple(v for v in values if v)

    def access_token(self) -> str:
        """A valid access token: the cached one, else the stored one, else a fresh refresh."""
        with self._memory_lock:
            tokens = self._tokens
        if tokens is None or tokens.access_expires_within(EXPIRY_MARGIN_SECONDS):
            stored = self.token_store.load()
            with self._memory_lock:
                self._tokens = stored
            tokens = stored
        if tokens.access_token and not tokens.access_expires_within(EXPIRY_MARGIN_SECONDS):
            return tokens.access_token
        return self.refresh(tokens.access_token)

    def refresh(self, stale_access_token: str | None) -> str:
        """Replace ``stale_access_token`` (the one that failed or is expiring) and return a working one.

        Safe to call from many threads and processes at once: exactly one refresh reaches the token
        endpoint; everybody else picks up the token it stored.
        """
        with self.token_store.lock():
            stored = self.token_store.load()
            if (
                stored.access_token
                and stored.access_token != stale_access_token
                and not stored.access_expires_within(EXPIRY_MARGIN_SECONDS)
            ):
                _log.debug("realm %s: another worker already refreshed; using its token", self.conn.realm_id)
                with self._memory_lock:
                    self._tokens = stored
                return stored.access_token
            refused = self._refused
            if refused is not None and refused[0] == stored.refresh_token:
                raise ReauthorizationRequired(self.conn.realm_id, refused[1])
            try:
                fresh = self.exchange(stored.refresh_token)
            except ReauthorizationRequired as exc:
                self._refused = (stored.refresh_token, exc.reason)
                raise
            with self._memory_lock:
                self.refresh_count += 1
            _log.info("realm %s: access token refreshed and stored", self.conn.realm_id)
            assert fresh.access_token is not None
            return fresh.access_token

    def exchange(self, refresh_token: str, *, connected_with: str | None = None) -> TokenSet:
        """Trade ``refresh_token`` for a new token pair and store it durably before returning it.
        The caller holds ``token_store.lock()``. ``connected_with`` is passed on to the store (a
        ``connect``)."""
        store = self.token_store
        fernet(store.home, create=True)  # a missing key must fail here, before QBO rotates, not after
        earlier = store.begin_refresh(refresh_token)
        try:
            fresh = self._request_refresh(refresh_token)
        except ReauthorizationRequired as exc:
            if exc.reason.endswith("(invalid_grant)") and earlier is not None:
                raise ReauthorizationRequired(self.conn.realm_id, _interrupted(earlier)) from None
            store.end_refresh()  # refused: nothing was rotated
            raise
        except EndpointRefused:
            store.end_refresh()  # the connection was refused: nothing was sent, nothing rotated
            raise
        except TransportError:
            raise  # no answer: QBO may have rotated; the refresh stays recorded as in flight
        except QBOError:
            store.end_refresh()  # a definite error answer: nothing was rotated
            raise
        store.save(fresh, connected_with=connected_with)  # durable before use: the old token may be dead now
        with self._memory_lock:
            self._tokens = fresh
        return fresh

    def _request_refresh(self, refresh_token: str) -> TokenSet:
        """POST the refresh. Retries only when the server provably did not rotate (connect failure,
        429, 5xx); a read timeout is not retried, as the old refresh token may already be dead."""
        secrets = (refresh_token, self.conn.client_secret)
        last: QBOError | None = None
        for attempt in range(1, self.max_attempts + 1):
            if last is not None:  # back off between attempts, not after the last one: we hold the token lock
                time.sleep(min(2.0 ** (attempt - 1) * 0.25, 5.0))
            started = time.monotonic()
            try:
                response = self.http.post(
                    self.conn.token_url,
                    data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                    auth=(self.conn.client_id, self.conn.client_secret),
                    headers={"Accept": "application/json"},
                    timeout=self.timeout,
                )
            except requests.exceptions.ConnectTimeout as exc:
                last = TransportError(f"token endpoint unreachable: {type(exc).__name__}")
                _log.warning("realm %s: token refresh attempt %d: %s", self.conn.realm_id, attempt, last)
                continue
            except requests.RequestException as exc:
                if connection_refused(exc):  # never reached a server: nothing was rotated, and retrying cannot help
                    raise EndpointRefused(self.conn.token_url) from None
                raise TransportError(
                    f"token refresh for company {self.conn.realm_id} failed without an answer "
                    f"({type(exc).__name__}); the refresh token may have been rotated by the server"
                ) from None
            elapsed_ms = (time.monotonic() - started) * 1000
            _log.debug("POST %s -> %d (%.0f ms)", _path_of(self.conn.token_url), response.status_code, elapsed_ms)
            if response.status_code == 200:
                try:
                    return TokenSet.from_token_response(response.json(), now=datetime.now(UTC))
                except (ValueError, AttributeError, QBOError):
                    # The server answered 200, so it may have rotated: this is "no usable answer".
                    raise TransportError(
                        f"token refresh for company {self.conn.realm_id} got an unusable 200 answer; the refresh "
                        "token may have been rotated by the server"
                    ) from None
            error = _oauth_error(response)
            if error in {"invalid_grant", "invalid_client", "unauthorized_client"}:
                reason = {
                    "invalid_grant": "the refresh token was rejected (invalid_grant)",
                    "invalid_client": "the app's client id or secret was rejected (invalid_client)",
                    "unauthorized_client": "the app is not authorized for it (unauthorized_client)",
                }[error]
                _log.error("realm %s: %s; reconnection required", self.conn.realm_id, reason)
                raise ReauthorizationRequired(self.conn.realm_id, reason)
            fault = parse_fault(response.status_code, response.headers, response.content)
            last = (fault or QBOError(f"token endpoint answered HTTP {response.status_code}")).scrub(*secrets)
            if response.status_code == 429 or response.status_code >= 500:
                _log.warning("realm %s: token refresh attempt %d: %s", self.conn.realm_id, attempt, last)
                continue
            raise last
        assert last is not None
        raise RetriesExhausted(last, self.max_attempts)


def _interrupted(earlier: RefreshInFlight) -> str:
    return (
        f"the refresh token was rejected (invalid_grant) right after an interrupted refresh: process "
        f"{earlier.pid} sent a token refresh at {earlier.started_at:%Y-%m-%d %H:%M:%S} UTC and ended before it "
        "stored the answer, so QBO rotated the refresh token and the new one was lost. Nothing local can "
        "bring it back: authorize the app again to get a new refresh token"
    )


def _oauth_error(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


def _path_of(url: str) -> str:
    return redact(requests.utils.urlparse(url).path)


__all__ = ["EXPIRY_MARGIN_SECONDS", "OAuthSession"]
