"""Deterministic per-row randomness: the same 64-bit mix in numpy (bulk build) and plain Python (render).

Base objects are never stored as dicts; details such as line splits are derived again from
``(key, row, salt)`` when an object is served, and the builder uses the vector form to compute the
totals those details add up to. Both forms must agree bit for bit (a test checks it).
"""

from __future__ import annotations

import numpy as np

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def mix(key: int, row: int, salt: int) -> int:
    """A well-spread 64-bit value for one (key, row, salt)."""
    z = (key * _GOLDEN + row * 0xD1B54A32D192ED03 + salt * 0x8CB92BA72F3D8DD7) & _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def mix_array(key: int, rows: np.ndarray, salt: int) -> np.ndarray:
    """``mix`` for many rows at once (uint64 arithmetic wraps exactly like the masked Python ints)."""
    r = rows.astype(np.uint64)
    with np.errstate(over="ignore"):
        base = np.uint64((key * _GOLDEN + salt * 0x8CB92BA72F3D8DD7) & _MASK)
        z = base + r * np.uint64(0xD1B54A32D192ED03)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
        return z ^ (z >> np.uint64(31))


def pick(key: int, row: int, salt: int, n: int) -> int:
    """An integer in ``[0, n)``."""
    return mix(key, row, salt) % n


def pick_array(key: int, rows: np.ndarray, salt: int, n: int) -> np.ndarray:
    return (mix_array(key, rows, salt) % np.uint64(n)).astype(np.int64)
