"""The OAuth ``state``: signed, short-lived and single-use.

``state`` = base64url(JSON payload) "." base64url(HMAC-SHA256). The payload names a random nonce,
the API key that started the flow (its id), the redirect URI and an expiry. The HMAC key is random,
0600 in ``SMARTSYNC_HOME/api/state.key``. A state is consumed the first time a callback presents
it (a SQLite table of used nonces), so a replayed callback is refused even before its code is tried.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from smartsync_pipeline.api.keys import api_dir
from smartsync_pipeline.home import Home

STATE_SECONDS = 600


class StateError(ValueError):
    """A state that is malformed, not ours, expired or already used (``reason`` says which)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class State:
    nonce: str
    key_id: str | None
    redirect_uri: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StateSigner:
    def __init__(self, home: Home, clock=time.time) -> None:
        self.folder = api_dir(home)
        self._clock = clock
        self._lock = threading.Lock()
        self._key: bytes | None = None

    def _secret(self) -> bytes:
        if self._key is None:
            path = self.folder / "state.key"
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                tmp = path.with_name(f".state.key.{os.getpid()}.{secrets.token_hex(4)}")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    os.write(fd, secrets.token_bytes(32))
                    os.fsync(fd)
                finally:
                    os.close(fd)
                try:
                    os.link(tmp, path)  # never replaces a key another process made first
                except FileExistsError:
                    pass
                finally:
                    tmp.unlink(missing_ok=True)
            self._key = path.read_bytes()
        return self._key

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret(), payload, hashlib.sha256).digest()

    def issue(self, redirect_uri: str, key_id: str | None) -> str:
        doc = {"n": secrets.token_urlsafe(16), "k": key_id, "r": redirect_uri, "e": int(self._clock()) + STATE_SECONDS}
        payload = json.dumps(doc, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, text: str | None) -> State:
        """The state's content, if it is ours and not expired (does not consume it)."""
        if not text or text.count(".") != 1 or len(text) > 2000:
            raise StateError("the state parameter is missing or malformed")
        body, mac = text.split(".")
        try:
            payload, given = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            raise StateError("the state parameter is missing or malformed") from None
        if not hmac.compare_digest(self._mac(payload), given):
            raise StateError("the state parameter was not issued by this server (bad signature)")
        doc = json.loads(payload)
        state = State(doc["n"], doc.get("k"), doc["r"], float(doc["e"]))
        if self._clock() > state.expires:
            raise StateError(f"the sign-in took longer than {STATE_SECONDS // 60} minutes; start again")
        return state

    def consume(self, state: State) -> None:
        """Mark ``state`` used; a second use raises StateError."""
        path: Path = self.folder / "oauth_states.sqlite"
        with self._lock, sqlite3.connect(path, timeout=30) as db:
            db.execute("CREATE TABLE IF NOT EXISTS used (nonce TEXT PRIMARY KEY, expires REAL NOT NULL)")
            db.execute("DELETE FROM used WHERE expires < ?", (self._clock() - STATE_SECONDS,))
            try:
                db.execute("INSERT INTO used (nonce, expires) VALUES (?, ?)", (state.nonce, state.expires))
            except sqlite3.IntegrityError:
                raise StateError(
                    "this sign-in was already completed (the state was used before); start again"
                ) from None
