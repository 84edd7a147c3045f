"""Issue 15 finding 7: a process holding a company's write-side mirror file (even read-only) must not
stop everything. Reads answer stale-if-error quickly (flagged), syncs wait a bounded time and name the
holder, and the file is 0600 in a 0700 folder."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from smartsync_pipeline.mirror.database import MirrorBusy, MirrorDatabase
from smartsync_pipeline.mirror.snapshots import SnapshotStore
from smartsync_pipeline_tests.mirror_equality import mirror_differences


def hold(path) -> subprocess.Popen:
    """An analyst who opened the write-side file instead of a snapshot, and keeps it open."""
    code = textwrap.dedent(
        f"""
        import sys, duckdb
        con = duckdb.connect({str(path)!r}, read_only=True)
        print(con.execute("SELECT count(*) FROM bill").fetchall()[0][0], flush=True)
        sys.stdin.read()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert int(proc.stdout.readline()) > 0
    return proc


def test_a_process_holding_the_mirror_file_degrades_reads_and_bounds_syncs(connected_company):
    company = connected_company
    company.engine().sync()
    db = MirrorDatabase(company.home)
    assert stat.S_IMODE(os.stat(db.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(db.shard.root).st_mode) == 0o700
    generation = SnapshotStore(company.home).current().generation
    company.simulate(30, seed=8)

    holder = hold(db.path)
    try:
        # A sync waits for the holder (bounded), then names it and says where analysts belong.
        engine = company.engine(mirror_busy_timeout=3.0)
        started = time.monotonic()
        with pytest.raises(MirrorBusy) as failure:
            engine.sync()
        elapsed = time.monotonic() - started
        assert 3.0 <= elapsed < 20, elapsed
        message = str(failure.value)
        assert f"pid {holder.pid} (" in message and company.realm_id in message and "analyst.sql" in message

        # A live read degrades to the published snapshot, flagged, within seconds.
        reader = company.reader(record_in_dagster=False)
        started = time.monotonic()
        result = reader.read("Bill", company.realm_id, max_age=0)
        elapsed = time.monotonic() - started
        p = result.provenance
        assert p.source == "mirror" and p.stale and p.snapshot_generation == generation
        assert "stale-if-error" in p.reason and f"pid {holder.pid}" in p.reason
        assert elapsed < 15, elapsed
        assert len(result.rows) > 0

        # The same from the command line: an answer, flagged, not an error.
        env = {**os.environ, "SMARTSYNC_HOME": str(company.home.root)}
        cli = subprocess.run(
            [sys.executable, "-m", "smartsync_pipeline.cli.main", "bills-due", "--max-age", "0", "--json"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout)["provenance"]["stale"] is True
    finally:
        holder.stdin.close()
        holder.wait(10)

    # Once the holder is gone the next sync goes through and catches up.
    report = company.engine().sync()
    assert report.changed > 0
    assert mirror_differences(company) == {}
