"""Reports stored in the mirror: tidy cells whose totals are the report's to the cent, a chained run log
in which a changed closed-period report shows, and snapshots that keep showing reports after syncs."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pytest

from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.reports import verify_runs
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.sync.report_sync import ReportSync


def _last_closed_month(today: date) -> tuple[date, date]:
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def _analyst(home) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(home.analyst_path), read_only=True)


def _today(sync: ReportSync, realm: str) -> date:
    return sync.run(realm, "AgedPayables").run.period_end


@pytest.fixture
def company(connected_company):
    return connected_company


def test_tidy_cells_total_to_the_reports_grand_totals(company) -> None:
    sync = ReportSync(company.home)
    start, end = _last_closed_month(_today(sync, company.realm_id))
    outcome = sync.run(company.realm_id, "ProfitAndLoss", period=(start, end), trigger="manual")
    net = outcome.result.grand_totals()["NetIncome"]["total"]
    assert outcome.run.period_key == f"{start:%Y-%m}" and outcome.stored.closed_period
    with _analyst(company.home) as con:
        sums = dict(con.execute(
            """SELECT section_path[1], sum(amount) FROM report_profit_and_loss
               WHERE realm_id = ? AND period_key = ? AND row_type = 'data' GROUP BY 1""",
            [company.realm_id, outcome.run.period_key],
        ).fetchall())  # fmt: skip
        stored_net = con.execute(
            "SELECT amount FROM report_grand_totals WHERE report = 'ProfitAndLoss' AND period_key = ? "
            "AND group_name = 'NetIncome' AND column_key = 'total'",
            [outcome.run.period_key],
        ).fetchone()[0]
    income = sums.get("Income", Decimal(0)) + sums.get("Other Income", Decimal(0))
    costs = sum((sums.get(k, Decimal(0)) for k in ("Cost of Goods Sold", "Expenses", "Other Expenses")), Decimal(0))
    assert income - costs == net == stored_net and net != 0
    assert isinstance(stored_net, Decimal)

    aging = sync.run(company.realm_id, "AgedReceivables")
    grand = aging.result.grand_totals()["GrandTotal"]
    with _analyst(company.home) as con:
        rows = con.execute(
            "SELECT column_key, sum(amount) FROM report_aged_receivables WHERE period_key = 'current' "
            "AND row_type = 'data' GROUP BY 1"
        ).fetchall()
    sums = dict(rows)  # a bucket no customer fills has no data cells (its grand total is 0.00)
    assert set(sums) <= set(grand)
    assert {k: sums.get(k, Decimal(0)) for k in grand} == grand


def _post_bill(company, day: date, cents: int) -> dict:
    store = CompanyStore(company.home)
    with QBOClient(store.load(company.realm_id), store.tokens(company.realm_id), home=company.home) as client:
        vendor = client.query("SELECT * FROM Vendor WHERE Active = true MAXRESULTS 1").items[0]
        account = client.query("SELECT * FROM Account WHERE AccountType = 'Expense' MAXRESULTS 1").items[0]
        line = {"Amount": cents / 100, "DetailType": "AccountBasedExpenseLineDetail",
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account["Id"]}}}  # fmt: skip
        return client.create("Bill", {"VendorRef": {"value": vendor["Id"]}, "TxnDate": day.isoformat(), "Line": [line]})


def test_a_changed_closed_period_report_shows_in_the_trail(company) -> None:
    sync = ReportSync(company.home)
    start, end = _last_closed_month(_today(sync, company.realm_id))
    first = sync.run(company.realm_id, "ProfitAndLoss", period=(start, end))
    again = sync.run(company.realm_id, "ProfitAndLoss", period=(start, end))
    assert again.run.content_hash == first.run.content_hash and not again.stored.changed
    assert again.stored.previous_hash == first.run.content_hash
    # Someone books a bill into the closed month behind our back.
    _post_bill(company, start + timedelta(days=3), 123_45)
    changed = sync.run(company.realm_id, "ProfitAndLoss", period=(start, end))
    assert changed.stored.changed and changed.stored.closed_period
    assert changed.stored.previous_hash == first.run.content_hash != changed.run.content_hash
    delta = first.result.grand_totals()["NetIncome"]["total"] - changed.result.grand_totals()["NetIncome"]["total"]
    assert delta == Decimal("123.45")
    with _analyst(company.home) as con:
        trail = con.execute(
            "SELECT report, period_key, previous_hash, content_hash FROM report_changes WHERE realm_id = ?",
            [company.realm_id],
        ).fetchall()
        assert verify_runs(con).ok and verify_runs(con).rows_checked == 4  # AgedPayables + 3 P&L runs
    assert trail == [("ProfitAndLoss", f"{start:%Y-%m}", first.run.content_hash, changed.run.content_hash)]
    # The trail is chained: rewriting an old run is detected and named.
    db = MirrorDatabase(company.home)
    with db.locked(), db.connect() as con:
        con.execute("UPDATE report_run SET content_hash = ? WHERE run_seq = 2", [changed.run.content_hash])
        check = verify_runs(con)
    assert not check.ok and check.first_broken == 2 and "modified" in check.reason


def test_snapshots_keep_reports_after_a_sync_catches_them_up(company) -> None:
    engine = company.engine()
    engine.sync(company.realm_id, mode="full")  # generation 1: a copy of the mirror
    sync = ReportSync(company.home)
    outcome = sync.run(company.realm_id, "AgedPayables")  # generation 2: reports do not move the change log
    company.simulate(20, seed=5)
    report = engine.sync(company.realm_id)  # generation 3: an older snapshot caught up with the changes
    assert report.snapshot_generation == outcome.snapshot_generation + 1
    assert report.snapshot_method == "catch-up"
    with _analyst(company.home) as con:
        cells = con.execute("SELECT count(*) FROM report_cell WHERE report = 'AgedPayables'").fetchone()[0]
        runs = con.execute("SELECT count(*) FROM report_runs").fetchone()[0]
    assert cells == outcome.stored.cells > 0 and runs == 1


def test_a_balance_sheet_month_is_as_of_its_last_day(company) -> None:
    sync = ReportSync(company.home)
    start, end = _last_closed_month(_today(sync, company.realm_id))
    outcome = sync.run(company.realm_id, "BalanceSheet", period=(start, end))
    doc = outcome.result.parts[0].document
    assert doc.end_period == end and end.day == calendar.monthrange(end.year, end.month)[1]
    totals = outcome.result.grand_totals()
    assert totals["TotalAssets"] == totals["TotalLiabilitiesAndEquity"]
