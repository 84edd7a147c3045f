"""Run QBO reports (``GET /v3/company/{realm}/reports/{name}``) completely, or fail saying why.

Reports do not page. Intuit advises short ranges (about six months) and cuts a report that passes its
cell limit with a notice row instead of an error. So a run (1) validates the parameters against the
report registry before sending anything, (2) cuts a long range into calendar periods of at most the
report's ``max_months``, (3) asks for each period through the client's own request machinery
(limiter, auth, retries, faults), and (4) when an answer is truncated, splits that period again —
months, then halves by days — down to one day. A truncated answer that cannot be split further raises
``ReportTruncatedError``: a report is never silently cut. ``NoReportData`` is a valid, empty part.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from smartsync_pipeline.entities.reports import (
    ACCOUNTING_METHODS,
    AS_OF,
    DATE_MACROS,
    NO_SPLIT,
    QUARTER,
    RANGE,
    SUMMARIZE_COLUMN_BY,
    ReportSpec,
    UnknownReportError,
    report,
)
from smartsync_pipeline.qbo.errors import QueryError
from smartsync_pipeline.qbo.report_document import (
    ReportCell,
    ReportDocument,
    ReportTruncatedError,
    parse_report,
)

log = logging.getLogger("smartsync.qbo.reports")

Period = tuple[date, date]
_ENUMS = {
    "summarize_column_by": SUMMARIZE_COLUMN_BY,
    "accounting_method": ACCOUNTING_METHODS,
    "date_macro": DATE_MACROS,
}
_PERIOD_COLUMNS = ("Month", "Week", "Days", "Quarter", "Year")
MAX_REQUESTS = 400  # one run never asks more than this (a runaway split would eat QBO's meter)


def _text(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_date(name: str, value: Any) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise QueryError(f"{name} must be a date YYYY-MM-DD, not {value!r}") from None


def report_parameters(spec: ReportSpec, params: Mapping[str, Any]) -> dict[str, str]:
    """The query parameters of one request, validated: the report's defaults, then ``params``.
    Unknown names and values outside QBO's enumerations are refused before anything is sent."""
    out = dict(spec.defaults)
    for name, value in params.items():
        if value is None:
            continue
        if name not in spec.parameters:
            raise QueryError(f"report {spec.name} takes no parameter {name!r}; it takes {', '.join(spec.parameters)}")
        text = _text(value)
        allowed = _ENUMS.get(name)
        if allowed is not None:
            match = next((a for a in allowed if a.lower() == text.lower()), None)
            if match is None:
                raise QueryError(f"{name} must be one of {', '.join(allowed)}, not {text!r}")
            text = match
        if name in ("start_date", "end_date", "report_date"):
            text = _as_date(name, text).isoformat()
        if name in ("aging_period", "num_periods") and (not text.isdigit() or int(text) < 1):
            raise QueryError(f"{name} must be a positive whole number, not {text!r}")
        out[name] = text
    if "start_date" in out and "end_date" in out and out["start_date"] > out["end_date"]:
        raise QueryError(f"start_date {out['start_date']} is after end_date {out['end_date']}")
    if "date_macro" in out and any(k in out for k in ("start_date", "end_date", "report_date")):
        raise QueryError("give either date_macro or explicit dates, not both")
    return out


# -- periods ----------------------------------------------------------------------------------------


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def split_periods(start: date, end: date, *, unit: str = "month", max_units: int = 1) -> list[Period]:
    """``start..end`` cut at calendar boundaries into pieces of at most ``max_units`` months (or
    quarters when ``unit == "quarter"``); the first and last piece may be partial."""
    if start > end:
        raise QueryError(f"start {start} is after end {end}")
    months = 3 * max_units if unit == QUARTER else max_units
    if months < 1:
        return [(start, end)]
    pieces: list[Period] = []
    cursor = start
    while cursor <= end:
        if unit == QUARTER:
            first_of_quarter = date(cursor.year, 3 * ((cursor.month - 1) // 3) + 1, 1)
            boundary = _add_months(first_of_quarter, months)
        else:
            boundary = _add_months(cursor.replace(day=1), months)
        piece_end = min(end, boundary - timedelta(days=1))
        pieces.append((cursor, piece_end))
        cursor = piece_end + timedelta(days=1)
    return pieces


def narrower(period: Period) -> list[Period]:
    """How to split a period whose report came back truncated: into calendar months when it spans
    more than one, else into two halves by days; a single day cannot be split (empty list)."""
    start, end = period
    if (start.year, start.month) != (end.year, end.month):
        return split_periods(start, end, unit="month", max_units=1)
    if start == end:
        return []
    middle = start + timedelta(days=(end - start).days // 2)
    return [(start, middle), (middle + timedelta(days=1), end)]


# -- results ----------------------------------------------------------------------------------------


@dataclass
class ReportPart:
    """One request's document and the period it covers (None for a whole as-of report)."""

    period: Period | None
    params: dict[str, str]
    document: ReportDocument


@dataclass
class ReportResult:
    """A complete report: the parts it was asked in, in period order."""

    spec: ReportSpec
    realm_id: str
    params: dict[str, str]  # what the caller asked (before splitting)
    parts: list[ReportPart] = field(default_factory=list)
    requests: int = 0
    splits: int = 0  # how many truncated answers were split again

    @property
    def no_data(self) -> bool:
        return all(p.document.no_data or not p.document.cells for p in self.parts)

    def cells(self) -> Iterator[tuple[ReportPart, ReportCell]]:
        for part in self.parts:
            for cell in part.document.cells:
                yield part, cell

    @property
    def cell_count(self) -> int:
        return sum(len(p.document.cells) for p in self.parts)

    def grand_totals(self) -> dict[str, dict[str, Decimal]]:
        """Grand totals of a single-part report (``{group: {column: amount}}``)."""
        if len(self.parts) != 1:
            raise ValueError("grand totals of a split report belong to its parts; read each part's document")
        return self.parts[0].document.grand_totals()

    def content_hash(self) -> str:
        """SHA-256 of what the report says (header facts and every cell), not of when it was run:
        the same books give the same hash, a changed number gives another."""
        digest = hashlib.sha256()
        digest.update(f"{self.spec.name}\x1f{_canonical(self.params)}\x1e".encode())
        for part in self.parts:
            doc = part.document
            columns = [(c.key, c.title, c.col_type, c.start_date, c.end_date) for c in doc.columns]
            head = (part.period, doc.basis, doc.currency, doc.summarize_by, doc.start_period, doc.end_period,
                    doc.no_data, columns)  # fmt: skip
            digest.update(repr(head).encode() + b"\x1e")
            for cell in doc.cells:
                line = (cell.row_number, cell.row_type, cell.section_path, cell.group, cell.label, cell.row_id,
                        cell.column.key, cell.value, cell.value_id)  # fmt: skip
                digest.update(repr(line).encode() + b"\x1e")
        return digest.hexdigest()


def _canonical(params: Mapping[str, str]) -> str:
    return "&".join(f"{k}={params[k]}" for k in sorted(params))


# -- the runner -------------------------------------------------------------------------------------


class ReportRunner:
    """Runs registry reports for one company through a ``QBOClient`` (its limiter, auth and retries)."""

    def __init__(self, client: Any, *, max_requests: int = MAX_REQUESTS) -> None:
        self.client = client
        self.max_requests = max_requests

    @property
    def realm_id(self) -> str:
        return str(self.client.realm_id)

    def fetch(self, spec: ReportSpec, params: Mapping[str, str]) -> ReportDocument:
        """One request, parsed (truncated or not: the caller decides)."""
        # The client's one logical-call path: rate limiter, token refresh, retries, fault parsing.
        doc = self.client._call("GET", f"reports/{spec.name}", params=dict(params), idempotent=True)
        return parse_report(doc, expected_name=spec.name, grand_total_groups=spec.grand_total_groups)

    def run(
        self,
        name: str | ReportSpec,
        *,
        start: date | str | None = None,
        end: date | str | None = None,
        **params: Any,
    ) -> ReportResult:
        """The whole report. RANGE reports take ``start``/``end`` (or ``date_macro=``); AS_OF reports
        take ``end`` (their as-of date: ``end_date`` or ``report_date``) or ``report_date=``."""
        try:
            spec = name if isinstance(name, ReportSpec) else report(name)
        except UnknownReportError as exc:
            raise QueryError(str(exc)) from None
        if spec.dates == RANGE:
            if start is not None:
                params["start_date"] = start
            if end is not None:
                params["end_date"] = end
        else:
            if start is not None and "start_date" in spec.parameters and spec.date_parameter != "report_date":
                params["start_date"] = start  # a balance sheet's first column; aging has no start
            if end is not None:
                params[spec.date_parameter] = end
        asked = report_parameters(spec, params)
        result = ReportResult(spec, self.realm_id, asked)
        periods = self._periods(spec, asked)
        if periods is None:  # no explicit range: ask once, split only if QBO cuts it
            doc = self._ask(result, asked)
            if not doc.truncated:
                result.parts.append(ReportPart(None, asked, doc))
                return result
            periods = self._resolved_range(spec, asked, doc)
        for period in periods:
            self._run_period(result, spec, asked, period)
        return result

    @staticmethod
    def splittable(spec: ReportSpec, asked: Mapping[str, str]) -> bool:
        """Whether cutting the range keeps the report's meaning: always for RANGE reports; for AS_OF
        reports only when they have one column per period (a balance sheet by month)."""
        if spec.split == NO_SPLIT:
            return False
        return spec.dates != AS_OF or asked.get("summarize_column_by", "Total") in _PERIOD_COLUMNS

    def _periods(self, spec: ReportSpec, asked: dict[str, str]) -> list[Period] | None:
        if "start_date" not in asked or "end_date" not in asked or not self.splittable(spec, asked):
            return None
        start, end = date.fromisoformat(asked["start_date"]), date.fromisoformat(asked["end_date"])
        return split_periods(start, end, unit=spec.split, max_units=spec.max_months)

    def _resolved_range(self, spec: ReportSpec, asked: dict[str, str], doc: ReportDocument) -> list[Period]:
        """Where QBO resolved a date macro (or default range) to dates, a truncated answer can be split."""
        if not self.splittable(spec, asked) or doc.start_period is None or doc.end_period is None:
            raise ReportTruncatedError(
                f"QBO cut report {spec.name} short ({doc.truncation_reason!r}) and it has no date range "
                "to split; narrow it with filters (vendor, customer, account)"
            )
        return [(doc.start_period, doc.end_period)]

    def _ask(self, result: ReportResult, params: dict[str, str]) -> ReportDocument:
        if result.requests >= self.max_requests:
            raise ReportTruncatedError(
                f"report {result.spec.name} needed more than {self.max_requests} requests; refusing to go on"
            )
        result.requests += 1
        return self.fetch(result.spec, params)

    def _run_period(self, result: ReportResult, spec: ReportSpec, asked: dict[str, str], period: Period) -> None:
        params = {k: v for k, v in asked.items() if k != "date_macro"}
        params["start_date"], params["end_date"] = period[0].isoformat(), period[1].isoformat()
        doc = self._ask(result, params)
        if not doc.truncated:
            result.parts.append(ReportPart(period, params, doc))
            return
        pieces = narrower(period) if self.splittable(spec, asked) else []
        if not pieces:
            raise ReportTruncatedError(
                f"QBO cut report {spec.name} for {period[0]}..{period[1]} short ({doc.truncation_reason!r}) "
                "and the range cannot be split further"
            )
        result.splits += 1
        log.info(
            "realm %s: report %s %s..%s truncated by QBO; asking again in %d pieces",
            self.realm_id, spec.name, period[0], period[1], len(pieces),
        )  # fmt: skip
        for piece in pieces:
            self._run_period(result, spec, asked, piece)


def run_report(client: Any, name: str, **kwargs: Any) -> ReportResult:
    """``ReportRunner(client).run(name, **kwargs)``."""
    return ReportRunner(client).run(name, **kwargs)


__all__ = [
    "ReportPart",
    "ReportResult",
    "ReportRunner",
    "narrower",
    "report_parameters",
    "run_report",
    "split_periods",
]
