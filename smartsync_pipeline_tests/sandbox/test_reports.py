"""The sandbox's Reports API over real HTTP: the statements tie to each other and to the sandbox's own
documents after simulated business activity, QBO's cell limit cuts reports the way QBO does, and bad
parameters get QBO's validation fault."""

from __future__ import annotations

import calendar
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from smartsync_pipeline.entities.registry import find_entity
from smartsync_pipeline.entities.reports import REPORTS, report
from smartsync_pipeline.qbo.report_document import DATA, GRAND_TOTAL, SECTION_SUMMARY, ReportDocument, parse_report
from smartsync_pipeline_tests.sandbox.api_session import SandboxApi


def _report(api: SandboxApi, name: str, **params: Any) -> ReportDocument:
    response = api.get(f"reports/{name}", **params)
    assert response.status_code == 200, response.text
    spec = report(name)
    return parse_report(response.json(), expected_name=name, grand_total_groups=spec.grand_total_groups)


def _cents(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _summary(doc: ReportDocument, group: str, column: str = "total") -> Decimal:
    """The summary amount of the section with ``group``."""
    return next(c.amount for c in doc.cells
                if c.group == group and c.row_type in (SECTION_SUMMARY, GRAND_TOTAL) and c.column.key == column
                and c.section_path[-1] != "")  # fmt: skip


@pytest.fixture(scope="module")
def busy():
    from smartsync_pipeline.sandbox.process import SandboxProcess

    proc = SandboxProcess.start(scale="small", seed=11)
    try:
        # Business goes on: bills, invoices, payments, edits, voids and deletes after the seed.
        proc.control("simulate", {"operations": 120, "seed": 3})
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def api(busy) -> SandboxApi:
    return SandboxApi(busy)


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def test_balance_sheet_balances_by_month_and_its_net_income_is_the_p_and_l(api) -> None:
    today = _report(api, "AgedPayables").end_period
    start = date(today.year - 1, 1, 1)
    bs = _report(api, "BalanceSheet", start_date=start.isoformat(), end_date=today.isoformat(),
                 summarize_column_by="Month")  # fmt: skip
    months = [c for c in bs.columns if c.start_date]
    assert len(months) == (today.year - start.year) * 12 + today.month
    totals = bs.grand_totals()
    assert totals["TotalAssets"] == totals["TotalLiabilitiesAndEquity"] and len(totals["TotalAssets"]) == len(months)
    pnl = _report(api, "ProfitAndLoss", start_date=date(today.year, 1, 1).isoformat(), end_date=today.isoformat())
    net_income_row = next(c for c in bs.cells if c.label == "Net Income" and c.column.key == months[-1].key)
    assert net_income_row.amount == pnl.grand_totals()["NetIncome"]["total"]


def test_cash_flow_ends_at_the_bank_total_of_the_balance_sheet_and_the_accounts(api) -> None:
    today = _report(api, "AgedPayables").end_period
    for start in (date(today.year, 1, 1), today.replace(day=1)):
        flow = _report(api, "CashFlow", start_date=start.isoformat(), end_date=today.isoformat())
        bs = _report(api, "BalanceSheet", end_date=today.isoformat())
        bank = _summary(bs, "BankAccounts")
        assert flow.grand_totals()["EndingCash"]["total"] == bank
    banks = api.rows("SELECT * FROM Account WHERE AccountType = 'Bank'", "Account")
    assert bank == sum((_cents(a["CurrentBalance"]) for a in banks), Decimal(0))


# What else makes up A/P and A/R, when the sandbox has the entity: credits (by what is left of them)
# and payments not applied to a document.
CREDITS = {"Bill": (("VendorCredit", ("Balance",)), ("BillPayment", None)),
           "Invoice": (("CreditMemo", ("RemainingCredit", "Balance")), ("Payment", None))}  # fmt: skip


def _open_amounts(api: SandboxApi, entity: str, party: str) -> list[tuple[str, Decimal]]:
    """(party id, open amount) of every open item: documents positive, credits and unapplied payments negative."""
    out = [(d[party]["value"], _cents(d["Balance"])) for d in _all(api, entity) if _cents(d["Balance"]) != 0]
    for credit, fields in CREDITS[entity]:
        if find_entity(credit) is None:
            continue
        for obj in _all(api, credit):
            if fields is None:  # a payment: what its lines do not apply
                left = _cents(obj["TotalAmt"]) - sum((_cents(ln.get("Amount")) for ln in obj.get("Line") or []),
                                                     Decimal(0))  # fmt: skip
            else:
                left = next((_cents(obj[f]) for f in fields if f in obj), _cents(obj.get("TotalAmt")))
            if left:
                out.append((obj[party]["value"], -left))
    return out


@pytest.mark.parametrize(("name", "entity"), [("AgedPayables", "Bill"), ("AgedReceivables", "Invoice")])
def test_aging_totals_equal_the_open_documents(api, name: str, entity: str) -> None:
    doc = _report(api, name)
    assert [c.title for c in doc.columns[1:]] == ["Current", "1 - 30", "31 - 60", "61 - 90", "91 and over", "Total"]
    party = "VendorRef" if entity == "Bill" else "CustomerRef"
    items = _open_amounts(api, entity, party)
    grand = doc.grand_totals()["GrandTotal"]
    assert grand["Total"] == sum((amount for _, amount in items), Decimal(0)) != 0
    # Bucket by bucket, the party rows add up to the grand total; parties are the open items' parties.
    sums = doc.sum_of(DATA)  # a bucket no party has an amount in (empty cells) totals zero
    assert {k: sums.get(k, Decimal(0)) for k in grand} == grand
    per_party: dict[str, Decimal] = {}
    for party_id, amount in items:
        per_party[party_id] = per_party.get(party_id, Decimal(0)) + amount
    assert {c.row_id for c in doc.cells if c.row_type == DATA} == {p for p, v in per_party.items() if v}
    # A different aging layout moves amounts between buckets, never changes the total.
    wide = _report(api, name, aging_period=15, num_periods=6)
    assert [c.title for c in wide.columns][-2:] == ["76 and over", "Total"]
    assert wide.grand_totals()["GrandTotal"]["Total"] == grand["Total"]


POSTING_ENTITIES = ("Bill", "Invoice", "Payment", "BillPayment", "Purchase", "JournalEntry", "Deposit", "Transfer",
                    "SalesReceipt", "RefundReceipt", "CreditMemo", "VendorCredit")  # fmt: skip


def _all(api: SandboxApi, entity: str) -> list[dict[str, Any]]:
    rows, start = [], 1
    while True:
        page = api.rows(f"SELECT * FROM {entity} STARTPOSITION {start} MAXRESULTS 1000", entity)
        rows += page
        if len(page) < 1000:
            return rows
        start += 1000


def test_transaction_list_and_general_ledger_cover_every_document_of_the_month(api) -> None:
    today = _report(api, "AgedPayables").end_period
    start = today.replace(day=1)
    tl = _report(api, "TransactionList", start_date=start.isoformat(), end_date=today.isoformat())
    listed = {(c.value, c.value_id) for c in tl.cells if c.column.key == "txn_type"}
    expected = set()
    for entity in POSTING_ENTITIES:
        if find_entity(entity) is None:
            continue
        for obj in _all(api, entity):
            amount = obj.get("TotalAmt", obj.get("Amount"))
            if start.isoformat() <= obj["TxnDate"] <= today.isoformat() and amount and _cents(amount) != 0:
                expected.add((entity, obj["Id"]))
    assert len(listed) == len(expected) > 0
    names = {"Bill Payment (Check)": "BillPayment", "Bill Payment (Credit Card)": "BillPayment",
             "Expense": "Purchase", "Check": "Purchase", "Credit Card Expense": "Purchase",
             "Journal Entry": "JournalEntry", "Sales Receipt": "SalesReceipt", "Refund": "RefundReceipt",
             "Credit Memo": "CreditMemo", "Vendor Credit": "VendorCredit"}  # fmt: skip
    assert {(names.get(label, label), ident) for label, ident in listed} == expected
    gl = _report(api, "GeneralLedger", start_date=start.isoformat(), end_date=today.isoformat())
    postings = [c for c in gl.cells if c.row_type == DATA and c.column.key == "subt_nat_amount"]
    assert {(c.row_id) for c in postings} >= {ident for _, ident in expected}


def test_the_cell_limit_cuts_reports_like_qbo(sandbox_factory) -> None:
    api = SandboxApi(sandbox_factory())
    today = _report(api, "AgedPayables").end_period
    params = {"start_date": date(today.year, 1, 1).isoformat(), "end_date": today.isoformat()}
    whole = api.get("reports/GeneralLedger", **params).json()
    api.sandbox.control("faults", {"report_cell_limit": 400})
    cut = api.get("reports/GeneralLedger", **params).json()
    last = cut["Rows"]["Row"][-1]
    assert last["ColData"][0]["value"] == "Unable to display more data. Please reduce the date range."
    doc = parse_report(cut)
    assert doc.truncated and doc.rows * len(doc.columns) <= 400 + len(doc.columns)
    assert len(parse_report(whole).cells) > len(doc.cells)


@pytest.mark.parametrize(
    ("name", "params", "detail"),
    [
        ("ProfitAndLoss", {"accounting_method": "Cash"}, "Accrual basis only"),
        ("ProfitAndLoss", {"start_date": "2026-13-01"}, "must be a date"),
        ("ProfitAndLoss", {"start_date": "2026-02-01", "end_date": "2026-01-01"}, "is after end_date"),
        ("ProfitAndLoss", {"summarize_column_by": "Customers"}, "not supported by the sandbox"),
        ("AgedPayables", {"num_periods": "0"}, "whole number"),
        ("GeneralLedger", {"columns": "tx_date,favourite_colour"}, "unsupported columns"),
        ("BudgetVsActuals", {}, "unsupported report"),
    ],
)
def test_bad_report_requests_get_a_validation_fault(sandbox, name: str, params: dict[str, str], detail: str) -> None:
    response = SandboxApi(sandbox).get(f"reports/{name}", **params)
    assert response.status_code == 400
    error = response.json()["Fault"]["Error"][0]
    assert detail in error["Detail"]


def test_every_registered_report_has_a_sandbox_builder() -> None:
    from smartsync_pipeline.sandbox.reports import BUILDERS

    assert set(BUILDERS) == {r.name for r in REPORTS}
