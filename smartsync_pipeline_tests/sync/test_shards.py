"""Companies are shards: a sync, full reconciliation, publication or audit of one company reads and
writes nothing of another's, holds no lock another company's sync needs, and starts its own chain.
The analyst entry point sees every company through the same views, and holding it open never blocks
a sync."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.mirror import analyst, change_log
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.snapshots import SnapshotStore
from smartsync_pipeline.mirror.views import ANALYST_VIEWS
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.mirror_equality import mirror_differences


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ConnectedCompany]]:
    """Three companies of one sandbox, each synced once into one home (shared by this module's tests,
    which only add activity and syncs)."""
    sandbox = SandboxProcess.start(scale="small", seed=7, realms=3)
    try:
        home = tmp_path_factory.mktemp("shards") / "smartsync_home"
        companies = [ConnectedCompany(home, sandbox, i) for i in range(3)]
        engine = companies[0].engine()
        for company in companies:
            assert engine.sync(company.realm_id).change_id_first == 1  # every company starts its own chain
        yield companies
    finally:
        sandbox.stop()


def fingerprint(root: Path) -> dict[str, tuple]:
    """Every file of a shard: size, modification time and content."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            out[str(path.relative_to(root))] = (
                st.st_size,
                st.st_mtime_ns,
                hashlib.sha256(path.read_bytes()).hexdigest(),
            )
        elif path.is_symlink():
            out[str(path.relative_to(root))] = ("link", os.readlink(path))
    return out


def cli(home, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "SMARTSYNC_HOME": str(home.root)}
    argv = [sys.executable, "-m", "smartsync_pipeline.cli.main", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def test_sync_full_sync_publish_and_audit_of_one_company_touch_nothing_of_another(fleet):
    a, b, c = fleet
    home = a.home
    others = {co.realm_id: fingerprint(home.realm(co.realm_id).root) for co in (b, c)}
    engine = a.engine()
    a.simulate(40, seed=2)
    assert engine.sync(a.realm_id).changed > 0
    assert engine.sync(a.realm_id, ["Bill", "Vendor"], mode="full").mode == "full"
    verified = cli(home, "audit", "verify", "--realm", a.realm_id)
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stderr
    assert cli(home, "audit", "verify", "--realm", a.realm_id, "--snapshot").returncode == 0
    for realm, before in others.items():
        assert fingerprint(home.realm(realm).root) == before, f"company {realm} was touched"
    assert mirror_differences(a) == {}
    for co in fleet:
        with MirrorDatabase(home, co.realm_id).inspect() as con:
            assert change_log.verify(con).ok
            assert con.execute("SELECT DISTINCT realm_id FROM change_log").fetchall() == [(co.realm_id,)]


def test_a_company_busy_with_a_sync_or_held_open_never_delays_another(fleet):
    a, b, _ = fleet
    home = a.home
    shard_b = home.realm(b.realm_id)
    # Another process is in the middle of a long sync of B (its sync and writer locks) and an analyst
    # holds B's write-side file open.
    code = textwrap.dedent(
        f"""
        import sys, duckdb
        from pathlib import Path
        from smartsync_pipeline.locking import FileLock
        locks = Path({str(shard_b.locks_dir)!r})
        with FileLock(locks / "sync.lock").exclusive(10), FileLock(locks / "write.lock").exclusive(10):
            con = duckdb.connect({str(shard_b.mirror_path)!r}, read_only=True)
            print("busy", flush=True)
            sys.stdin.read()
        """
    )
    busy = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert busy.stdout.readline().strip() == "busy"
        assert a.engine().realm_lock(b.realm_id).is_held()
        a.simulate(20, seed=3)
        report = a.engine().sync(a.realm_id, lock_timeout=5)
        assert report.changed > 0 and report.lock_wait_seconds < 1.0
        full = a.engine().sync(a.realm_id, ["Term"], mode="full", lock_timeout=5)
        assert full.lock_wait_seconds < 1.0
        reader = a.reader(record_in_dagster=False)
        assert reader.read("Bill", a.realm_id, max_age=0).provenance.source == "api"
    finally:
        busy.stdin.close()
        busy.wait(10)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return sorted(con.execute(sql, params or []).fetchall(), key=repr)


def test_the_analyst_entry_point_sees_every_company_with_the_same_views(fleet):
    home = fleet[0].home
    realms = sorted(co.realm_id for co in fleet)
    assert not home.analyst_path.exists()  # the one-company link is for one company only
    con = analyst.connect(home)
    try:
        assert analyst.attached_realms(con) == realms
        for realm in realms:
            snapshot = duckdb.connect(str(SnapshotStore(home, realm).current().path), read_only=True)
            try:
                for view in ANALYST_VIEWS:
                    assert _rows(con, f"SELECT * FROM {view} WHERE realm_id = ?", [realm]) == _rows(
                        snapshot, f"SELECT * FROM {view}"
                    ), (realm, view)
                for table in [spec.table for spec in ENTITIES] + ["change_log", "sync_state"]:
                    assert _rows(con, f"SELECT count(*) FROM {table} WHERE realm_id = ?", [realm]) == _rows(
                        snapshot, f"SELECT count(*) FROM {table}"
                    ), (realm, table)
            finally:
                snapshot.close()
        per_realm = con.execute("SELECT realm_id, min(change_id) FROM change_log GROUP BY ALL").fetchall()
        assert sorted(per_realm) == [(r, 1) for r in realms]
        # Read-only for good: no files, no new ATTACH, no way to switch it back on.
        for sql in (
            "SELECT * FROM read_text('/etc/hostname')",
            f"ATTACH '{home.realm(realms[0]).mirror_path}' AS w",
            "SET enable_external_access = true",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
    finally:
        con.close()

    # `duckdb -init analyst.sql` runs the same script in a plain DuckDB session.
    plain = duckdb.connect()
    try:
        for line in home.analyst_script_path.read_text().splitlines():
            if line.strip() and not line.startswith("--"):
                plain.execute(line)
        counts = plain.execute("SELECT realm_id, count(*) FROM bills_due GROUP BY ALL ORDER BY 1").fetchall()
    finally:
        plain.close()
    assert [r for r, _ in counts] == realms

    out = cli(home, "sql", "SELECT realm_id, count(*) AS n FROM bills_due GROUP BY ALL ORDER BY 1", "--csv")
    assert out.returncode == 0, out.stderr
    assert [(r["realm_id"], int(r["n"])) for r in csv.DictReader(io.StringIO(out.stdout))] == counts


def test_holding_the_analyst_entry_point_open_never_blocks_a_sync(fleet):
    a = fleet[0]
    home = a.home
    code = textwrap.dedent(
        f"""
        import sys
        from smartsync_pipeline.home import Home
        from smartsync_pipeline.mirror import analyst
        con = analyst.connect(Home({str(home.root)!r}))
        sql = "SELECT count(*) FROM change_log WHERE realm_id = ?"
        count = lambda c: c.execute(sql, [{a.realm_id!r}]).fetchall()[0][0]
        print(count(con), flush=True)
        for line in sys.stdin:
            if line.strip() == "held":
                print(count(con), flush=True)
            elif line.strip() == "fresh":
                fresh = analyst.connect(Home({str(home.root)!r}))
                print(count(fresh), flush=True)
                fresh.close()
        """
    )
    session = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        first = int(session.stdout.readline())
        for seed in (4, 5, 6):
            a.simulate(20, seed=seed)
            report = a.engine().sync(a.realm_id, lock_timeout=30)
            assert report.changed > 0 and report.lock_wait_seconds < 1.0
        session.stdin.write("held\n")
        session.stdin.flush()
        assert int(session.stdout.readline()) == first  # consistent as of when it opened
        session.stdin.write("fresh\n")
        session.stdin.flush()
        latest = int(session.stdout.readline())
        assert latest > first
        with MirrorDatabase(home, a.realm_id).inspect() as con:
            assert latest == con.execute("SELECT count(*) FROM change_log").fetchall()[0][0]
    finally:
        session.stdin.close()
        session.wait(10)
