"""Freshness as HTTP caching (RFC 9111, RFC 5861).

A request's ``Cache-Control: max-age=N`` is the SmartReader's ``max_age`` (``max-age=0`` or
``no-cache``: live, refresh first); ``stale-if-error=N`` narrows how old a stale answer the client
accepts when QBO fails. A response says how old its data is (``Age``, ``Last-Modified``), how long
it stays fresh (``Cache-Control: private, max-age=<remaining>, stale-if-error=<bound>``), carries a
weak ``ETag`` over the data it was computed from, and flags stale-if-error answers in a header
(``Smartsync-Stale``) as well as in the body.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from smartsync_pipeline.api.problems import bad_parameter
from smartsync_pipeline.entities import find_entity

MAX_AGE_LIMIT_SECONDS = 3650 * 86400
STALE_HEADER = "Smartsync-Stale"


@dataclass(frozen=True)
class RequestFreshness:
    """What the client allowed: ``max_age`` seconds (None: each entity's window), ``stale_if_error``
    seconds (None: the server's bound)."""

    max_age: float | None = None
    stale_if_error: float | None = None


def _seconds(name: str, value: str | None) -> float:
    text = (value or "").strip().strip('"')
    if not text.isascii() or not text.isdigit():
        raise bad_parameter("Cache-Control", f"{name} must be a whole number of seconds, got {value!r}")
    number = int(text[:12]) if len(text) <= 12 else MAX_AGE_LIMIT_SECONDS + 1
    if number > MAX_AGE_LIMIT_SECONDS:
        raise bad_parameter("Cache-Control", f"{name} must be at most {MAX_AGE_LIMIT_SECONDS} seconds (10 years)")
    return float(number)


def parse_request_cache_control(header: str | None) -> RequestFreshness:
    """The directives we act on; unknown ones are ignored, as RFC 9111 asks."""
    if not header:
        return RequestFreshness()
    max_age: float | None = None
    stale_if_error: float | None = None
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        name = name.strip().lower()
        if name == "max-age":
            max_age = _seconds("max-age", value)
        elif name == "no-cache":
            max_age = 0.0
        elif name == "stale-if-error":
            stale_if_error = _seconds("stale-if-error", value)
    return RequestFreshness(max_age, stale_if_error)


@dataclass(frozen=True)
class Freshness:
    """The freshness of one answer, from the provenance of every read behind it."""

    as_of: datetime | None  # the oldest data in the answer
    age_seconds: float | None
    window_seconds: float  # how long such data counts as fresh (the entities' fail windows)
    stale: bool
    stale_if_error: bool
    reason: str
    identity: str  # what the data was computed from (snapshot content), for the ETag

    @classmethod
    def of(cls, provenances: Sequence[Any], identity: str) -> Freshness:
        as_ofs = [p.as_of for p in provenances if p.as_of is not None]
        ages = [p.age_seconds for p in provenances if p.age_seconds is not None]
        windows = []
        for p in provenances:
            spec = find_entity(p.entity)
            windows.append(spec.freshness.fail.total_seconds() if spec else 0.0)
        reasons = [p.reason for p in provenances if p.reason]
        return cls(
            as_of=min(as_ofs) if as_ofs else None,
            age_seconds=max(ages) if ages else None,
            window_seconds=min(windows) if windows else 0.0,
            stale=any(p.stale for p in provenances),
            stale_if_error=any(p.stale and "stale-if-error" in p.reason for p in provenances),
            reason="; ".join(dict.fromkeys(reasons)),
            identity=identity,
        )


def weak_etag(*parts: Any) -> str:
    """A weak validator: the same parts give the same tag (the answer's data is the same), whatever
    the age of that data when it is served."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]
    return f'W/"{digest}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of ``If-None-Match`` against ``etag``."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    ours = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == ours for tag in if_none_match.split(","))


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def response_headers(fresh: Freshness, etag: str, stale_if_error_bound: float) -> dict[str, str]:
    """``Age``, ``Last-Modified``, ``ETag``, ``Cache-Control`` (and the stale flag)."""
    age = max(0, math.floor(fresh.age_seconds or 0))
    remaining = 0 if fresh.stale else max(0, math.floor(fresh.window_seconds) - age)
    headers = {
        "ETag": etag,
        "Age": str(age),
        "Cache-Control": f"private, max-age={remaining}, stale-if-error={math.floor(stale_if_error_bound)}",
        "Vary": "Authorization, Accept",
    }
    if fresh.as_of is not None:
        headers["Last-Modified"] = http_date(fresh.as_of)
    if fresh.stale_if_error:
        headers[STALE_HEADER] = "stale-if-error"
    elif fresh.stale:
        headers[STALE_HEADER] = "stale"
    return headers


def not_modified_headers(headers: dict[str, str]) -> dict[str, str]:
    """What a 304 repeats (RFC 9110 15.4.5)."""
    keep = ("ETag", "Age", "Cache-Control", "Vary", "Last-Modified", STALE_HEADER)
    return {k: v for k, v in headers.items() if k in keep}


def identity_of(parts: Iterable[Any]) -> str:
    return "|".join(str(p) for p in parts)
