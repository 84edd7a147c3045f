"""Credentials at rest: encrypted, 0600, atomic, and never shown in a repr."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.credentials import (
    CompanyConnection,
    CompanyNotConnected,
    CompanyStore,
    TokenSet,
)
from smartsync_pipeline.qbo.errors import QBOError, ReauthorizationRequired
from smartsync_pipeline.qbo.secrets import ENV_KEY, SecretKeyError, decrypt, encrypt, redact

ACCESS = "access-TOKEN-abcdefghijklmnopqrstuvwxyz-0123456789"
REFRESH = "refresh-TOKEN-zyxwvutsrqponmlkjihgfedcba-9876543210"
SECRET = "client-SECRET-0f9e8d7c6b5a"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def home(smartsync_home: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.delenv(ENV_KEY, raising=False)
    return Home(smartsync_home)


def _conn() -> CompanyConnection:
    return CompanyConnection(
        "9130355", "http://127.0.0.1:1/v3", "http://127.0.0.1:1/token", "client-id", SECRET, "Acme"
    )


def _tokens() -> TokenSet:
    now = datetime.now(UTC)
    return TokenSet(ACCESS, REFRESH, now + timedelta(hours=1), now + timedelta(days=100))


def test_round_trip_encrypted_and_private(home: Home) -> None:
    store = CompanyStore(home)
    store.save(_conn(), _tokens())
    assert store.realms() == ["9130355"]
    assert store.load("9130355") == _conn()
    loaded = store.tokens("9130355").load()
    assert loaded.access_token == ACCESS and loaded.refresh_token == REFRESH
    assert loaded.access_expires_at is not None and loaded.access_expires_at.tzinfo is not None

    files = sorted(home.companies_dir.iterdir())
    assert [f.name for f in files] == ["9130355.json", "9130355.tokens.json"]
    for f in files:
        assert _mode(f) == 0o600
        raw = f.read_bytes()
        for secret in (ACCESS, REFRESH, SECRET, "TOKEN", "SECRET"):
            assert secret.encode() not in raw
    assert _mode(home.key_path) == 0o600
    assert not list(home.companies_dir.glob(".*tmp"))  # no temporary files left behind


def test_key_file_is_created_once_and_reused(home: Home) -> None:
    first = encrypt("hello", home=home)
    key = home.key_path.read_bytes()
    assert decrypt(first, home=home) == "hello"
    assert home.key_path.read_bytes() == key


def test_environment_key_wins_and_wrong_key_fails_cleanly(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_KEY, Fernet.generate_key().decode())
    sealed = encrypt("payload", home=home)
    assert not home.key_path.exists()  # the key lives only in the environment
    monkeypatch.setenv(ENV_KEY, Fernet.generate_key().decode())
    with pytest.raises(SecretKeyError, match="cannot decrypt") as info:
        decrypt(sealed, home=home)
    assert "payload" not in str(info.value)
    monkeypatch.setenv(ENV_KEY, "not-a-key")
    with pytest.raises(SecretKeyError, match="not a valid Fernet key"):
        encrypt("x", home=home)


def test_loose_key_file_permissions_are_tightened(home: Home) -> None:
    encrypt("x", home=home)
    home.key_path.chmod(0o644)
    encrypt("y", home=home)
    assert _mode(home.key_path) == 0o600


def test_token_rewrite_is_atomic_and_keeps_mode(home: Home) -> None:
    store = CompanyStore(home)
    store.save(_conn(), _tokens())
    tokens = store.tokens("9130355")
    newer = TokenSet("access-2-" + "x" * 30, "refresh-2-" + "y" * 30, None, None)
    tokens.save(newer)
    assert tokens.load() == newer
    assert _mode(tokens.path) == 0o600


def test_reprs_never_show_secrets(home: Home) -> None:
    conn, toks = _conn(), _tokens()
    store = CompanyStore(home)
    store.save(conn, toks)
    for text in (repr(conn), str(conn), repr(toks), str(toks), repr(store.tokens("9130355"))):
        for secret in (ACCESS, REFRESH, SECRET):
            assert secret not in text
    assert "sha256:" in repr(toks)


def test_missing_company_and_tokens(home: Home) -> None:
    store = CompanyStore(home)
    with pytest.raises(CompanyNotConnected, match="smartsync connect"):
        store.load("123")
    store.save(_conn())
    with pytest.raises(ReauthorizationRequired, match="9130355"):
        store.tokens("9130355").load()


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "x" * 65, "12 3"])
def test_realm_ids_cannot_escape_the_folder(home: Home, bad: str) -> None:
    with pytest.raises(QBOError):
        CompanyStore(home).tokens(bad)


def test_expiry_logic() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    tokens = TokenSet("a" * 10, "r" * 10, now + timedelta(seconds=90), None)
    assert not tokens.access_expires_within(60, now)
    assert tokens.access_expires_within(120, now)
    assert TokenSet(None, "r" * 10).access_expires_within(60, now)
    built = TokenSet.from_token_response(
        {
            "access_token": "A" * 10,
            "refresh_token": "R" * 10,
            "expires_in": 3600,
            "x_refresh_token_expires_in": 8726400,
        },
        now=now,
    )
    assert built.access_expires_at == now + timedelta(hours=1)
    assert built.refresh_expires_at == now + timedelta(seconds=8726400)
    with pytest.raises(QBOError):
        TokenSet.from_token_response({"access_token": "x"})


def test_redact() -> None:
    secret = "s3cr3t+/value=="
    text = f"token {secret} url refresh_token=abcdefghij&x=1 quoted {redact(secret)} enc s3cr3t%2B%2Fvalue%3D%3D"
    out = redact(text, secret)
    assert secret not in out and "s3cr3t%2B" not in out
    assert "refresh_token=***" in out
    assert redact("Authorization: Bearer eyJabc.def-ghi") == "Authorization: Bearer ***"
    assert redact('{"access_token": "abcdefgh12345"}') == '{"access_token": "***"}'
    assert redact("errorCode=003200 x_refresh_token_expires_in=8726400") == (
        "errorCode=003200 x_refresh_token_expires_in=8726400"
    )
    assert redact("short ab", "ab") == "short ab"  # tiny values are not treated as secrets
