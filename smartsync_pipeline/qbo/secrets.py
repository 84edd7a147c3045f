"""Credentials at rest are Fernet-encrypted with a key kept apart from the data.

The key comes from ``SMARTSYNC_SECRET_KEY`` (a urlsafe-base64 Fernet key, e.g. from a secret manager)
or, when unset, from ``Home.key_path``: a 0600 file created on first use, and only then: while any
sealed credentials exist a missing key is an error that says how to recover, never a new key (a new
key would make the stored refresh tokens unreadable for good). Copying the companies folder without
the key therefore leaks nothing. ``redact`` is what every log line and error message goes
through before it can show a token.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
import urllib.parse
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.errors import QBOError

ENV_KEY = "SMARTSYNC_SECRET_KEY"
MASK = "***"

_log = logging.getLogger("smartsync.qbo.secrets")
_key_lock = threading.Lock()


class SecretKeyError(QBOError):
    """The encryption key is missing, malformed, unreadable, or not the one the data was written with."""


def _home(home: Home | None) -> Home:
    return home if home is not None else Home.from_env()


def _fernet_from(raw: bytes, origin: str) -> Fernet:
    try:
        return Fernet(raw.strip())
    except (ValueError, TypeError):
        raise SecretKeyError(
            f"{origin} is not a valid Fernet key (32 url-safe base64-encoded bytes); "
            "generate one with `python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`"
        ) from None


def _read_key_file(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        _log.warning("key file %s was readable by others (mode %o); tightening to 0600", path, mode)
        os.chmod(path, 0o600)
    return path.read_bytes()


def _create_key_file(path: Path) -> None:
    """Write a fresh key to ``path`` atomically; if another process won the race, keep its key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, Fernet.generate_key())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic and fails if the key already exists: never overwrite a key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


# Files under SMARTSYNC_HOME that hold data sealed with the key (besides the companies folder).
VERIFIER_FILE = "webhook_verifier"


def sealed_credentials(home: Home) -> list[Path]:
    """Every file sealed with the home's key: connection and token files, the webhook verifier."""
    found = sorted(home.companies_dir.glob("*.json")) if home.companies_dir.is_dir() else []
    verifier = home.root / VERIFIER_FILE
    return [*found, verifier] if verifier.exists() else found


def _missing_key(path: Path, sealed: list[Path]) -> SecretKeyError:
    return SecretKeyError(
        f"the encryption key {path} is missing, but {len(sealed)} file(s) sealed with it exist "
        f"(e.g. {sealed[0]}); restore the key from a backup (or set {ENV_KEY} to it). If it is lost, move "
        f"{sealed[0].parent} aside and connect every company again: no new key is made while sealed "
        "credentials exist"
    )


def fernet(home: Home | None = None, *, create: bool = False) -> Fernet:
    """The Fernet for this home: from the environment, else from the key file, which is created
    (``create``) only when no sealed credentials exist yet."""
    env = os.environ.get(ENV_KEY)
    if env:
        return _fernet_from(env.encode(), f"environment variable {ENV_KEY}")
    h = _home(home)
    path = h.key_path
    with _key_lock:
        if not path.exists():
            sealed = sealed_credentials(h)
            if sealed:
                raise _missing_key(path, sealed)
            if not create:
                raise SecretKeyError(f"the encryption key {path} is missing and nothing was ever sealed with it")
            _create_key_file(path)
        try:
            raw = _read_key_file(path)
        except OSError as exc:
            raise SecretKeyError(f"cannot read the key file {path}: {exc.strerror}") from None
    return _fernet_from(raw, f"key file {path}")


def encrypt(plaintext: str, *, home: Home | None = None) -> str:
    """Encrypt ``plaintext`` with the home's key; the result is ASCII, safe to store in JSON."""
    return fernet(home, create=True).encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(ciphertext: str, *, home: Home | None = None) -> str:
    """Decrypt what :func:`encrypt` produced; a wrong key or altered data raises ``SecretKeyError``."""
    try:
        return fernet(home).decrypt(ciphertext.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError, ValueError):
        raise SecretKeyError(
            f"cannot decrypt stored credentials: the key ({ENV_KEY} or the key file) is not the one "
            "they were written with, or the data was altered"
        ) from None


_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_TOKEN_FIELD = re.compile(r"(?i)\b((?:access|refresh|id)_token|client_secret)([\"']?\s*[:=]\s*[\"']?)([^\"'&\s,}]+)")


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every given secret (also URL-encoded) and any bearer/basic credential or
    ``*_token=...`` pair replaced by ``***``. Secrets shorter than 6 characters are ignored, so a
    stray empty or tiny value cannot blank out the whole message."""
    out = text
    for secret in sorted((s for s in secrets if s and len(s) >= 6), key=len, reverse=True):
        for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
            out = out.replace(form, MASK)
    out = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", out)
    return _TOKEN_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", out)


__all__ = [
    "ENV_KEY",
    "MASK",
    "VERIFIER_FILE",
    "SecretKeyError",
    "decrypt",
    "encrypt",
    "fernet",
    "redact",
    "sealed_credentials",
]
