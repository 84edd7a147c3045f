"""The report assets as real Dagster runs on a sandbox company: partitions by (company, month) or by
company, tidy tables whose totals are the report's grand totals to the cent, and the trail of a closed
month whose report changed (metadata, data version, run log)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from smartsync_pipeline.definitions import defs
from smartsync_pipeline.defs.assets.reports import REPORT_ASSETS, REPORT_KEYS, monthly_by_realm
from smartsync_pipeline.entities.reports import MONTHLY, REPORTS
from smartsync_pipeline.qbo.client import QBOClient
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline_tests.defs.conftest import MirrorSetup, start_mirror_setup


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[MirrorSetup]:
    yield from start_mirror_setup(tmp_path, realms=1, ephemeral=True)


def _asset(name: str) -> dg.AssetsDefinition:
    return next(a for a in REPORT_ASSETS if a.key == REPORT_KEYS[name])


def _materialize(setup: MirrorSetup, name: str, partition: str | dg.MultiPartitionKey) -> dict:
    result = dg.materialize([_asset(name)], instance=setup.instance, partition_key=partition,
                            resources=setup.resources)  # fmt: skip
    assert result.success
    (event,) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _month(setup: MirrorSetup, realm: str, first: date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"realm": realm, "month": first.isoformat()})


def test_one_report_asset_per_registry_report() -> None:
    graph = defs.resolve_asset_graph()
    for spec in REPORTS:
        node = graph.get(REPORT_KEYS[spec.name])
        assert node.group_name == "qbo_reports"
        expected = monthly_by_realm if spec.partition == MONTHLY else dg.DynamicPartitionsDefinition(name="realms")
        assert node.partitions_def == expected
        assert node.freshness_policy.fail_window.to_timedelta() == spec.freshness.fail
        assert node.freshness_policy.warn_window.to_timedelta() == spec.freshness.warn


def test_report_assets_materialize_and_tidy_totals_equal_the_grand_totals(setup: MirrorSetup) -> None:
    realm = setup.realms[0]
    aging = _materialize(setup, "AgedPayables", realm)
    today = date.fromisoformat(aging["period"].split("..")[1])
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    pnl = _materialize(setup, "ProfitAndLoss", _month(setup, realm, first))
    assert pnl["period_key"] == f"{first:%Y-%m}" and pnl["closed_period"] and not pnl["changed"]
    net = Decimal(pnl["grand_totals"]["NetIncome"]["total"])
    ap_total = Decimal(aging["grand_totals"]["GrandTotal"]["Total"])
    with duckdb.connect(str(setup.home.analyst_path), read_only=True) as con:
        sections = dict(con.execute(
            "SELECT section_path[1], sum(amount) FROM report_profit_and_loss WHERE realm_id = ? AND period_key = ? "
            "AND row_type = 'data' GROUP BY 1", [realm, pnl["period_key"]]).fetchall())  # fmt: skip
        vendors = con.execute(
            "SELECT sum(amount) FROM report_aged_payables WHERE realm_id = ? AND row_type = 'data' "
            "AND column_key = 'Total'", [realm]).fetchone()[0]  # fmt: skip
        runs = con.execute("SELECT report, content_hash FROM report_runs WHERE realm_id = ?", [realm]).fetchall()
    hashes = dict(runs)
    income = sections.get("Income", Decimal(0)) + sections.get("Other Income", Decimal(0))
    costs = sum((sections.get(k, Decimal(0)) for k in ("Cost of Goods Sold", "Expenses", "Other Expenses")),
                Decimal(0))  # fmt: skip
    assert income - costs == net != 0
    assert vendors == ap_total != 0
    assert hashes == {"AgedPayables": aging["content_hash"], "ProfitAndLoss": pnl["content_hash"]}


def test_a_changed_closed_month_shows_in_the_asset_trail(setup: MirrorSetup) -> None:
    realm = setup.realms[0]
    today = date.fromisoformat(_materialize(setup, "AgedPayables", realm)["period"].split("..")[1])
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    partition = _month(setup, realm, first)
    before = _materialize(setup, "ProfitAndLoss", partition)
    store = CompanyStore(setup.home)
    with QBOClient(store.load(realm), store.tokens(realm), home=setup.home) as client:
        vendor = client.query("SELECT * FROM Vendor WHERE Active = true MAXRESULTS 1").items[0]
        account = client.query("SELECT * FROM Account WHERE AccountType = 'Expense' MAXRESULTS 1").items[0]
        line = {"Amount": 250.0, "DetailType": "AccountBasedExpenseLineDetail",
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account["Id"]}}}  # fmt: skip
        day = (first + timedelta(days=9)).isoformat()
        client.create("Bill", {"VendorRef": {"value": vendor["Id"]}, "TxnDate": day, "Line": [line]})
    after = _materialize(setup, "ProfitAndLoss", partition)
    assert after["changed"] and after["closed_period_changed"]
    assert after["previous_hash"] == before["content_hash"] != after["content_hash"]
    net = [Decimal(m["grand_totals"]["NetIncome"]["total"]) for m in (before, after)]
    assert net[0] - net[1] == Decimal("250.00")
    records = setup.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=REPORT_KEYS["ProfitAndLoss"], asset_partitions=[str(partition)]), limit=10
    ).records
    versions = [r.asset_materialization.tags.get("dagster/data_version") for r in records]
    assert versions == [after["content_hash"], before["content_hash"]]
    assert after["report_run_seq"] == before["report_run_seq"] + 1
