"""Report request parameters as the sandbox reads them: dates, date macros, accounting method,
``summarize_column_by`` and the aging options; bad values answer QBO's validation fault."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from smartsync_pipeline.entities.reports import AS_OF, ReportSpec
from smartsync_pipeline.sandbox import api_errors as errors

# Column layouts the sandbox can lay out (QBO has more: customers, classes, …).
PERIOD_LAYOUTS = ("Total", "Month", "Quarter", "Year")


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _prev_month(day: date) -> date:
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


def _quarter_end(day: date) -> date:
    start = _quarter_start(day)
    return _month_end(date(start.year, start.month + 2, 1))


_MACROS: dict[str, Callable[[date], tuple[date, date]]] = {
    "today": lambda t: (t, t),
    "yesterday": lambda t: (t - timedelta(days=1), t - timedelta(days=1)),
    "this week": lambda t: (t - timedelta(days=(t.weekday() + 1) % 7), t - timedelta(days=(t.weekday() + 1) % 7) + timedelta(days=6)),  # noqa: E501
    "this week-to-date": lambda t: (t - timedelta(days=(t.weekday() + 1) % 7), t),
    "this month": lambda t: (t.replace(day=1), _month_end(t)),
    "this month-to-date": lambda t: (t.replace(day=1), t),
    "last month": lambda t: (_prev_month(t), _month_end(_prev_month(t))),
    "last month-to-date": lambda t: (_prev_month(t), min(_month_end(_prev_month(t)), _prev_month(t).replace(day=min(t.day, 28)))),  # noqa: E501
    "this fiscal quarter": lambda t: (_quarter_start(t), _quarter_end(t)),
    "this fiscal quarter-to-date": lambda t: (_quarter_start(t), t),
    "last fiscal quarter": lambda t: (_quarter_start(_quarter_start(t) - timedelta(days=1)), _quarter_start(t) - timedelta(days=1)),  # noqa: E501
    "this fiscal year": lambda t: (date(t.year, 1, 1), date(t.year, 12, 31)),
    "this fiscal year-to-date": lambda t: (date(t.year, 1, 1), t),
    "last fiscal year": lambda t: (date(t.year - 1, 1, 1), date(t.year - 1, 12, 31)),
    "last fiscal year-to-date": lambda t: (date(t.year - 1, 1, 1), t.replace(year=t.year - 1) if not (t.month == 2 and t.day == 29) else date(t.year - 1, 2, 28)),  # noqa: E501
}  # fmt: skip


def _bad(element: str, detail: str) -> errors.ApiFault:
    return errors.validation(errors.INVALID_VALUE, "Invalid report parameter", detail, element)


def _date(params: Mapping[str, str], name: str) -> date | None:
    text = params.get(name)
    if text in (None, ""):
        return None
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        raise _bad(name, f"{name} must be a date YYYY-MM-DD, not {text!r}") from None


def _positive(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if text in (None, ""):
        return default
    if not str(text).isdigit() or not 1 <= int(text) <= 999:
        raise _bad(name, f"{name} must be a whole number from 1 to 999, not {text!r}")
    return int(text)


@dataclass(frozen=True)
class ReportParams:
    start: date
    end: date
    date_macro: str | None
    summarize_by: str
    aging_period: int
    num_periods: int
    columns: tuple[str, ...]


def read_params(spec: ReportSpec, params: Mapping[str, str], today: date) -> ReportParams:
    """The request's parameters with QBO's defaults: this fiscal year-to-date for ranges, today for
    as-of reports, accrual basis, one Total column."""
    method = params.get("accounting_method", "Accrual")
    if method.lower() == "cash":
        raise _bad("accounting_method", "the sandbox computes reports on the Accrual basis only")
    if method.lower() != "accrual":
        raise _bad("accounting_method", f"accounting_method must be Cash or Accrual, not {method!r}")
    summarize = params.get("summarize_column_by") or "Total"
    layout = next((p for p in PERIOD_LAYOUTS if p.lower() == summarize.lower()), None)
    if layout is None:
        raise _bad("summarize_column_by", f"summarize_column_by {summarize!r} is not supported by the sandbox "
                                          f"(it lays out {', '.join(PERIOD_LAYOUTS)})")  # fmt: skip
    macro = params.get("date_macro")
    start, end = _date(params, "start_date"), _date(params, "end_date")
    as_of = _date(params, "report_date")
    if macro:
        window = _MACROS.get(macro.strip().lower())
        if window is None:
            raise _bad("date_macro", f"unknown date_macro {macro!r}")
        start, end = window(today)
        if spec.dates == AS_OF:
            as_of = end
    if spec.dates == AS_OF:
        end = as_of or end or today
        start = start or date(end.year, 1, 1)
    else:
        if start is None and end is None:
            macro = macro or "This Fiscal Year-to-date"
            start, end = _MACROS[macro.lower()](today)
        end = end or today
        start = start or date(end.year, 1, 1)
    if start > end:
        raise _bad("start_date", f"start_date {start} is after end_date {end}")
    columns = tuple(c.strip() for c in params.get("columns", "").split(",") if c.strip())
    return ReportParams(
        start=start,
        end=end,
        date_macro=macro,
        summarize_by=layout,
        aging_period=_positive(params, "aging_period", 30),
        num_periods=_positive(params, "num_periods", 4),
        columns=columns,
    )


def column_periods(start: date, end: date, layout: str) -> list[tuple[str, date, date]]:
    """(title, first day, last day) of each period column, clipped to ``start..end``."""
    if layout == "Total":
        return [("Total", start, end)]
    out: list[tuple[str, date, date]] = []
    cursor = start
    while cursor <= end:
        if layout == "Month":
            period_end, title = _month_end(cursor), cursor.strftime("%b %Y")
        elif layout == "Quarter":
            period_end = _quarter_end(cursor)
            title = f"Q{(cursor.month - 1) // 3 + 1} {cursor.year}"
        else:
            period_end, title = date(cursor.year, 12, 31), str(cursor.year)
        period_end = min(period_end, end)
        out.append((title, cursor, period_end))
        cursor = period_end + timedelta(days=1)
    return out
