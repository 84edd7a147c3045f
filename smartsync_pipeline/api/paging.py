"""Cursor pagination: opaque cursors (the sort key of the last item), ``Link: <…>; rel="next"``.

A keyset cursor names *where* the last page ended, not how many rows were skipped, so rows that
appear or disappear between two requests never shift a page."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
from starlette.datastructures import URL

from smartsync_pipeline.api.problems import bad_parameter

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def encode_cursor(key: Sequence[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(text: str | None, length: int) -> tuple[str, ...] | None:
    if text is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad_parameter("cursor", "not a cursor this API gave out") from None
    if not isinstance(key, list) or len(key) != length or not all(isinstance(k, str) for k in key):
        raise bad_parameter("cursor", "not a cursor this API gave out")
    return tuple(key)


def keyset_page(
    rows: pd.DataFrame, keys: list[pd.Series], after: tuple[str, ...] | None, limit: int
) -> tuple[pd.DataFrame, str | None]:
    """Rows sorted by ``keys`` (string columns aligned with ``rows``), the page after ``after``, and the
    cursor of the following page (None on the last page)."""
    if not len(rows):
        return rows, None
    tuples = list(zip(*(k.tolist() for k in keys), strict=True))
    order = sorted(range(len(tuples)), key=tuples.__getitem__)
    ordered = [tuples[i] for i in order]
    start = bisect.bisect_right(ordered, after) if after is not None else 0
    chosen = order[start : start + limit]
    page = rows.iloc[chosen]
    more = start + limit < len(ordered)
    return page, encode_cursor(ordered[start + limit - 1]) if more else None


def next_link(url: URL, **params: Any) -> str:
    return f'<{url.include_query_params(**params)}>; rel="next"'
