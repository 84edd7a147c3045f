"""The change_log asset: full then incremental verification, append-only Parquet archive, and a run
that fails naming the first broken change once history is rewritten in the mirror file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from smartsync_pipeline.defs.assets.change_log import CHANGE_LOG_KEY
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline_tests.defs.conftest import MirrorSetup, start_mirror_setup


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    yield from start_mirror_setup(tmp_path_factory.mktemp("change_log"), realms=1, ephemeral=True)


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    """The run's metadata, with the one company's anchor and row of the companies table merged in."""
    [event] = result.get_asset_materialization_events()
    assert event.materialization.asset_key == CHANGE_LOG_KEY
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    [company] = meta["companies"].records
    [anchor] = meta["anchors"].values()
    return {**company.data, **anchor, **meta}


def _archive_dir(setup: MirrorSetup) -> Path:
    return setup.home.realm(setup.realms[0]).archive_dir


def _archive(setup: MirrorSetup) -> dict[Path, str]:
    return {
        p.relative_to(_archive_dir(setup)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(_archive_dir(setup).rglob("*.parquet"))
    }


def _change_count(setup: MirrorSetup) -> int:
    with MirrorDatabase(setup.home).inspect() as con:
        return con.execute("SELECT count(*) FROM change_log").fetchall()[0][0]


def test_first_run_verifies_everything_and_archives_every_change(setup: MirrorSetup) -> None:
    setup.materialize(setup.realms[0])
    total = _change_count(setup)
    result = setup.run_change_log()
    meta = _metadata(result)
    assert meta["rows_verified"] == total and meta["head_change_id"] == total
    assert meta["verified_from"] == "full verify from genesis"
    assert meta["exported_through_change_id"] == total and meta["archived_rows"] == total
    by_op = {(r.data["entity"], r.data["op"]): r.data["changes"] for r in meta["new_changes_by_entity_op"].records}
    assert sum(by_op.values()) == total and {op for _, op in by_op} == {"create"}
    assert by_op[("Bill", "create")] > 0

    files = _archive(setup)
    assert len(files) == 1
    [name] = files
    assert name.parent.name.startswith("date=") and name.name == f"changes-{1:012d}-{total:012d}.parquet"
    table = pq.read_table(_archive_dir(setup) / name)
    assert table.num_rows == total
    assert table.column("change_id").to_pylist() == list(range(1, total + 1))
    assert "row_hash" in table.column_names and "after_json" in table.column_names

    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "chain_intact" and check.passed


def test_next_run_verifies_and_archives_only_new_changes_without_touching_old_files(setup: MirrorSetup) -> None:
    before_files = _archive(setup)
    before = _change_count(setup)
    changes = setup.companies[0].simulate(15, seed=3)
    assert changes
    setup.materialize(setup.realms[0])
    after = _change_count(setup)
    assert after > before

    meta = _metadata(setup.run_change_log())
    assert meta["verified_from"] == f"from change {before}"
    assert meta["rows_verified"] == after - before
    assert meta["archived_rows"] == after - before and meta["head_change_id"] == after
    ops = {r.data["op"] for r in meta["new_changes_by_entity_op"].records}
    assert ops <= {"create", "update", "delete"} and ops - {"create"}  # the simulator edits and deletes too

    files = _archive(setup)
    assert {k: files[k] for k in before_files} == before_files  # old files byte-identical
    [new] = set(files) - set(before_files)
    assert new.name == f"changes-{before + 1:012d}-{after:012d}.parquet"
    assert pq.read_table(_archive_dir(setup) / new).num_rows == after - before

    # Nothing new: a run verifies nothing, archives nothing, writes no file.
    idle = _metadata(setup.run_change_log())
    assert idle["rows_verified"] == 0 and idle["archived_rows"] == 0 and _archive(setup) == files


def _tamper(setup: MirrorSetup, sql: str, params: list | None = None) -> None:
    """Rewrite history in the authoritative mirror file, holding the writer lock as a sync would."""
    db = MirrorDatabase(setup.home)
    with db.locked():
        con = duckdb.connect(str(db.path))
        try:
            con.execute(sql, params or [])
            con.execute("CHECKPOINT")
        finally:
            con.close()


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.step_failure_data.user_failure_data.description


def test_rewritten_history_fails_the_run_and_the_chain_check_names_the_change(setup: MirrorSetup) -> None:
    with MirrorDatabase(setup.home).inspect() as con:
        realm, entity, entity_id = con.execute(
            "SELECT realm_id, entity, entity_id FROM change_log WHERE change_id = 7"
        ).fetchall()[0]
    _tamper(setup, 'UPDATE change_log SET after_json = \'{"Id": "forged"}\' WHERE change_id = 7')
    # Change 7 is older than the asset's anchor: only the full verification (the check) can see it.
    result = setup.run_change_log(raise_on_error=False)
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description.startswith(f"chain BROKEN at change 7 [realm {realm}, {entity} {entity_id} (create)]")
    assert "modified after it was recorded" in check.description

    # New changes arrive; one of them is rewritten before the next audit: the asset's incremental
    # verification fails the run and names it.
    anchor = _change_count(setup)
    setup.companies[0].simulate(10, seed=5)
    setup.materialize(setup.realms[0])
    forged = anchor + 2
    _tamper(setup, "UPDATE change_log SET sync_token_after = '999' WHERE change_id = ?", [forged])
    message = _failure_message(setup.run_change_log(raise_on_error=False, with_check=False))
    assert message.startswith(f"change log chain is BROKEN at change {forged} [realm {setup.realms[0]}, ")
    assert "was modified after it was recorded" in message and f"verified after verified change {anchor}" in message


def test_a_rewritten_anchor_row_fails_the_run(setup: MirrorSetup) -> None:
    # The anchor is the head recorded by the last successful materialization; its row is re-hashed.
    event = setup.instance.get_latest_materialization_event(CHANGE_LOG_KEY)
    anchor = event.asset_materialization.metadata["anchors"].value[setup.realms[0]]["head_change_id"]
    # (Always a different op: the anchor row may itself be a delete.)
    _tamper(setup, "UPDATE change_log SET op = CASE op WHEN 'delete' THEN 'update' ELSE 'delete' END "
                   "WHERE change_id = ?", [anchor])  # fmt: skip
    message = _failure_message(setup.run_change_log(raise_on_error=False, with_check=False))
    assert message.startswith(f"change log chain is BROKEN at change {anchor} [")
    assert f"change {anchor} was modified after it was recorded" in message


@pytest.fixture
def fresh_setup(tmp_path: Path):
    yield from start_mirror_setup(tmp_path, realms=1, ephemeral=True)


def test_a_cut_tail_fails_the_run_naming_the_missing_changes(fresh_setup: MirrorSetup) -> None:
    """Deleting the newest rows leaves a valid, shorter chain; the anchor knows the head it had."""
    setup = fresh_setup
    setup.materialize(setup.realms[0])
    setup.companies[0].simulate(10, seed=9)
    setup.materialize(setup.realms[0])
    head = _change_count(setup)
    _tamper(setup, "DELETE FROM change_log WHERE change_id > ?", [head - 3])
    message = _failure_message(setup.run_change_log(raise_on_error=False, with_check=False))
    assert message.startswith("change log tail does not match its anchor: the chain ends at change")
    assert f"changes {head - 2}..{head} are missing (cut from the tail)" in message
