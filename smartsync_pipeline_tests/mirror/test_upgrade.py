"""An existing single-file mirror (all companies in ``mirror.duckdb``, one hash chain, one
``snapshots/CURRENT``), written by the code of the last single-file release itself, upgrades in place
on first use with nothing lost: every row compared row by row, every company's chain verifies, the old
file is kept with its own chain intact, and syncing carries on. A failed upgrade changes nothing and
is redone; a broken old chain stops it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror import analyst, change_log, upgrade
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.reports import ReportRun, store_run, verify_runs
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.mirror.test_snapshots import TABLES, table_digests
from smartsync_pipeline_tests.mirror_equality import mirror_differences

REPO = Path(__file__).resolve().parents[2]
# The last commit whose engine keeps every company in one mirror file (the layout being upgraded).
LEGACY_COMMIT = "f9f4f19"
RUN_LEGACY = textwrap.dedent(
    """
    import sys
    legacy = sys.argv[1]
    # This checkout is installed in editable mode; its import hook must not shadow the legacy code.
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
    sys.path.insert(0, legacy)
    import smartsync_pipeline
    assert smartsync_pipeline.__file__.startswith(legacy), smartsync_pipeline.__file__
    from smartsync_pipeline.cli.main import cli
    cli(sys.argv[2:], standalone_mode=True)
    """
)


@pytest.fixture(scope="module")
def legacy_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as of LEGACY_COMMIT, extracted from this repository's history."""
    target = tmp_path_factory.mktemp("legacy_code")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", LEGACY_COMMIT, "smartsync_pipeline"], capture_output=True, timeout=120
    )
    if archive.returncode != 0:
        pytest.fail(f"cannot read commit {LEGACY_COMMIT} from the repository's history: {archive.stderr.decode()}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True, timeout=120)
    return target


def legacy(code: Path, home: Path, *args: str) -> str:
    env = {**os.environ, "SMARTSYNC_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    out = subprocess.run(
        [sys.executable, "-c", RUN_LEGACY, str(code), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SMARTSYNC_HOME": str(home)}
    argv = [sys.executable, "-m", "smartsync_pipeline.cli.main", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def legacy_home(legacy_code: Path, tmp_path_factory: pytest.TempPathFactory):
    """A home written entirely by the legacy code: two companies, interleaved syncs (so one global
    chain alternates between them), a published snapshot, the analyst link."""
    root = tmp_path_factory.mktemp("legacy_home") / "home"
    sandbox = SandboxProcess.start(scale="small", seed=7, realms=2)
    try:
        info = sandbox.info
        realms = [r["realm_id"] for r in info["realms"]]
        for realm in info["realms"]:
            legacy(
                legacy_code, root, "connect", "--no-verify", "--api-base", info["api_base"],
                "--token-url", info["token_url"], "--realm", realm["realm_id"], "--client-id", info["client_id"],
                "--client-secret", info["client_secret"], "--refresh-token", realm["refresh_token"],
            )  # fmt: skip
        for realm in realms:
            legacy(legacy_code, root, "sync", "--realm", realm, "--json")
        for seed, realm in enumerate(realms * 2):
            sandbox.control("simulate", {"realm_id": realm, "operations": 25, "seed": 50 + seed})
            legacy(legacy_code, root, "sync", "--realm", realm, "--json")
        assert (root / "mirror.duckdb").exists() and (root / "snapshots" / "CURRENT").exists()
        assert not (root / "realms").exists()
        yield root, sandbox, realms
    finally:
        sandbox.stop()


def test_a_broken_single_file_chain_stops_the_upgrade_and_changes_nothing(legacy_home, tmp_path):
    source, _, _ = legacy_home
    root = tmp_path / "home"
    shutil.copytree(source, root, symlinks=True)
    con = duckdb.connect(str(root / "mirror.duckdb"))
    con.execute("UPDATE change_log SET op = 'delete' WHERE change_id = 40")
    con.close()
    before = sha256(root / "mirror.duckdb")
    with pytest.raises(upgrade.UpgradeError, match="broken at change 40"):
        upgrade.ensure_upgraded(Home(root))
    assert sha256(root / "mirror.duckdb") == before
    assert Home(root).realm_ids() == []
    refused = cli(root, "audit", "verify")  # a clear line, not a traceback
    assert refused.returncode == 1 and "broken at change 40" in refused.stderr and "Traceback" not in refused.stderr


def test_the_single_file_mirror_upgrades_in_place_with_nothing_lost(legacy_home, tmp_path, monkeypatch):
    source, sandbox, realms = legacy_home
    root = tmp_path / "home"
    shutil.copytree(source, root, symlinks=True)
    reference = tmp_path / "reference.duckdb"
    shutil.copyfile(root / "mirror.duckdb", reference)
    home = Home(root)

    # An upgrade that dies before its commit point leaves the single file where it was ...
    def die(*_args, **_kwargs):
        raise RuntimeError("killed before the commit point")

    with monkeypatch.context() as m:
        m.setattr(upgrade, "_retire_legacy", die)
        with pytest.raises(RuntimeError, match="commit point"):
            upgrade.ensure_upgraded(home)
    assert sha256(root / "mirror.duckdb") == sha256(reference)

    # ... and the next first use does it all.
    verified = cli(root, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    for realm in realms:
        assert f"company {realm}: change log intact" in verified.stdout
    assert not (root / "mirror.duckdb").exists()
    kept = root / "legacy" / "mirror-single-file.duckdb"
    assert sha256(kept) == sha256(reference) and oct(kept.stat().st_mode & 0o777) == "0o444"
    assert (root / "legacy" / "snapshots" / "CURRENT").exists() and not (root / "snapshots").exists()
    record = json.loads((root / "legacy" / "UPGRADE.json").read_text())

    old = duckdb.connect(str(reference), read_only=True)
    try:
        old_chain = change_log.verify(old)
        assert old_chain.ok
        assert record["legacy_chain_head"] == {
            "change_id": old_chain.head.change_id,
            "row_hash": old_chain.head.row_hash,
        }
        total_changes = 0
        for realm in realms:
            with MirrorDatabase(home, realm).inspect() as new:
                legacy_tables = {r[0] for r in rows(old, "SELECT table_name FROM duckdb_tables()")}
                for spec in ENTITIES:  # every row, every column
                    order = "ORDER BY id_key, id"
                    if spec.table not in legacy_tables:  # an entity the legacy code did not know: empty table
                        assert rows(new, f"SELECT count(*) FROM {spec.table}") == [(0,)]
                        continue
                    assert rows(new, f"SELECT * FROM {spec.table} {order}") == rows(
                        old, f"SELECT * FROM {spec.table} WHERE realm_id = ? {order}", [realm]
                    ), (realm, spec.table)
                assert rows(new, "SELECT * FROM sync_state ORDER BY entity") == rows(
                    old, "SELECT * FROM sync_state WHERE realm_id = ? ORDER BY entity", [realm]
                )
                fields = ", ".join(change_log.CONTENT_FIELDS[1:])
                new_log = rows(new, f"SELECT change_id, {fields} FROM change_log ORDER BY change_id")
                old_log = rows(
                    old, f"SELECT change_id, {fields} FROM change_log WHERE realm_id = ? ORDER BY change_id", [realm]
                )
                assert [r[1:] for r in new_log] == [r[1:] for r in old_log]  # the same changes, in order
                assert [r[0] for r in new_log] == list(range(1, len(old_log) + 1))  # numbered per company
                chain = change_log.verify(new)
                assert chain.ok and chain.rows_checked == len(old_log) > 0
                company = record["companies"][realm]
                assert company["changes"] == len(old_log)
                assert company["legacy_first_change_id"] == old_log[0][0]
                assert company["legacy_last_change_id"] == old_log[-1][0]
                assert company["chain_head"] == {"change_id": chain.head.change_id, "row_hash": chain.head.row_hash}
                total_changes += len(old_log)
                # What readers see is the upgraded mirror.
                mirror = table_digests(new)
            snapshot = duckdb.connect(str(home.realm(realm).current_link), read_only=True)
            try:
                assert table_digests(snapshot) == mirror
            finally:
                snapshot.close()
        assert total_changes == old_chain.rows_checked  # no change lost, none invented
    finally:
        old.close()
    assert set(TABLES) >= {"change_log", "sync_state"}

    # Analysts see both companies; syncing carries on from the upgraded watermarks.
    con = analyst.connect(home)
    assert analyst.attached_realms(con) == sorted(realms)
    con.close()
    sandbox.control("simulate", {"realm_id": realms[0], "operations": 20, "seed": 99})
    synced = cli(root, "sync", "--realm", realms[0], "--json")
    assert synced.returncode == 0, synced.stderr
    report = json.loads(synced.stdout)
    # Entities the legacy code mirrored carry on incrementally; ones it did not know start with a full sync.
    modes = {name: e["mode"] for name, e in report["entities"].items()}
    known = {spec.name for spec in ENTITIES if spec.table in legacy_tables}
    assert {modes[name] for name in known} == {"incremental"}
    assert {modes[name] for name in set(modes) - known} == {"full"}
    assert report["change_id_first"] == record["companies"][realms[0]]["changes"] + 1
    company = ConnectedCompany.__new__(ConnectedCompany)
    company.home, company.sandbox, company.realm_id = home, sandbox, realms[0]
    assert mirror_differences(company) == {}


def _add_report_runs(mirror: Path, realms: list[str]) -> list[tuple[str, str]]:
    """Report runs stored in the single file the way the reports code did before shards: one run log
    for every company (run_seq 1, 2, 3 alternating between them). Returns (realm, content hash)."""
    con = duckdb.connect(str(mirror))
    stored = []
    try:
        for i, realm in enumerate([realms[0], realms[1], realms[0]]):
            month = date(2026, i + 1, 1)
            run = ReportRun(
                realm, "ProfitAndLoss", f"{month:%Y-%m}", month, month.replace(day=28), "{}", f"{i:064d}",
                1, 1, 0, False, datetime(2026, 5, 1, 12, tzinfo=UTC), "manual",
            )  # fmt: skip
            cell = (month, month.replace(day=28), 1, "data", ["Income"], "Income", None, "Sales", "1", "total",
                    "Total", None, None, f"{10 + i}.00", Decimal(f"{10 + i}.00"), None)  # fmt: skip
            con.execute("BEGIN TRANSACTION")
            store_run(con, run, [cell], today=date(2026, 6, 1))
            con.execute("COMMIT")
            stored.append((realm, run.content_hash))
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return stored


def test_report_runs_of_the_single_file_are_split_per_company_and_re_chained(legacy_home, tmp_path):
    source, _, realms = legacy_home
    root = tmp_path / "home"
    shutil.copytree(source, root, symlinks=True)
    stored = _add_report_runs(root / "mirror.duckdb", realms)
    home = Home(root)
    upgrade.ensure_upgraded(home)
    record = json.loads((root / "legacy" / "UPGRADE.json").read_text())
    for realm in realms:
        mine = [h for r, h in stored if r == realm]
        with MirrorDatabase(home, realm).inspect() as new:
            assert verify_runs(new).ok and verify_runs(new).rows_checked == len(mine)
            assert rows(new, "SELECT run_seq, realm_id, content_hash FROM report_run ORDER BY run_seq") == [
                (seq, realm, h) for seq, h in enumerate(mine, start=1)
            ]
            cells = rows(new, "SELECT c.run_seq, r.content_hash, c.amount FROM report_cell c JOIN report_run r "
                         "USING (run_seq) ORDER BY c.run_seq")  # fmt: skip
            assert [(seq, h) for seq, h, _ in cells] == list(enumerate(mine, start=1))
        assert record["companies"][realm]["report_runs"] == len(mine)
    con = analyst.connect(home)
    try:
        assert con.sql("SELECT realm_id, count(*) FROM report_runs GROUP BY ALL ORDER BY 1").fetchall() == sorted(
            (realm, sum(1 for r, _ in stored if r == realm)) for realm in realms
        )
    finally:
        con.close()


def test_a_broken_single_file_report_log_stops_the_upgrade(legacy_home, tmp_path):
    source, _, realms = legacy_home
    root = tmp_path / "home"
    shutil.copytree(source, root, symlinks=True)
    _add_report_runs(root / "mirror.duckdb", realms)
    con = duckdb.connect(str(root / "mirror.duckdb"))
    con.execute("UPDATE report_run SET closed_period = NOT closed_period WHERE run_seq = 2")
    con.close()
    before = sha256(root / "mirror.duckdb")
    with pytest.raises(upgrade.UpgradeError, match="report run log is broken at run 2"):
        upgrade.ensure_upgraded(Home(root))
    assert sha256(root / "mirror.duckdb") == before and Home(root).realm_ids() == []
