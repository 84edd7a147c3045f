"""Mirror vs QBO's own reports, to the cent: equal after a sync, and when the books change behind the
mirror's back, a difference report naming the company, the figure and the documents that explain it."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pytest

from smartsync_pipeline.mirror.snapshots import SnapshotReader
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.sync.report_explanation import STALE_REPORT, is_lag, reconcile_with_report
from smartsync_pipeline.sync.report_reconciliation import (
    COMPARISONS,
    MissingReportError,
    aging_vs_report,
    cash_vs_balance_sheet,
    documents_vs_transaction_list,
    net_income_vs_profit_and_loss,
)
from smartsync_pipeline.sync.report_sync import ReportSync


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
