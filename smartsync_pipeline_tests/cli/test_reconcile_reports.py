"""``smartsync reconcile --reports``: the mirror against QBO's reports from a shell, on a real sandbox
company. Equal to the cent after a sync (exit 0); after activity the mirror has not synced (the
sandbox's control API, and a bill written through the API into last month), exit 1 with the
difference table naming the documents; --json carries the same."""

from __future__ import annotations

import json
from datetime import date, timedelta

import click
import duckdb
import pytest
from click.testing import CliRunner

from smartsync_pipeline.cli.main import cli
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.schema import record_data_version
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.sync.report_reconciliation import COMPARISONS
from smartsync_pipeline_tests.conftest import ConnectedCompany


def run(*args: str, exit_code: int = 0) -> click.testing.Result:
    result = CliRunner().invoke(cli, ["reconcile", *args], env={"COLUMNS": "200"}, catch_exceptions=False)
    assert result.exit_code == exit_code, result.output
    return result


@pytest.fixture
def synced(connected_company: ConnectedCompany) -> ConnectedCompany:
    connected_company.simulate(30, seed=5)
    connected_company.engine().sync(connected_company.realm_id, mode="full")
    return connected_company


def test_a_synced_company_equals_its_reports_to_the_cent(synced: ConnectedCompany) -> None:
    doc = json.loads(run("--reports", "--months", "2", "--json").output)
    assert doc["ok"] is True and doc["realm_id"] == synced.realm_id
    rows = doc["comparisons"]
    assert [r["comparison"] for r in rows] == ["ap_aging", "ar_aging", "cash"] + ["net_income"] * 3 + ["documents"] * 3
    assert all(r["ok"] and not r["differences"] for r in rows)
    assert all(r["mirror_total"] == r["report_total"] for r in rows)
    assert all(r["figures_compared"] > 0 for r in rows[:6]) and rows[-2]["figures_compared"] > 0
    assert all(r["mirror_total"] != "0.00" for r in rows[:3])
    months = [r["period"] for r in rows[3:6]]
    assert months == sorted(months) == [r["period"] for r in rows[6:]] and len(set(months)) == 3
    table = run("--reports", "--months", "0").output
    assert table.count("equal to the cent") == len(COMPARISONS)


def test_changes_behind_the_mirrors_back_exit_1_naming_the_documents(synced: ConnectedCompany) -> None:
    realm = synced.realm_id
    store = CompanyStore(synced.home)
    with QBOClient(store.load(realm), store.tokens(realm), home=synced.home) as client:
        vendor = client.query("SELECT * FROM Vendor WHERE Active = true MAXRESULTS 1").items[0]
        account = client.query("SELECT * FROM Account WHERE AccountType = 'Expense' MAXRESULTS 1").items[0]
        line = {"Amount": 12.34, "DetailType": "AccountBasedExpenseLineDetail",
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account["Id"]}}}  # fmt: skip
        today = date.fromisoformat(synced.sandbox.control("clock", method="GET")["now"][:10])
        first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
        bill = client.create("Bill", {"VendorRef": {"value": vendor["Id"]}, "Line": [line],
                                      "TxnDate": (first + timedelta(days=5)).isoformat()})  # fmt: skip
    named = f"Bill {bill['Id']} (created in QBO)"

    # One bill written through the API into last month, not synced: exactly that is named, to the cent.
    out = run("--reports", "--months", "1", exit_code=1).output
    assert named in out and realm in out and "QBO changed after the mirror's last sync" in out
    doc = json.loads(run("--reports", "--months", "1", "--json", exit_code=1).output)
    rows = {(r["comparison"], r["period"]): r for r in doc["comparisons"]}
    assert doc["ok"] is False and {k for k, r in rows.items() if not r["ok"]} == {
        ("ap_aging", "current"), ("net_income", f"{first:%Y-%m}"), ("documents", f"{first:%Y-%m}")}  # fmt: skip
    (diff,) = rows[("net_income", f"{first:%Y-%m}")]["differences"]
    assert diff["documents"] == [named] and diff["difference"] == "12.34"
    (only_in_qbo,) = rows[("documents", f"{first:%Y-%m}")]["differences"]
    assert only_in_qbo["key"] == f"Bill {bill['Id']}" and only_in_qbo["documents"] == [named]
    ap = [d for d in rows[("ap_aging", "current")]["differences"] if d["column"] == "Total"]
    assert [(d["key"], d["documents"], d["difference"]) for d in ap] == [(vendor["Id"], [named], "-12.34")]

    # Then the sandbox's control API simulates activity, not synced either: only changed documents are named.
    changes = synced.simulate(25, seed=41)
    changed = {f"{c['entity']} {c['id']}" for c in changes} | {f"Bill {bill['Id']}"}
    doc = json.loads(run("--reports", "--months", "1", "--json", exit_code=1).output)
    for r in doc["comparisons"]:
        for d in r["differences"]:
            names = {x.split(" (")[0] for x in d["documents"]}
            assert names and {n for n in names if not n.startswith("Account ")} <= changed, (r["comparison"], d)
            assert d["cause"].startswith("QBO changed after the mirror's last sync"), d

    synced.engine().sync(realm)  # the mirror catches up
    assert json.loads(run("--reports", "--months", "1", "--json").output)["ok"] is True


def test_a_company_without_a_mirror_is_told_to_sync_first(connected_company: ConnectedCompany) -> None:
    before = connected_company.sandbox.control("stats", method="GET")
    result = CliRunner().invoke(cli, ["reconcile", "--reports"])
    assert result.exit_code == 1 and "run `smartsync sync` first" in result.output, result.output
    assert "Traceback" not in result.output
    after = connected_company.sandbox.control("stats", method="GET")
    assert after == before  # nothing was asked of QBO


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--reports", "--deep"), "cannot be combined"),
        (("--reports", "--entity", "Bill"), "cannot be combined"),
        (("--json",), "--json goes with --reports"),
        (("--reports", "--months", "-1"), "-1"),
    ],
)
def test_bad_combinations_are_refused(args: tuple[str, ...], message: str) -> None:
    result = CliRunner().invoke(cli, ["reconcile", *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_mirror_edited_behind_the_engines_back_is_a_disagreement_naming_its_documents(
    synced: ConnectedCompany,
) -> None:
    """No change in QBO explains it: the mirror's own documents behind the figure are named, and
    `reconcile --deep` (which repairs content at the same SyncToken) makes the figures equal again."""
    with MirrorDatabase(synced.home).inspect() as con:
        bill_id, vendor_id, balance = con.execute(
            "SELECT id, vendor_id, balance FROM bill WHERE balance > 0 AND NOT is_deleted ORDER BY id_key LIMIT 1"
        ).fetchone()
    con = duckdb.connect(str(synced.home.realm(synced.realm_id).mirror_path))
    try:
        con.execute("UPDATE bill SET balance = 0 WHERE id = ?", [bill_id])
        # A writer the change log does not describe (kind "other"): the next snapshot is a full copy, so
        # the edit reaches what readers and the comparison see.
        record_data_version(con, "other")
        con.execute("CHECKPOINT")
    finally:
        con.close()

    doc = json.loads(run("--reports", "--months", "0", "--json", exit_code=1).output)
    rows = {r["comparison"]: r for r in doc["comparisons"]}
    assert not rows["ap_aging"]["ok"] and rows["ar_aging"]["ok"] and rows["cash"]["ok"]
    assert rows["net_income"]["ok"] and rows["documents"]["ok"]  # a balance moves the aging, not income
    diffs = [d for d in rows["ap_aging"]["differences"] if d["column"] == "Total"]
    assert [(d["key"], d["difference"]) for d in diffs] == [(vendor_id, str(-balance))]
    # QBO's documents of that vendor, read now and compared one by one, name the edited bill and field.
    assert diffs[0]["documents"] == [f"Bill {bill_id} (balance: mirror 0.00 vs QBO {balance})"]
    assert "the mirror and QBO disagree" in diffs[0]["cause"]

    assert CliRunner().invoke(cli, ["reconcile", "--deep"]).exit_code == 1  # repaired (and reported)
    assert json.loads(run("--reports", "--months", "0", "--json").output)["ok"] is True
