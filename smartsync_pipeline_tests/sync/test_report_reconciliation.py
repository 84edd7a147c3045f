"""Mirror vs QBO's own reports, to the cent: equal after a sync, and when the books change behind the
mirror's back, a difference report naming the company, the figure and the documents that explain it."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pytest

from smartsync_pipeline.entities import entity
from smartsync_pipeline.mirror.snapshots import SnapshotReader
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.services.bank_flows import CASH_LEGS
from smartsync_pipeline.sync.report_explanation import STALE_REPORT, is_lag, reconcile_with_report
from smartsync_pipeline.sync.report_reconciliation import (
    BANK_LEGS,
    COMPARISONS,
    MissingReportError,
    Reconciliation,
    aging_vs_report,
    bank_movements_after,
    cash_vs_balance_sheet,
    documents_vs_transaction_list,
    net_income_vs_profit_and_loss,
)
from smartsync_pipeline.sync.report_sync import CURRENT_KEY, ReportSync


def _months_back(today: date, n: int) -> list[tuple[date, date]]:
    out, first = [], today.replace(day=1)
    for _ in range(n):
        last = first - timedelta(days=1)
        first = last.replace(day=1)
        out.append((first, last))
    return out


def _store_reports(sync: ReportSync, realm: str, months: list[tuple[date, date]]) -> None:
    for name in ("AgedPayables", "AgedReceivables", "BalanceSheet"):
        sync.run(realm, name)
    for period in months:
        sync.run(realm, "ProfitAndLoss", period=period)
    sync.run(realm, "TransactionList", period=months[0])


def _checks(company, month_key: str):
    with duckdb.connect(str(company.home.analyst_path), read_only=True) as con:
        return {
            "ap": aging_vs_report(con, company.realm_id, "payable"),
            "ar": aging_vs_report(con, company.realm_id, "receivable"),
            "cash": cash_vs_balance_sheet(con, company.realm_id),
            "net_income": net_income_vs_profit_and_loss(con, company.realm_id),
            "documents": documents_vs_transaction_list(con, company.realm_id, month_key),
        }


def test_the_mirror_reconciles_with_qbos_reports_and_names_what_differs(connected_company) -> None:
    company = connected_company
    company.simulate(40, seed=9)
    company.engine().sync(company.realm_id, mode="full")
    sync = ReportSync(company.home)
    today = sync.run(company.realm_id, "AgedPayables").run.period_end
    months = _months_back(today, 3)
    _store_reports(sync, company.realm_id, months)
    key = f"{months[0][0]:%Y-%m}"
    checks = _checks(company, key)
    for name, check in checks.items():
        assert check.ok, check.describe()
        assert check.compared > 0 and (check.mirror_total != 0 or name == "net_income"), name
    assert "equal to the cent" in checks["ap"].describe()

    # The books change behind the mirror's back: a bill in the closed month, not yet synced.
    store = CompanyStore(company.home)
    with QBOClient(store.load(company.realm_id), store.tokens(company.realm_id), home=company.home) as client:
        vendor = client.query("SELECT * FROM Vendor WHERE Active = true MAXRESULTS 1").items[0]
        account = client.query("SELECT * FROM Account WHERE AccountType = 'Expense' MAXRESULTS 1").items[0]
        line = {"Amount": 77.7, "DetailType": "AccountBasedExpenseLineDetail",
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account["Id"]}}}  # fmt: skip
        bill = client.create("Bill", {"VendorRef": {"value": vendor["Id"]}, "Line": [line],
                                      "TxnDate": (months[0][0] + timedelta(days=2)).isoformat()})  # fmt: skip
    _store_reports(sync, company.realm_id, months)
    checks = _checks(company, key)
    ap = checks["ap"]
    assert not ap.ok and ap.report_total - ap.mirror_total == Decimal("77.70")
    assert {d.key for d in ap.differences} == {vendor["Id"]} and "Total" in {d.column for d in ap.differences}
    assert (company.realm_id in ap.describe() and vendor["Id"] in ap.describe()) or vendor[
        "DisplayName"
    ] in ap.describe()
    net = checks["net_income"]
    assert [d.key for d in net.differences] == [key] and str(net.differences[0].delta) == "77.70"
    docs = checks["documents"]
    assert [d.key for d in docs.differences] == [f"Bill {bill['Id']}"] and "only in QBO" in docs.describe()
    assert checks["cash"].ok and checks["ar"].ok  # a bill moves neither cash nor receivables

    company.engine().sync(company.realm_id)  # the mirror catches up: everything reconciles again
    assert all(check.ok for check in _checks(company, key).values())


def test_a_missing_report_is_a_clear_error(connected_company) -> None:
    company = connected_company
    company.engine().sync(company.realm_id, mode="full")
    with (
        duckdb.connect(str(company.home.analyst_path), read_only=True) as con,
        pytest.raises((MissingReportError, duckdb.CatalogException)),
    ):
        aging_vs_report(con, company.realm_id)


def test_a_report_older_than_the_mirror_is_a_lag_not_a_disagreement(connected_company) -> None:
    """Checked later than it was fetched (a check re-run from the UI), a report can predate the mirror's
    last sync: what differs is then the report's lag, said as such, and nothing is looked up in QBO."""
    company = connected_company
    company.engine().sync(company.realm_id, mode="full")
    sync = ReportSync(company.home)
    for name in ("AgedPayables", "AgedReceivables", "BalanceSheet"):
        sync.run(company.realm_id, name)
    company.simulate(30, seed=17)
    company.engine().sync(company.realm_id)  # the mirror moves on; the stored reports do not
    store = CompanyStore(company.home)
    reader = SnapshotReader(company.home)
    try:
        with (
            QBOClient(store.load(company.realm_id), store.tokens(company.realm_id), home=company.home) as client,
            reader.cursor(realm_id=company.realm_id) as (con, _),
        ):
            results = [reconcile_with_report(con, company.realm_id, c, client=client)
                       for c in COMPARISONS if not c.per_month]  # fmt: skip
    finally:
        reader.close()
    differing = [r for r in results if not r.ok]
    assert differing, [r.describe() for r in results]
    for r in differing:
        assert all(is_lag(d) and d.cause.startswith(STALE_REPORT) for d in r.differences), r.describe()
        assert "run the report again" in r.describe() and "not looked up in QBO" in r.note


def test_a_closed_months_balance_sheet_is_compared_with_the_bank_balances_at_its_end(connected_company) -> None:
    """Today's balances less what the mirrored transactions dated after the month's end moved equal the
    closed month's BalanceSheet bank lines, account by account; a bank transaction booked into that
    month behind the mirror's back is a difference on its account."""
    company = connected_company
    company.simulate(40, seed=9)
    company.engine().sync(company.realm_id, mode="full")
    sync = ReportSync(company.home)
    today = sync.run(company.realm_id, "BalanceSheet").run.period_end
    months = _months_back(today, 2)
    for period in months:
        sync.run(company.realm_id, "BalanceSheet", period=period)
    with duckdb.connect(str(company.home.analyst_path), read_only=True) as con:
        current = cash_vs_balance_sheet(con, company.realm_id, CURRENT_KEY)
        closed = {f"{m[0]:%Y-%m}": cash_vs_balance_sheet(con, company.realm_id, f"{m[0]:%Y-%m}") for m in months}
        banks = [r[0] for r in con.execute(
            "SELECT id FROM account WHERE realm_id = ? AND account_type = 'Bank' AND NOT is_deleted", [company.realm_id]
        ).fetchall()]  # fmt: skip
        moved = bank_movements_after(con, company.realm_id, banks, months[0][1])
        future = bank_movements_after(con, company.realm_id, banks, today)
    assert current.ok, current.describe()
    for key, check in closed.items():
        assert check.ok and check.compared == len(banks) > 0, check.describe()
        assert check.as_of < today and "equal to the cent" in check.describe()
    # The month-end figures are not today's: money moved since, and it is what separates them.
    last = closed[f"{months[0][0]:%Y-%m}"]
    since = sum((m for m, _ in moved.values()), Decimal(0)) - sum((m for m, _ in future.values()), Decimal(0))
    assert since != 0 and current.mirror_total - last.mirror_total == since

    # A deposit into a bank account, dated in the closed month, written to QBO and not synced.
    store = CompanyStore(company.home)
    with QBOClient(store.load(company.realm_id), store.tokens(company.realm_id), home=company.home) as client:
        bank = client.query("SELECT * FROM Account WHERE AccountType = 'Bank' MAXRESULTS 1").items[0]
        income = client.query("SELECT * FROM Account WHERE AccountType = 'Income' MAXRESULTS 1").items[0]
        line = {"Amount": 123.45, "DetailType": "DepositLineDetail",
                "DepositLineDetail": {"AccountRef": {"value": income["Id"]}}}  # fmt: skip
        client.create("Deposit", {"DepositToAccountRef": {"value": bank["Id"]}, "Line": [line],
                                  "TxnDate": (months[0][0] + timedelta(days=3)).isoformat()})  # fmt: skip
    sync.run(company.realm_id, "BalanceSheet", period=months[0])
    with duckdb.connect(str(company.home.analyst_path), read_only=True) as con:
        check = cash_vs_balance_sheet(con, company.realm_id, f"{months[0][0]:%Y-%m}")
    assert not check.ok and [d.key for d in check.differences] == [bank["Id"]]
    assert check.differences[0].delta == Decimal("-123.45")


def test_a_comparison_of_no_bank_account_is_not_a_pass() -> None:
    none = "no bank account in the mirror nor in the BalanceSheet"
    result = Reconciliation("cash vs BalanceSheet bank accounts", "42", date(2026, 10, 31), Decimal("0.00"),
                            Decimal("0.00"), needs_figures=True, note=none)  # fmt: skip
    assert not result.ok and "nothing to compare" in result.describe()
    assert Reconciliation("x", "42", None, Decimal("0.00"), Decimal("0.00")).ok  # an empty aging is a comparison


def test_the_bank_legs_are_the_digests_cash_legs() -> None:
    """The reconciliation (sync layer) and the digest's bank flows (services layer) cannot share code;
    they must read the same fields for the same money."""
    digest = {(entity(leg.entity).table, leg.account, leg.amount, leg.sign) for leg in CASH_LEGS if not leg.lines}
    assert set(BANK_LEGS) == digest
    [journal] = [leg for leg in CASH_LEGS if leg.lines]
    assert (journal.entity, journal.account, journal.posting) == (
        "JournalEntry",
        "JournalEntryLineDetail.AccountRef",
        "JournalEntryLineDetail.PostingType",
    )
