"""The reconciliation checks on the report assets as real Dagster runs on sandbox companies: they pass
on a seeded company and on one with simulated activity after a sync, and fail, naming the documents,
when the sandbox's books change behind the mirror's back (control-API activity and an API write, not
synced); after a sync they pass again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from smartsync_pipeline.definitions import defs
from smartsync_pipeline.defs.assets.reports import REPORT_ASSETS, REPORT_KEYS
from smartsync_pipeline.defs.checks.report_reconciliation import (
    REPORT_RECONCILIATION_CHECK,
    REPORT_RECONCILIATION_CHECKS,
    severity_of,
)
from smartsync_pipeline.entities.reports import MONTHLY, REPORTS
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.sync.report_reconciliation import COMPARISONS, Difference, Reconciliation
from smartsync_pipeline_tests.defs.conftest import MirrorSetup, start_mirror_setup

SEEDED, SIMULATED = 0, 1


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MirrorSetup]:
    root: Path = tmp_path_factory.mktemp("report_checks")
    for setup in start_mirror_setup(root, realms=2, ephemeral=True):
        seeded, simulated = setup.companies
        seeded.engine().sync(seeded.realm_id, mode="full")
        simulated.engine().sync(simulated.realm_id, mode="full")
        simulated.simulate(60, seed=11)
        simulated.engine().sync(simulated.realm_id)
        yield setup


def _defs(names: tuple[str, ...]) -> list:
    keys = {REPORT_KEYS[n] for n in names}
    return [a for a in REPORT_ASSETS if a.key in keys] + [c for c in REPORT_RECONCILIATION_CHECKS
                                                           if next(iter(c.check_keys)).asset_key in keys]  # fmt: skip


def _run(setup: MirrorSetup, names: tuple[str, ...], partition: str | dg.MultiPartitionKey) -> dict[str, object]:
    result = dg.materialize(_defs(names), instance=setup.instance, partition_key=partition,
                            resources=setup.resources)  # fmt: skip
    assert result.success
    evaluations = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    assert {e.check_name for e in evaluations.values()} == {REPORT_RECONCILIATION_CHECK}
    assert len(evaluations) == len(names)
    return evaluations


def _utc_today() -> date:
    """Dagster's month partitions are UTC months: the current one holds today's balances even while the
    company's own clock (the sandbox's is US Pacific) is still in the previous month."""
    return datetime.now(UTC).date()


def _check_all(setup: MirrorSetup, realm: str) -> tuple[dict[str, object], date]:
    """Every reconciliation check of one company: aging as of today, ProfitAndLoss and BalanceSheet
    of this month and the last one."""
    today = _utc_today()
    this_month = today.replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    out = dict(_run(setup, ("AgedPayables", "AgedReceivables"), realm))
    for first, suffix in ((last_month, "@last"), (this_month, "")):
        key = dg.MultiPartitionKey({"realm": realm, "month": first.isoformat()})
        for name, e in _run(setup, ("ProfitAndLoss", "BalanceSheet", "TransactionList"), key).items():
            out[name + suffix] = e
    return out, last_month


def test_one_partitioned_check_per_comparison_on_its_report_asset() -> None:
    graph = defs.resolve_asset_graph()
    for comparison in COMPARISONS:
        key = dg.AssetCheckKey(REPORT_KEYS[comparison.report], REPORT_RECONCILIATION_CHECK)
        assert key in graph.asset_check_keys
        check = next(c for c in REPORT_RECONCILIATION_CHECKS if key in c.check_keys)
        assert check.check_specs_by_output_name and graph.get(REPORT_KEYS[comparison.report]).partitions_def \
            == next(iter(check.check_specs)).partitions_def  # fmt: skip


@pytest.mark.parametrize("which", [SEEDED, SIMULATED], ids=["seeded", "simulated"])
def test_checks_pass_on_a_synced_company(books: MirrorSetup, which: int) -> None:
    realm = books.realms[which]
    evaluations, _ = _check_all(books, realm)
    for name, e in evaluations.items():
        assert e.passed, f"{name}: {e.description}"
    compared = {n: e.metadata["figures_compared"].value for n, e in evaluations.items()}
    must = ("aged_payables", "aged_receivables", "profit_and_loss", "balance_sheet", "profit_and_loss@last",
            "transaction_list@last")  # fmt: skip
    # A closed month's balance sheet is compared too: with the bank balances at its end.
    assert all(compared[n] > 0 for n in (*must, "balance_sheet@last")), compared
    assert compared["balance_sheet@last"] == compared["balance_sheet"]  # the same bank accounts
    assert "equal to the cent" in evaluations["balance_sheet@last"].description
    assert "equal to the cent" in evaluations["aged_payables"].description


def test_checks_fail_naming_the_documents_changed_behind_the_mirrors_back(books: MirrorSetup) -> None:
    company = books.companies[SIMULATED]
    realm = company.realm_id
    company.engine().sync(realm)
    today = _utc_today()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    store = CompanyStore(company.home)
    with QBOClient(store.load(realm), store.tokens(realm), home=company.home) as client:
        vendor = client.query("SELECT * FROM Vendor WHERE Active = true MAXRESULTS 1").items[0]
        account = client.query("SELECT * FROM Account WHERE AccountType = 'Expense' MAXRESULTS 1").items[0]
        line = {"Amount": 77.7, "DetailType": "AccountBasedExpenseLineDetail",
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account["Id"]}}}  # fmt: skip
        bill = client.create("Bill", {"VendorRef": {"value": vendor["Id"]}, "Line": [line],
                                      "TxnDate": (last_month + timedelta(days=3)).isoformat()})  # fmt: skip
    named_bill = f"Bill {bill['Id']} (created in QBO)"

    # One bill written through the API into last month, not synced: exactly that is named.
    evaluations, _ = _check_all(books, realm)
    failed = {n: e for n, e in evaluations.items() if not e.passed}
    assert set(failed) == {"aged_payables", "profit_and_loss@last", "transaction_list@last"}, {
        n: e.description for n, e in failed.items()
    }
    assert f"Bill {bill['Id']} (only in QBO)" in failed["transaction_list@last"].description
    ap, pnl = failed["aged_payables"], failed["profit_and_loss@last"]
    ap_rows = [r.data for r in ap.metadata["difference_table"].value.records]
    assert {(r["column"], r["documents"]) for r in ap_rows if r["column"] == "Total"} == {("Total", named_bill)}
    assert named_bill in pnl.description and f"{last_month:%Y-%m}" in pnl.description
    assert "off by 77.70" in pnl.description  # the mirror lacks an expense: its net income is higher

    # Then the sandbox's control API simulates activity the mirror has not synced either.
    changes = company.simulate(40, seed=23)
    changed = {f"{c['entity']} {c['id']}" for c in changes} | {f"Bill {bill['Id']}"}
    evaluations, _ = _check_all(books, realm)
    failed = {n: e for n, e in evaluations.items() if not e.passed}
    assert failed  # (the simulation may even delete the bill above: what fails depends on what it did)
    for name, e in failed.items():
        rows = e.metadata["difference_table"].value.records
        assert rows, name
        for row in rows:
            # Every difference is explained by what changed in QBO, and names only such documents.
            assert row.data["cause"].startswith("QBO changed"), (name, row.data)
            named = {d.split(" (")[0] for d in row.data["documents"].split(", ")}
            # (a bank account's own balance moves with the documents that post to it)
            assert named and {n for n in named if not n.startswith("Account ")} <= changed, (name, named - changed)
        assert e.severity == dg.AssetCheckSeverity.WARN and company.realm_id in e.description

    company.engine().sync(realm)  # the mirror catches up: every check passes again
    evaluations, _ = _check_all(books, realm)
    assert all(e.passed for e in evaluations.values()), {n: e.description for n, e in evaluations.items()
                                                           if not e.passed}  # fmt: skip


def test_a_difference_nothing_in_qbo_explains_is_an_error() -> None:
    lag = Difference(
        "56",
        "Vendor A",
        "Total",
        Decimal("1.00"),
        Decimal("2.00"),
        ("Bill 9 (created in QBO)",),
        cause="QBO changed after the mirror's last sync: `smartsync sync` brings the mirror up to date",
    )
    real = Difference("56", "Vendor A", "Total", Decimal("1.00"), Decimal("2.00"), ("Bill 3",),
                      cause="no change in QBO since the mirror's last sync explains it")  # fmt: skip
    result = Reconciliation("AP aging vs AgedPayables", "1", None, Decimal("1.00"), Decimal("2.00"), [lag])
    assert not result.ok and severity_of(result) == dg.AssetCheckSeverity.WARN
    result.differences.append(real)
    assert severity_of(result) == dg.AssetCheckSeverity.ERROR
    assert "Bill 3" in result.describe() and "Bill 9 (created in QBO)" in result.describe()


def test_the_report_jobs_materialize_every_report_and_run_the_checks(books: MirrorSetup) -> None:
    """The jobs the report schedules launch (one company; one company and this month), in process."""
    realm = books.realms[SEEDED]
    month = dg.MultiPartitionKey({"realm": realm, "month": _utc_today().replace(day=1).isoformat()})
    for job, partition, monthly in (("current_reports", realm, False), ("monthly_reports", month, True)):
        result = books.run_request(dg.RunRequest(partition_key=partition, tags={"smartsync/trigger": "schedule"}), job)
        assert result.success
        reports = {REPORT_KEYS[s.name] for s in REPORTS if (s.partition == MONTHLY) == monthly}
        assert {e.asset_key for e in result.get_asset_materialization_events()} == reports
        evaluations = result.get_asset_check_evaluations()
        assert {e.asset_key for e in evaluations} == {REPORT_KEYS[c.report] for c in COMPARISONS} & reports
        assert all(e.passed and e.check_name == REPORT_RECONCILIATION_CHECK for e in evaluations), [
            e.description for e in evaluations
        ]
