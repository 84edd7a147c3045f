"""JSON text in and out of the sync path, fast and byte-for-byte the standard library's output.

A backfill decodes every QBO page and re-encodes every object in canonical form (the mirror's ``raw``
column, which the change log hashes). With the standard library those two steps were ~40 % of a full
sync's client time; orjson does them several times faster. The canonical text must not change from one
release to the next (a different spelling of the same object would look like an edit), so
``canonical_json`` falls back to the standard library wherever orjson spells a value differently:
floats below 1e-4 (orjson writes ``0.00001234`` and ``1e-9`` where Python writes ``1.234e-05`` and
``1e-09``), integers beyond 64 bits, non-finite floats and non-string keys; ``decode`` likewise
reads long integers and NaN literals with the standard library.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import orjson

# The checks below scan every page and every object of a backfill, so they use bytes methods (C loops)
# rather than regular expressions (which cost more than decoding the JSON itself).
# Digits to "0", everything else to " ": a run of 19 zeros is an integer orjson may not read exactly.
_DIGITS_ONLY = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_INTEGER = b"0" * 19


def _has_long_integer(raw: bytes) -> bool:
    """orjson reads integers past 64 bits as floats; the standard library keeps them exact. (A long
    digit run inside a string value only costs the slower path.)"""
    return _LONG_INTEGER in raw.translate(_DIGITS_ONLY)


def _may_differ(text: bytes) -> bool:
    """Where orjson's spelling of a float may differ from Python's repr (see the module docstring):
    ``0.0000`` or a digit followed by ``e-``. A match inside a string value only costs the slower path."""
    if b"0.0000" in text:
        return True
    at = text.find(b"e-", 1)
    while at != -1:
        if 48 <= text[at - 1] <= 57:
            return True
        at = text.find(b"e-", at + 1)
    return False


def decode(content: bytes | str) -> Any:
    """Parse JSON text (raises ``ValueError`` on bad input, like ``json.loads``)."""
    raw = content.encode() if isinstance(content, str) else content
    if _has_long_integer(raw):
        return json.loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson refuses what the standard library accepts: NaN/Infinity literals, integers past 64 bits.
        return json.loads(content)


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces, UTF-8 kept: the one text of an object that the change log hashes."""
    try:
        text = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return _stdlib(obj)
    if _may_differ(text) or (b"null" in text and _has_non_finite(obj)):
        return _stdlib(obj)
    return text.decode()


def canonical_texts(objects: Sequence[Any]) -> tuple[list[bytes], bytes]:
    """``canonical_json`` of each object as UTF-8 bytes, and all of them joined (a page's ``raw``
    column is built from the joined bytes without a Python string per object). The spellings orjson
    may get wrong are looked for once in the joined text: on a page without any, no object is checked
    on its own (a match anywhere only sends the objects that hold one to the slower path)."""
    try:
        texts = [orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) for obj in objects]
    except (TypeError, orjson.JSONEncodeError):
        texts = [canonical_json(obj).encode() for obj in objects]
        return texts, b"".join(texts)
    joined = b"".join(texts)
    if _may_differ(joined) or b"null" in joined:
        slow = [i for i, t in enumerate(texts) if _may_differ(t) or (b"null" in t and _has_non_finite(objects[i]))]
        for i in slow:
            texts[i] = _stdlib(objects[i]).encode()
        if slow:
            joined = b"".join(texts)
    return texts, joined


def _stdlib(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _has_non_finite(value: Any) -> bool:
    """orjson writes NaN and infinities as null; the standard library keeps them (as before)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(v) for v in value)
    return False
