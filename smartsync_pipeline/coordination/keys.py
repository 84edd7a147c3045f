"""64-bit PostgreSQL advisory-lock keys from readable names (``<namespace>/<realm>/sync``)."""

from __future__ import annotations

import hashlib


def advisory_key(name: str) -> int:
    """A signed 64-bit key (PostgreSQL's ``bigint``) derived from ``name``; stable across hosts."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def lock_columns(key: int) -> tuple[int, int]:
    """``(classid, objid)`` as ``pg_locks`` shows a bigint advisory key (high and low 32 bits)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF
