"""Published snapshots equal the mirror, whether a publish copied the file or caught an older
snapshot up with only the changes; readers holding a snapshot open never block a publish; published
files are read-only and an edited one is never built upon; a killed publisher's leftovers go away;
whatever changes the mirror's data reaches readers, change log or not."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap

import duckdb

from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.snapshots import SnapshotReader, SnapshotStore, seal

TABLES = [e.table for e in ENTITIES] + ["change_log", "sync_state", "schema_version", "data_versions"]


def table_digests(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str]]:
    out = {}
    for table in TABLES:
        cols = "* EXCLUDE (applied_at)" if table == "schema_version" else "*"
        cols = "* EXCLUDE (recorded_at)" if table == "data_versions" else cols
        out[table] = con.execute(
            f"SELECT count(*), md5(coalesce(string_agg(CAST(t AS VARCHAR), '|' ORDER BY CAST(t AS VARCHAR)), '')) "
            f"FROM (SELECT {cols} FROM {table}) t"
        ).fetchall()[0]
    return out


def mirror_digests(home) -> dict:
    with MirrorDatabase(home).inspect() as con:
        return table_digests(con)


def snapshot_digests(home) -> dict:
    info = SnapshotStore(home).current()
    con = duckdb.connect(str(info.path), read_only=True)
    try:
        return table_digests(con)
    finally:
        con.close()


def test_catch_up_publishes_exactly_the_mirror(connected_company):
    company = connected_company
    engine = company.engine()
    methods = []
    for round_ in range(5):
        if round_:
            company.simulate(30, seed=40 + round_)
        report = engine.sync()
        methods.append(report.snapshot_method)
        assert snapshot_digests(company.home) == mirror_digests(company.home), f"round {round_}"
        assert report.snapshot_generation == SnapshotStore(company.home).current().generation
    # First publishes copy the file; once an older snapshot exists it is caught up instead.
    assert methods[0] == "copy" and "catch-up" in methods[2:], methods


def test_a_reader_holding_the_standby_forces_a_copy_and_nothing_breaks(connected_company):
    company = connected_company
    engine = company.engine()
    engine.sync()
    company.simulate(20, seed=1)
    engine.sync()
    store = SnapshotStore(company.home)
    held_info = store.current()
    held = duckdb.connect(str(held_info.path), read_only=True)  # an analyst on generation N
    try:
        before = held.execute("SELECT count(*) FROM change_log").fetchall()[0][0]
        for seed in (2, 3):
            company.simulate(20, seed=seed)
            engine.sync()
            assert snapshot_digests(company.home) == mirror_digests(company.home)
        # The analyst's snapshot was never touched: same content, still readable.
        assert held.execute("SELECT count(*) FROM change_log").fetchall()[0][0] == before
        assert held_info.path.exists()
    finally:
        held.close()


def _cli(home, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SMARTSYNC_HOME": str(home.root)}
    return subprocess.run(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_published_files_are_read_only_and_an_edited_old_snapshot_never_leaks_into_a_later_one(connected_company):
    """Issue 15 finding 4: an analyst (or attacker) chmods an older snapshot writable and edits a
    balance in it; publishing must not build on it, and `audit verify --snapshot` must say so."""
    company = connected_company
    engine = company.engine()
    engine.sync()
    for seed in (1, 2):
        company.simulate(20, seed=seed)
        engine.sync()
    store = SnapshotStore(company.home)
    current = store.current()
    published = sorted(store.dir.glob("mirror-*.duckdb"))
    assert len(published) >= 2
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o444 for p in published)
    assert _cli(company.home, "audit", "verify", "--snapshot").returncode == 0

    # The file the next publication would catch up: the newest one that is not current.
    standby = max(p for p in published if p.name != current.file)
    os.chmod(standby, 0o644)
    con = duckdb.connect(str(standby))
    try:
        forged_id = con.execute("SELECT id FROM bill WHERE NOT is_deleted ORDER BY id_key LIMIT 1").fetchall()[0][0]
        con.execute("UPDATE bill SET balance = 987654.32 WHERE id = ?", [forged_id])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.chmod(standby, 0o444)  # and covers the tracks as far as permissions go

    detected = _cli(company.home, "audit", "verify", "--snapshot")
    assert detected.returncode == 1
    assert f"snapshot {standby.name} was modified after it was published" in detected.stderr

    company.simulate(20, seed=3)
    report = engine.sync()
    assert report.snapshot_generation == current.generation + 1
    assert snapshot_digests(company.home) == mirror_digests(company.home)
    new = SnapshotStore(company.home).current()
    con = duckdb.connect(str(new.path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM bill WHERE balance = 987654.32").fetchall()[0][0] == 0
    finally:
        con.close()
    assert stat.S_IMODE(os.stat(new.path).st_mode) == 0o444


def test_leftover_temporary_files_of_a_killed_publisher_are_removed_by_the_next_publish(connected_company):
    """Issue 15 finding 9: a publisher killed with SIGKILL mid-write leaves its temporary files."""
    company = connected_company
    engine = company.engine()
    engine.sync()
    folder = SnapshotStore(company.home).dir
    code = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from smartsync_pipeline.durable_files import temp_path
        folder = Path({str(folder)!r})
        for name in ("CURRENT", "mirror-00000099.duckdb"):
            with open(temp_path(folder / name), "w") as fh:
                fh.write('{{"generation": 9')  # half a document
                fh.flush()
        open(folder / ".CURRENT.4242.139871.tmp", "w").write("{{")  # an older release's naming
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    killed = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert killed.returncode == -signal.SIGKILL
    leftovers = sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))
    assert len(leftovers) == 3, leftovers

    company.simulate(10, seed=4)
    report = engine.sync()
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) == []
    assert SnapshotStore(company.home).current().generation == report.snapshot_generation


def test_data_written_without_change_log_rows_reaches_readers(connected_company):
    """Issue 10 item 10: publication keyed on the change log's head never republished a mirror whose
    tables changed without change-log rows. Here an older smartsync published a snapshot before the
    registry gained `bill.private_note`; the next sync migrates the mirror (adds the column, fills it
    from the raw JSON) and changes no row in QBO: readers must still get the new column."""
    company = connected_company
    engine = company.engine()
    engine.sync(entities=["Bill"])
    db = MirrorDatabase(company.home)
    store = SnapshotStore(company.home)
    info = store.current()
    with db.locked():
        for path in (db.path, info.path):  # the mirror and its snapshot, as the older release left them
            os.chmod(path, 0o644)
            con = duckdb.connect(str(path))
            try:
                con.execute("DROP VIEW IF EXISTS bills_due")  # views depending on the table go first
                con.execute("ALTER TABLE bill DROP COLUMN private_note")
                con.execute("CHECKPOINT")
            finally:
                con.close()
        os.chmod(info.path, 0o444)
        seal(info.path)

    report = engine.sync(entities=["Bill"])
    assert report.changed == 0  # nothing changed in QBO: the change log did not move
    assert report.snapshot_method == "copy"  # the change log cannot describe a migration: full copy
    with MirrorDatabase(company.home).inspect() as con:
        expected = con.execute("SELECT count(private_note) FROM bill").fetchall()[0][0]
    assert expected > 0
    with SnapshotReader(company.home).cursor(realm_id=company.realm_id) as (cur, used):
        assert used.generation == report.snapshot_generation
        assert cur.execute("SELECT count(private_note) FROM bill").fetchall()[0][0] == expected
        assert cur.execute("SELECT count(*) FROM bills_due").fetchall()[0][0] > 0
    assert snapshot_digests(company.home) == mirror_digests(company.home)


def test_a_long_lived_reader_lets_go_of_old_generations_so_publication_stays_a_catch_up(connected_company):
    """A reader kept every generation it had read open until 32 were idle: each one held descriptors
    and memory, and the next publication could not reuse it (DuckDB refuses a writer on a file open in
    the same process), so a process that reads between syncs -- every on-demand refresh -- made every
    publication copy the whole mirror. Fails before: methods were 'copy' from the third sync on."""
    company = connected_company
    engine = company.engine()
    reader = SnapshotReader(company.home)
    methods = []
    try:
        for round_ in range(6):
            if round_:
                company.simulate(30, seed=70 + round_)
            report = engine.sync()
            methods.append(report.snapshot_method)
            with reader.cursor(realm_id=company.realm_id) as (cur, info):
                assert cur.execute("SELECT count(*) FROM change_log").fetchall()[0][0] > 0
            # Only the generation being read stays open.
            assert reader.attached() == [f"{company.realm_id}/{info.file}"]
        assert methods[0] == "copy"
        assert "copy" not in methods[2:] and "catch-up" in methods[2:], methods
    finally:
        reader.close()
    assert reader.attached() == []


def test_a_sync_leaves_no_file_attached_and_the_mirror_free_for_another_process(connected_company):
    """Writes attach the mirror to a process-wide DuckDB instance instead of creating one per
    connection; detaching must release the file exactly like closing a connection did."""
    from smartsync_pipeline.mirror.database import shared_writer_config
    from smartsync_pipeline.mirror.shared_instance import SharedInstance

    company = connected_company
    engine = company.engine()
    engine.sync()
    company.simulate(20, seed=5)
    engine.sync()
    mirror = MirrorDatabase(company.home).path
    assert str(mirror) not in SharedInstance.for_config(shared_writer_config()).attached_files()
    code = f"import duckdb; c = duckdb.connect({str(mirror)!r}); print(c.execute('SELECT 1').fetchall()); c.close()"
    opened = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert opened.returncode == 0 and "[(1,)]" in opened.stdout, opened.stderr
