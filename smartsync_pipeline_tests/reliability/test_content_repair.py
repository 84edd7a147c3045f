"""Mirror rows edited behind the engine's back keep their SyncToken, so neither a CDC sync nor a full
sync (which skips unchanged tokens) nor the id/SyncToken reconciliation sees them (issue 15, finding
3). ``reconcile --deep`` compares every row's content with QBO's, repairs what differs through the
sync engine and logs it (op ``repair``, trigger ``reconcile``); the chain and its anchor stay valid."""

from __future__ import annotations

import duckdb
import pytest
from click.testing import CliRunner

from smartsync_pipeline.cli.main import cli
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline_tests.conftest import ConnectedCompany


def _cli(company: ConnectedCompany, *argv: str) -> tuple[int, str]:
    env = {"SMARTSYNC_HOME": str(company.home.root), "DAGSTER_HOME": None, "SMARTSYNC_DEBUG": None}
    result = CliRunner(env=env).invoke(cli, list(argv))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


def _mirror(company: ConnectedCompany, sql: str, params: list | None = None) -> list[tuple]:
    with MirrorDatabase(company.home).inspect() as con:
        return con.execute(sql, params or []).fetchall()


def _attack(company: ConnectedCompany, sql: str, params: list) -> None:
    con = duckdb.connect(str(company.home.realm(company.realm_id).mirror_path))
    try:
        con.execute(sql, params)
        con.execute("CHECKPOINT")
    finally:
        con.close()


@pytest.fixture
def company(connected_company: ConnectedCompany) -> ConnectedCompany:
    connected_company.engine().sync()
    return connected_company


def test_edited_balance_and_document_are_found_repaired_and_logged(company: ConnectedCompany) -> None:
    [(bill_id, balance)] = _mirror(company, "SELECT id, balance FROM bill WHERE balance > 0 ORDER BY id_key LIMIT 1")
    [(vendor_id,)] = _mirror(company, "SELECT id FROM vendor ORDER BY id_key LIMIT 1")
    _attack(company, "UPDATE bill SET balance = 0 WHERE id = ?", [bill_id])
    _attack(
        company,
        'UPDATE vendor SET raw = json_merge_patch(raw, \'{"PrivateNote": "pay me"}\') WHERE id = ?',
        [vendor_id],
    )
    head = _mirror(company, "SELECT max(change_id) FROM change_log")[0][0]

    # What did not notice it before: a CDC sync, a full sync, the id/SyncToken reconciliation.
    assert _cli(company, "sync")[0] == 0
    code, output = _cli(company, "sync", "--full", "--json")
    assert code == 0 and '"repaired": 0' in output, output
    assert _cli(company, "reconcile")[0] == 0
    assert _mirror(company, "SELECT balance FROM bill WHERE id = ?", [bill_id]) == [(0,)]
    assert _mirror(company, "SELECT max(change_id) FROM change_log")[0][0] == head

    code, output = _cli(company, "reconcile", "--deep")

    assert code == 1, output  # tampering was found: not "equal", even though it is repaired now
    assert output.count("repaired 1 row(s) edited outside smartsync") == 2, output
    assert f"Bill {bill_id}: balance differed from QBO at the same SyncToken" in output, output
    assert f"Vendor {vendor_id}: PrivateNote differed from QBO at the same SyncToken" in output, output
    assert _mirror(company, "SELECT balance FROM bill WHERE id = ?", [bill_id]) == [(balance,)]
    assert _mirror(company, "SELECT count(*) FROM vendor WHERE raw->>'$.PrivateNote' = 'pay me'") == [(0,)]
    logged = _mirror(
        company,
        "SELECT entity, entity_id, op, trigger, changed_fields, sync_token_before = sync_token_after "
        "FROM change_log WHERE change_id > ? ORDER BY change_id",
        [head],
    )
    assert sorted(logged) == sorted(
        [("Bill", bill_id, "repair", "reconcile", ["balance"], True),
         ("Vendor", vendor_id, "repair", "reconcile", ["PrivateNote"], True)]
    )  # fmt: skip

    code, output = _cli(company, "audit", "verify")
    assert code == 0 and "change log intact" in output and "head matches the anchor" in output, output
    code, output = _cli(company, "reconcile", "--deep")
    assert code == 0, output  # nothing left to repair


def test_deep_reconcile_of_an_untouched_mirror_finds_nothing(company: ConnectedCompany) -> None:
    company.simulate(30, seed=8)
    assert _cli(company, "sync")[0] == 0
    head = _mirror(company, "SELECT max(change_id) FROM change_log")[0][0]
    code, output = _cli(company, "reconcile", "--deep")
    assert code == 0, output
    assert _mirror(company, "SELECT max(change_id) FROM change_log")[0][0] == head


def test_deep_and_counts_only_do_not_mix(company: ConnectedCompany) -> None:
    code, output = _cli(company, "reconcile", "--deep", "--counts-only")
    assert code == 2 and "cannot be combined" in output
