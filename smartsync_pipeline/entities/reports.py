"""The one registry of QBO reports (``GET /reports/{name}``), declared as data.

Reports are not entities: they have no Id, SyncToken or CDC. Each is a (company x report x period)
document. The client (parameter validation, period splitting), the sandbox (which reports it
computes), the mirror (tidy tables and analyst views), Dagster (one asset per report, its partitions
and freshness) and the tests all iterate over ``REPORTS``. Adding a report is one ``ReportSpec`` here
plus its sandbox builder. See ARCHITECTURE.md, "Reports".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from smartsync_pipeline.entities.registry import Freshness

# How a report's dates work.
RANGE = "range"  # start_date .. end_date (ProfitAndLoss, CashFlow, GeneralLedger, TransactionList)
AS_OF = "as_of"  # balances on one date: BalanceSheet (end_date), aging reports (report_date)

# How a long range is cut before asking (Intuit: keep a request to about six months) and how a
# truncated answer is cut further. "month" cuts at calendar months, then halves a month by days.
MONTH = "month"
QUARTER = "quarter"
NO_SPLIT = "none"

# How the Dagster asset is partitioned besides by company.
MONTHLY = "monthly"  # one partition per calendar month: a closed month's report is a fixed document
CURRENT = "current"  # company only: the report as of today (aging)

# Parameters every report takes (QBO's query parameter names).
_DATES = ("start_date", "end_date", "date_macro")
_FILTERS = ("customer", "vendor", "item", "class", "department", "account")
_SUMMARY = ("accounting_method", "summarize_column_by", *_DATES, *_FILTERS)
_AGING = ("report_date", "date_macro", "aging_period", "num_periods", "past_due", "term", "accounting_method")
_DETAIL = ("accounting_method", *_DATES, *_FILTERS, "columns", "sort_by", "sort_order", "source_account_type")

# Values QBO accepts for the enumerated parameters (others are refused before a request is made).
SUMMARIZE_COLUMN_BY = ("Total", "Month", "Week", "Days", "Quarter", "Year", "Customers", "Vendors", "Classes",
                       "Departments", "Employees", "ProductsAndServices")  # fmt: skip
ACCOUNTING_METHODS = ("Cash", "Accrual")
DATE_MACROS = ("Today", "Yesterday", "This Week", "Last Week", "This Week-to-date", "Last Week-to-date",
               "Next Week", "Next 4 Weeks", "This Month", "Last Month", "This Month-to-date",
               "Last Month-to-date", "Next Month", "This Fiscal Quarter", "Last Fiscal Quarter",
               "This Fiscal Quarter-to-date", "Last Fiscal Quarter-to-date", "Next Fiscal Quarter",
               "This Fiscal Year", "Last Fiscal Year", "This Fiscal Year-to-date",
               "Last Fiscal Year-to-date", "Next Fiscal Year")  # fmt: skip


@dataclass(frozen=True)
class ReportSpec:
    """Everything smartsync knows about one QBO report."""

    name: str  # QBO's name, as in the URL: "ProfitAndLoss"
    dates: str  # RANGE or AS_OF
    parameters: tuple[str, ...]  # query parameters it accepts (besides minorversion)
    defaults: tuple[tuple[str, str], ...]  # parameters smartsync always sends unless told otherwise
    split: str  # MONTH, QUARTER or NO_SPLIT
    max_months: int  # longest range asked in one request before splitting
    partition: str  # MONTHLY or CURRENT
    freshness: Freshness
    grand_total_groups: tuple[str, ...] = ()  # section groups whose Summary is the report's bottom line
    detail_columns: tuple[str, ...] = ()  # column keys an analyst view pivots (detail reports)
    description: str = ""
    tags: tuple[str, ...] = field(default=())

    @property
    def table_suffix(self) -> str:
        """snake_case name used in view names: ``report_profit_and_loss``."""
        out = []
        for i, ch in enumerate(self.name):
            if ch.isupper() and i and not self.name[i - 1].isupper():
                out.append("_")
            out.append(ch.lower())
        return "".join(out)

    @property
    def view(self) -> str:
        """Analyst view of this report's newest cells."""
        return f"report_{self.table_suffix}"

    @property
    def is_detail(self) -> bool:
        """Detail reports list transactions (one row per posting) instead of a grid of accounts."""
        return bool(self.detail_columns)

    @property
    def date_parameter(self) -> str:
        """The parameter that names the as-of date of an AS_OF report."""
        return "report_date" if "report_date" in self.parameters else "end_date"


def _window(fail_hours: int) -> Freshness:
    return Freshness(fail=timedelta(hours=fail_hours), warn=timedelta(hours=fail_hours) / 2)


# A closed month's summary changes only when someone posts into it; today's aging moves with every
# bill and payment, so it is refreshed more often.
SUMMARIES = _window(24)
BALANCES = _window(12)
AGING = _window(6)
DETAIL = _window(24)

_ACCRUAL = (("accounting_method", "Accrual"),)
_GL_COLUMNS = ("tx_date", "txn_type", "doc_num", "name", "memo", "split_acc", "subt_nat_amount", "rbal_nat_amount")
_TL_COLUMNS = ("tx_date", "txn_type", "doc_num", "is_no_post", "name", "memo", "account_name", "other_account",
               "subt_nat_amount")  # fmt: skip

REPORTS: tuple[ReportSpec, ...] = (
    ReportSpec(
        "ProfitAndLoss",
        RANGE,
        _SUMMARY,
        _ACCRUAL,
        split=MONTH,
        max_months=6,
        partition=MONTHLY,
        freshness=SUMMARIES,
        grand_total_groups=("NetIncome",),
        description="Income and expenses by account; the bottom line is net income.",
    ),
    ReportSpec(
        "BalanceSheet",
        AS_OF,
        _SUMMARY,
        _ACCRUAL,
        split=MONTH,
        max_months=6,
        partition=MONTHLY,
        freshness=BALANCES,
        grand_total_groups=("TotalAssets", "TotalLiabilitiesAndEquity"),
        description="Assets, liabilities and equity as of the end date; bank accounts hold cash.",
    ),
    ReportSpec(
        "CashFlow",
        RANGE,
        _SUMMARY,
        (),
        split=MONTH,
        max_months=6,
        partition=MONTHLY,
        freshness=SUMMARIES,
        grand_total_groups=("EndingCash",),
        description="Statement of cash flows (indirect method): net income adjusted to the change in cash.",
    ),
    ReportSpec(
        "AgedPayables",
        AS_OF,
        _AGING,
        (("aging_period", "30"), ("num_periods", "4")),
        split=NO_SPLIT,
        max_months=0,
        partition=CURRENT,
        freshness=AGING,
        grand_total_groups=("GrandTotal",),
        description="Open bills per vendor in aging buckets (current, 1-30, 31-60, 61-90, 91+ days past due).",
    ),
    ReportSpec(
        "AgedReceivables",
        AS_OF,
        _AGING,
        (("aging_period", "30"), ("num_periods", "4")),
        split=NO_SPLIT,
        max_months=0,
        partition=CURRENT,
        freshness=AGING,
        grand_total_groups=("GrandTotal",),
        description="Open invoices per customer in aging buckets (current, 1-30, 31-60, 61-90, 91+ days past due).",
    ),
    ReportSpec(
        "GeneralLedger",
        RANGE,
        _DETAIL,
        (*_ACCRUAL, ("columns", ",".join(_GL_COLUMNS))),
        split=MONTH,
        max_months=1,
        partition=MONTHLY,
        freshness=DETAIL,
        detail_columns=_GL_COLUMNS,
        description="Every posting per account with running balances.",
    ),
    ReportSpec(
        "TransactionList",
        RANGE,
        (*_DETAIL, "transaction_type", "group_by"),
        (*_ACCRUAL, ("columns", ",".join(_TL_COLUMNS))),
        split=MONTH,
        max_months=1,
        partition=MONTHLY,
        freshness=DETAIL,
        detail_columns=_TL_COLUMNS,
        description="Every transaction of the period, one row each.",
    ),
)

_BY_NAME = {r.name.lower(): r for r in REPORTS}


class UnknownReportError(ValueError):
    """Raised for a report name that is not in the registry."""


def find_report(name: str) -> ReportSpec | None:
    return _BY_NAME.get(str(name).replace("_", "").lower())


def report(name: str) -> ReportSpec:
    """Look up a report by QBO name (case-insensitive, underscores ignored)."""
    spec = find_report(name)
    if spec is None:
        known = ", ".join(r.name for r in REPORTS)
        raise UnknownReportError(f"unknown QBO report {name!r}; known reports: {known}")
    return spec


def iter_reports(names: list[str] | None = None) -> Iterator[ReportSpec]:
    """The specs for ``names`` (all when empty), in registry order, validating every name."""
    if not names:
        yield from REPORTS
        return
    wanted = {report(n).name for n in names}
    yield from (r for r in REPORTS if r.name in wanted)


__all__ = [
    "ACCOUNTING_METHODS",
    "AS_OF",
    "CURRENT",
    "DATE_MACROS",
    "MONTH",
    "MONTHLY",
    "NO_SPLIT",
    "QUARTER",
    "RANGE",
    "REPORTS",
    "SUMMARIZE_COLUMN_BY",
    "ReportSpec",
    "UnknownReportError",
    "find_report",
    "iter_reports",
    "report",
]
