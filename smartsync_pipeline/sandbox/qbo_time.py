"""Times and dates the way QBO writes them, in the sandbox company's time zone (fixed UTC-08:00).

Times are seconds since the epoch inside the sandbox; they become ISO-8601 strings with an offset only
on the wire, and dates are ``YYYY-MM-DD`` in company time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache

COMPANY_UTC_OFFSET = -8 * 3600
COMPANY_TZ = timezone(timedelta(seconds=COMPANY_UTC_OFFSET))
_EPOCH_DAY = date(1970, 1, 1)


class TimeFormatError(ValueError):
    """A date or date-time literal that cannot be read."""


def iso(epoch: float) -> str:
    """``2026-11-26T10:00:00-08:00`` (whole seconds, like QBO's MetaData). Hot when pages are
    rendered, hence plain arithmetic on a cached date instead of a datetime per call."""
    local = int(epoch) + COMPANY_UTC_OFFSET
    day, seconds = divmod(local, 86_400)
    hours, rest = divmod(seconds, 3600)
    return f"{day_text(day)}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}-08:00"


def iso_millis(epoch: float) -> str:
    """The response ``time`` field: ``2026-11-26T10:00:00.123-08:00``."""
    return datetime.fromtimestamp(epoch, COMPANY_TZ).isoformat(timespec="milliseconds")


def iso_utc_millis(epoch: float) -> str:
    """Webhook ``lastUpdated``: ``2026-11-26T18:00:00.000Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_time(text: str) -> float:
    """An ISO date-time (offset or ``Z``; none means company time) or a plain date → epoch seconds."""
    raw = text.strip()
    if not raw:
        raise TimeFormatError("empty date-time")
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise TimeFormatError(f"not an ISO-8601 date-time: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=COMPANY_TZ)
    return value.timestamp()


def day_number(epoch: float) -> int:
    """Days since 1970-01-01 of the company-time date of ``epoch``."""
    return (datetime.fromtimestamp(int(epoch), COMPANY_TZ).date() - _EPOCH_DAY).days


@lru_cache(maxsize=8192)
def day_text(day: int) -> str:
    """``YYYY-MM-DD`` for a day number."""
    return (_EPOCH_DAY + timedelta(days=int(day))).isoformat()


def parse_day(text: str) -> int:
    """``YYYY-MM-DD`` (a date-time is cut to its date) → day number."""
    raw = text.strip()[:10]
    try:
        return (date.fromisoformat(raw) - _EPOCH_DAY).days
    except ValueError:
        raise TimeFormatError(f"not a date (YYYY-MM-DD): {text!r}") from None


def company_day_start(day: int) -> float:
    """Epoch seconds of midnight (company time) of a day number."""
    d = _EPOCH_DAY + timedelta(days=int(day))
    return datetime(d.year, d.month, d.day, tzinfo=COMPANY_TZ).timestamp()
