"""ProfitAndLoss, BalanceSheet and CashFlow computed from a ledger, in QBO's section layout.

Signs follow the reports: income, liabilities and equity are positive when credited. The statements
tie by construction (every transaction's postings sum to zero): net income equals the P&L's bottom
line, assets equal liabilities plus equity, and the cash flow's change in cash equals the change in
the bank accounts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from smartsync_pipeline.sandbox.reports.grid import Line, Section, render
from smartsync_pipeline.sandbox.reports.ledger_view import CASH_TYPES, Ledger, LedgerAccount
from smartsync_pipeline.sandbox.reports.params import ReportParams, column_periods
from smartsync_pipeline.sandbox.reports.wire import Column

Period = tuple[date, date]

PNL_SECTIONS = (  # (header, group, account types)
    ("Income", "Income", ("Income",)),
    ("Cost of Goods Sold", "COGS", ("Cost of Goods Sold",)),
    ("Expenses", "Expenses", ("Expense",)),
    ("Other Income", "OtherIncome", ("Other Income",)),
    ("Other Expenses", "OtherExpenses", ("Other Expense",)),
)
PNL_TYPES = frozenset(t for _, _, types in PNL_SECTIONS for t in types)


def _money_columns(p: ReportParams, *, with_total: bool) -> tuple[list[Column], list[Period]]:
    periods = column_periods(p.start, p.end, p.summarize_by)
    if p.summarize_by == "Total":
        return [Column("Total", "Money", "total")], [(p.start, p.end)]
    columns = [Column(title, "Money", title, s, e) for title, s, e in periods]
    spans = [(s, e) for _, s, e in periods]
    if with_total:
        columns.append(Column("Total", "Money", "total"))
        spans.append((p.start, p.end))
    return columns, spans


def _flows(ledger: Ledger, spans: Sequence[Period]) -> list[dict[str, int]]:
    """Σ debit-positive postings per account within each span."""
    out = []
    for start, end in spans:
        sums: dict[str, int] = defaultdict(int)
        for posting in ledger.postings(start, end):
            sums[posting.account_id] += posting.amount
        out.append(sums)
    return out


def _balances(ledger: Ledger, dates: Sequence[date]) -> list[dict[str, int]]:
    """Σ debit-positive postings per account up to the end of each date."""
    return _flows(ledger, [(date.min, d) for d in dates])


def _lines(accounts: Sequence[LedgerAccount], types: Sequence[str], per_column: list[dict[str, int]],
           sign: int, *, blanks: bool) -> list[Line]:  # fmt: skip
    """One line per account of ``types`` with anything in any column (in natural sign)."""
    lines = []
    for account in accounts:
        if account.account_type not in types:
            continue
        raw = [col.get(account.id) for col in per_column]
        if all(v in (None, 0) for v in raw):
            continue
        values = [None if (v is None and blanks) else sign * (v or 0) for v in raw]
        lines.append(Line(account.name, account.id, values))
    return lines


def _net_income(ledger: Ledger, per_column: list[dict[str, int]]) -> list[int]:
    pnl = {a.id for a in ledger.accounts() if a.account_type in PNL_TYPES}
    return [-sum(v for k, v in col.items() if k in pnl) for col in per_column]


def profit_and_loss(ledger: Ledger, p: ReportParams) -> tuple[list[Column], list[dict[str, Any]]]:
    columns, spans = _money_columns(p, with_total=True)
    flows = _flows(ledger, spans)
    accounts = ledger.accounts()
    width = len(columns)
    totals: dict[str, list[int]] = {}
    sections: list[Section] = []
    for title, group, types in PNL_SECTIONS:
        sign = -1 if group in ("Income", "OtherIncome") else 1
        node = Section(title, group, f"Total {title}", list(_lines(accounts, types, flows, sign, blanks=True)))
        node.keep_empty = group in ("Income", "COGS", "Expenses")
        totals[group] = node.totals(width)
        sections.append(node)
    minus = lambda a, b: [x - y for x, y in zip(a, b, strict=True)]  # noqa: E731
    gross = minus(totals["Income"], totals["COGS"])
    operating = minus(gross, totals["Expenses"])
    other = minus(totals["OtherIncome"], totals["OtherExpenses"])
    net = [a + b for a, b in zip(operating, other, strict=True)]
    income, cogs, expenses, other_income, other_expenses = sections
    layout = [income, cogs, Section(None, "GrossProfit", "Gross Profit", computed=gross), expenses,
              Section(None, "NetOperatingIncome", "Net Operating Income", computed=operating)]  # fmt: skip
    if not (other_income.is_empty() and other_expenses.is_empty()):
        layout += [other_income, other_expenses,
                   Section(None, "NetOtherIncome", "Net Other Income", computed=other)]  # fmt: skip
    layout.append(Section(None, "NetIncome", "Net Income", computed=net))
    has_data = any(not s.is_empty() for s in sections)
    return [Column("", "Account", "account"), *columns], (render(layout, width) if has_data else [])


BALANCE_SHEET = (  # (header, group, summary, children: account types or nested layout)
    ("ASSETS", "TotalAssets", "TOTAL ASSETS", (
        ("Current Assets", "CurrentAssets", "Total Current Assets", (
            ("Bank Accounts", "BankAccounts", "Total Bank Accounts", ("Bank",)),
            ("Accounts Receivable", "AR", "Total Accounts Receivable", ("Accounts Receivable",)),
            ("Other Current Assets", "OtherCurrentAssets", "Total Other Current Assets", ("Other Current Asset",)),
        )),
        ("Fixed Assets", "FixedAssets", "Total Fixed Assets", ("Fixed Asset",)),
        ("Other Assets", "OtherAssets", "Total Other Assets", ("Other Asset",)),
    )),
    ("LIABILITIES AND EQUITY", "TotalLiabilitiesAndEquity", "TOTAL LIABILITIES AND EQUITY", (
        ("Liabilities", "Liabilities", "Total Liabilities", (
            ("Current Liabilities", "CurrentLiabilities", "Total Current Liabilities", (
                ("Accounts Payable", "AP", "Total Accounts Payable", ("Accounts Payable",)),
                ("Credit Cards", "CreditCards", "Total Credit Cards", ("Credit Card",)),
                ("Other Current Liabilities", "OtherCurrentLiabilities", "Total Other Current Liabilities",
                 ("Other Current Liability",)),
            )),
            ("Long-Term Liabilities", "LongTermLiabilities", "Total Long-Term Liabilities", ("Long Term Liability",)),
        )),
        ("Equity", "Equity", "Total Equity", ("Equity",)),
    )),
)  # fmt: skip


def _tree(layout: Any, accounts: Sequence[LedgerAccount], balances: list[dict[str, int]],
          equity_extra: list[Line]) -> list[Section]:  # fmt: skip
    out = []
    for title, group, summary, children in layout:
        node = Section(title, group, summary)
        if children and isinstance(children[0], str):
            for line in _lines(accounts, children, balances, 1, blanks=False):
                account = next(a for a in accounts if a.id == line.ident)
                line.values = [account.sign * (v or 0) for v in line.values]
                node.children.append(line)
            if group == "Equity":
                node.children.extend(equity_extra)
        else:
            node.children.extend(_tree(children, accounts, balances, equity_extra))
        out.append(node)
    return out


def balance_sheet(ledger: Ledger, p: ReportParams) -> tuple[list[Column], list[dict[str, Any]]]:
    if p.summarize_by == "Total":
        columns, dates = [Column("Total", "Money", "total")], [p.end]
    else:
        periods = column_periods(p.start, p.end, p.summarize_by)
        columns = [Column(title, "Money", title, s, e) for title, s, e in periods]
        dates = [e for _, _, e in periods]
    accounts = ledger.accounts()
    balances = _balances(ledger, dates)
    # Net income of earlier fiscal years sits in Retained Earnings; this year's shows as Net Income.
    year_starts = [date(d.year, 1, 1) for d in dates]
    prior = _net_income(ledger, _flows(ledger, [(date.min, s - timedelta(days=1)) for s in year_starts]))
    current = _net_income(ledger, _flows(ledger, list(zip(year_starts, dates, strict=True))))
    retained = next((a for a in accounts if a.sub_type == "RetainedEarnings"), None)
    extra: list[Line] = []
    if retained is not None:
        # The account's own postings plus prior years' income, in credit-positive sign.
        for col, amount in zip(balances, prior, strict=True):
            col[retained.id] = col.get(retained.id, 0) - amount
    elif any(prior):
        extra.append(Line("Retained Earnings", None, prior))
    if any(current):
        extra.append(Line("Net Income", None, current))
    tree = _tree(BALANCE_SHEET, [a for a in accounts if a.on_balance_sheet], balances, extra)
    width = len(columns)
    rows = render(tree, width) if any(not s.is_empty() for s in tree) else []
    return [Column("", "Account", "account"), *columns], rows


CASH_FLOW = (  # (header, group, summary, account types)
    ("INVESTING ACTIVITIES", "InvestingActivities", "Net cash provided by investing activities",
     ("Fixed Asset", "Other Asset")),
    ("FINANCING ACTIVITIES", "FinancingActivities", "Net cash provided by financing activities",
     ("Long Term Liability", "Equity")),
)  # fmt: skip
OPERATING_TYPES = ("Accounts Receivable", "Other Current Asset", "Accounts Payable", "Credit Card",
                   "Other Current Liability")  # fmt: skip


def cash_flow(ledger: Ledger, p: ReportParams) -> tuple[list[Column], list[dict[str, Any]]]:
    columns, spans = _money_columns(p, with_total=True)
    width = len(columns)
    flows = _flows(ledger, spans)
    accounts = ledger.accounts()
    # A balance-sheet account's debit is cash going out: its line is the negated flow.
    net = _net_income(ledger, flows)
    adjustments = Section("Adjustments to reconcile Net Income to Net Cash provided by operations:",
                          "OperatingAdjustments",
                          "Total Adjustments to reconcile Net Income to Net Cash provided by operations:",
                          list(_lines(accounts, OPERATING_TYPES, flows, -1, blanks=False)))  # fmt: skip
    operating = Section("OPERATING ACTIVITIES", "OperatingActivities", "Net cash provided by operating activities",
                        [Line("Net Income", None, net), adjustments])  # fmt: skip
    sections = [operating]
    for title, group, summary, types in CASH_FLOW:
        sections.append(Section(title, group, summary, list(_lines(accounts, types, flows, -1, blanks=False))))
    increase = [sum(values) for values in zip(*(s.totals(width) for s in sections), strict=True)]
    cash = [a.id for a in accounts if a.account_type in CASH_TYPES]
    beginning = [sum(col.get(a, 0) for a in cash) for col in _balances(ledger, [s - timedelta(days=1)
                                                                              for s, _ in spans])]  # fmt: skip
    ending = [b + i for b, i in zip(beginning, increase, strict=True)]
    ledger_ending = [sum(col.get(a, 0) for a in cash) for col in _balances(ledger, [e for _, e in spans])]
    assert ending == ledger_ending, "the cash flow does not tie to the bank accounts"
    sections += [
        Section(None, "CashIncrease", "NET CASH INCREASE FOR PERIOD", computed=increase),
        Section(None, "BeginningCash", "Cash at beginning of period", computed=beginning),
        Section(None, "EndingCash", "CASH AT END OF PERIOD", computed=ending),
    ]
    has_data = any(ledger.postings(p.start, p.end)) or any(beginning)
    return [Column("", "Account", "account"), *columns], (render(sections, width) if has_data else [])
