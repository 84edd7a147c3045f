"""An attacker with the mirror file cuts or rewrites the newest change-log rows (issue 15, finding 2).

The hash chain alone cannot see that: what is left of a cut chain, or a tail rewritten with its
hashes recomputed, is a valid chain. Before the fix ``audit verify`` said "intact" and the next sync
reused the cut change ids. Now the head is compared with what was recorded outside the chain: the
anchor files (every commit), the Parquet archive, and Dagster's event log."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner

from smartsync_pipeline.cli.main import cli
from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.defs.change_archive import export_changes
from smartsync_pipeline.home import RealmHome
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.smart.materialization import materialization_metadata
from smartsync_pipeline_tests.conftest import ConnectedCompany

CUT = 5


def _cli(company: ConnectedCompany, *argv: str, dagster_home: Path | None = None) -> tuple[int, str]:
    env = {
        "SMARTSYNC_HOME": str(company.home.root),
        "DAGSTER_HOME": str(dagster_home) if dagster_home else None,
        "SMARTSYNC_DEBUG": None,
    }
    result = CliRunner(env=env).invoke(cli, list(argv))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


def _shard(company: ConnectedCompany) -> RealmHome:
    return company.home.realm(company.realm_id)


def _attack(company: ConnectedCompany, *statements: str) -> None:
    """What an attacker does: open the company's mirror file directly, read-write, and change it."""
    con = duckdb.connect(str(_shard(company).mirror_path))
    try:
        for sql in statements:
            con.execute(sql)
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _head(company: ConnectedCompany) -> change_log.ChainHead:
    with MirrorDatabase(company.home).inspect() as con:
        return change_log.head(con)


@pytest.fixture
def company(connected_company: ConnectedCompany) -> ConnectedCompany:
    connected_company.engine().sync()
    connected_company.simulate(40, seed=3)
    connected_company.engine().sync()
    code, output = _cli(connected_company, "audit", "verify")
    assert code == 0 and "change log intact" in output and "head matches the anchor" in output, output
    return connected_company


def test_cut_tail_is_reported_and_never_extended(company: ConnectedCompany) -> None:
    head = _head(company)
    _attack(company, f"DELETE FROM change_log WHERE change_id > {head.change_id - CUT}")
    assert change_log.verify(duckdb.connect(str(_shard(company).mirror_path), read_only=True)).ok  # a valid chain

    code, output = _cli(company, "audit", "verify")
    assert code == 1, output
    missing = f"changes {head.change_id - CUT + 1}..{head.change_id} are missing (cut from the tail)"
    assert "change log BROKEN" in output and missing in output, output

    company.simulate(10, seed=4)
    anchors_before = _shard(company).anchors_path.read_bytes()
    code, output = _cli(company, "sync")
    assert code == 1, output
    [line] = [x for x in output.splitlines() if x.startswith("Error")]
    assert f"company {company.realm_id}: refusing to extend the change log" in line and missing in line, line
    assert "Nothing was written" in line and "smartsync audit verify" in line
    assert _head(company).change_id == head.change_id - CUT  # no change id reused
    assert _shard(company).anchors_path.read_bytes() == anchors_before


def test_tail_rewritten_with_recomputed_hashes_is_caught(company: ConnectedCompany) -> None:
    head = _head(company)
    # Rewrite the last change's document and recompute its content hash and row hash: the chain is
    # internally consistent again.
    con = duckdb.connect(str(_shard(company).mirror_path))
    try:
        con.execute(
            "UPDATE change_log SET after_json = json_object('Id', 'forged') WHERE change_id = ?", [head.change_id]
        )
        prev, content = con.execute(
            f"SELECT prev_hash, sha256({change_log.canonical_sql()}) FROM change_log WHERE change_id = ?",
            [head.change_id],
        ).fetchall()[0]
        con.execute(
            "UPDATE change_log SET row_hash = ? WHERE change_id = ?", [change_log.chain(prev, content), head.change_id]
        )
        con.execute("CHECKPOINT")
        assert change_log.verify(con).ok
    finally:
        con.close()

    code, output = _cli(company, "audit", "verify")
    assert code == 1 and f"change {head.change_id} was rewritten" in output, output
    code, output = _cli(company, "sync")
    assert code == 1 and "refusing to extend the change log" in output, output


def test_archive_and_dagster_catch_a_cut_when_the_anchors_are_gone_too(
    company: ConnectedCompany, tmp_path: Path
) -> None:
    """The attacker also deletes the anchor file: the archive and Dagster's event log still know."""
    home = company.home
    with MirrorDatabase(home).inspect() as con:
        head = change_log.head(con)
        export_changes(con, _shard(company).archive_dir, after_change_id=0, through_change_id=head.change_id)
    # Dagster recorded the head the way a mirror materialization does.
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("")
    report = company.engine().sync()  # nothing new: records the same head
    report.change_id_last, report.chain_head_hash = head.change_id, head.row_hash
    entity = next(iter(report.entities))
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=MIRROR_KEYS[entity], partition=company.realm_id,
                metadata=materialization_metadata(report, entity, "auto"),
            )
        )  # fmt: skip

    _attack(company, f"DELETE FROM change_log WHERE change_id > {head.change_id - CUT}")
    _shard(company).anchors_path.unlink()

    code, output = _cli(company, "audit", "verify", dagster_home=dagster_home)
    assert code == 1, output
    cut = f"{head.change_id - CUT + 1}..{head.change_id}"
    assert f"the archive holds changes the change log no longer has: {cut}" in output, output
    assert f"Dagster's qbo/{MIRROR_KEYS[entity].path[-1]} materialization" in output, output
    assert f"changes {cut} are missing" in output, output


def test_verify_names_no_problem_on_an_untouched_trail_with_everything_configured(
    company: ConnectedCompany, tmp_path: Path
) -> None:
    with MirrorDatabase(company.home).inspect() as con:
        export_changes(
            con, _shard(company).archive_dir, after_change_id=0, through_change_id=change_log.head(con).change_id
        )
    dagster_home = tmp_path / "dh"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("")
    code, output = _cli(company, "audit", "verify", dagster_home=dagster_home)
    assert code == 0, output
    assert "head matches the anchor" in output and "archived changes checked" in output
    assert json.dumps(output)  # printable
