"""The sandbox's Reports API: ``GET /v3/company/{realm}/reports/{name}`` computed from its own books.

Every report of the registry (``entities/reports.py``) has a builder here; each reads the company's
ledger (``ledger_view.py``) and returns QBO's wire document. Reports past the cell limit are cut the
way QBO cuts them (a notice row, the rest missing), so clients can prove they never store a cut
report as whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from smartsync_pipeline.entities.reports import find_report
from smartsync_pipeline.sandbox import api_errors as errors
from smartsync_pipeline.sandbox.qbo_time import iso
from smartsync_pipeline.sandbox.reports.aging import aging
from smartsync_pipeline.sandbox.reports.detail import general_ledger, transaction_list
from smartsync_pipeline.sandbox.reports.financial import balance_sheet, cash_flow, profit_and_loss
from smartsync_pipeline.sandbox.reports.ledger_view import Ledger, ledger_for
from smartsync_pipeline.sandbox.reports.params import ReportParams, read_params
from smartsync_pipeline.sandbox.reports.wire import DEFAULT_CELL_LIMIT, Column, cap_cells, document
from smartsync_pipeline.sandbox.store import Company

Builder = Callable[[Ledger, ReportParams], tuple[list[Column], list[dict[str, Any]]]]

BUILDERS: dict[str, Builder] = {
    "ProfitAndLoss": profit_and_loss,
    "BalanceSheet": balance_sheet,
    "CashFlow": cash_flow,
    "AgedPayables": lambda ledger, p: aging(ledger, p, "payable", "Vendor"),
    "AgedReceivables": lambda ledger, p: aging(ledger, p, "receivable", "Customer"),
    "GeneralLedger": general_ledger,
    "TransactionList": transaction_list,
}


def build_report(
    ledger: Ledger, name: str, params: Mapping[str, str], now: float, *, cell_limit: int = DEFAULT_CELL_LIMIT
) -> dict[str, Any]:
    """The wire document of report ``name`` (a registry name, any case) over ``ledger``."""
    spec = find_report(name)
    if spec is None or spec.name not in BUILDERS:
        raise errors.ApiFault(400, errors.UNSUPPORTED_OPERATION, "Unsupported Operation",
                              f"unsupported report {name!r}")  # fmt: skip
    today: date = ledger.today()
    p = read_params(spec, params, today)
    columns, rows = BUILDERS[spec.name](ledger, p)
    options: list[tuple[str, str]] = []
    if spec.name.startswith("Aged"):
        options.append(("report_date", p.end.isoformat()))
    basis = None if spec.name.startswith("Aged") or spec.name == "CashFlow" else "Accrual"
    doc = document(
        spec.name, columns, rows, start=p.start if spec.dates == "range" or spec.name == "BalanceSheet" else p.end,
        end=p.end, time=iso(now), basis=basis, date_macro=(p.date_macro or None) and p.date_macro.lower(),
        summarize_by=p.summarize_by if spec.name in ("ProfitAndLoss", "BalanceSheet", "CashFlow") else None,
        options=options,
    )  # fmt: skip
    return cap_cells(doc, cell_limit)


def run_report(company: Company, name: str, params: Mapping[str, str], now: float, *,
               cell_limit: int = DEFAULT_CELL_LIMIT) -> dict[str, Any]:  # fmt: skip
    """``build_report`` over the company's current books."""
    return build_report(ledger_for(company), name, params, now, cell_limit=cell_limit)


__all__ = ["BUILDERS", "build_report", "run_report"]
