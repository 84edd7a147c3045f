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
import re
from typing import Any

import orjson

# Where orjson's spelling of a float may differ from Python's repr (see the module docstring).
# A match inside a string value only costs the slower path.
_MAY_DIFFER = re.compile(rb"0\.0000|\de-")
# orjson reads integers past 64 bits as floats; the standard library keeps them exact.
_LONG_INTEGER = re.compile(rb"\d{19}")


def decode(content: bytes | str) -> Any:
    """Parse JSON text (raises ``ValueError`` on bad input, like ``json.loads``)."""
    raw = content.encode() if isinstance(content, str) else content
    if _LONG_INTEGER.search(raw):
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
    if _MAY_DIFFER.search(text) or (b"null" in text and _has_non_finite(obj)):
        return _stdlib(obj)
    return text.decode()


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
