"""Durability and concurrency with real processes: SIGKILL mid-sync, analysts holding the database."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb

from smartsync_pipeline.entities import ENTITIES
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.snapshots import SnapshotStore

# Kills per run of the SIGKILL test. The seeded kill points of the first two fall in the middle of the
# sync (before its commit) and near its end (the commit and the publish): the default suite runs those;
# SMARTSYNC_DURABILITY_KILLS=6 adds kills at start-up and further points in between.
KILLS = int(os.environ.get("SMARTSYNC_DURABILITY_KILLS", "2"))


def content_digest(home: Home) -> str:
    """What a sync must change atomically: every mirror row's version and the logged changes."""
    h = hashlib.sha256()
    with MirrorDatabase(home).inspect() as con:
        for spec in ENTITIES:
            for row in con.execute(
                f"SELECT realm_id, id, sync_token, is_deleted, md5(raw) FROM {spec.table} ORDER BY realm_id, id"
            ).fetchall():
                h.update(repr(row).encode())
        # Per entity in change-id order: a shadow's entities are applied in parallel lanes, so how
        # their ranges interleave in the one chain may differ from run to run (sync/apply_lanes.py).
        for row in con.execute(
            "SELECT entity, entity_id, op, sync_token_after FROM change_log ORDER BY entity, change_id"
        ).fetchall():
            h.update(repr(row).encode())
        assert change_log.verify(con).ok
    return h.hexdigest()


def copy_state(src: Path, dst: Path) -> None:
    """A company's shard (mirror, snapshots, current link, the change log's anchor) from ``src`` into
    ``dst``; the credentials are not in it (tokens in ``dst`` are kept: they rotate). The anchor belongs
    to the mirror's state: an older mirror with a newer anchor is a cut trail, which the next sync
    refuses to extend."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("locks", "staging", "duckdb_tmp"))


def snapshot_is_usable(home: Home) -> bool:
    info = SnapshotStore(home).current()
    con = duckdb.connect(str(info.path), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM change_log").fetchall()[0][0] >= 0
    finally:
        con.close()


def run_sync(home: Home, *args: str) -> subprocess.Popen:
    env = {**os.environ, "SMARTSYNC_HOME": str(home.root)}
    return subprocess.Popen(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", "sync", "--json", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_sigkill_at_random_points_leaves_no_partial_state(connected_company, tmp_path):
    company = connected_company
    home = company.home
    company.engine().sync()
    company.simulate(400, seed=21)
    shard = home.realm(company.realm_id).root
    before_dir = tmp_path / "before"
    copy_state(shard, before_dir)
    before = content_digest(home)

    # The reference outcome, and how long a sync takes.
    started = time.monotonic()
    ref = run_sync(home, "--full")
    _, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err
    duration = time.monotonic() - started
    after = content_digest(home)
    assert after != before

    rng = random.Random(1234)
    outcomes = []
    for attempt in range(KILLS):
        copy_state(before_dir, shard)
        assert content_digest(home) == before
        proc = run_sync(home, "--full")
        time.sleep(rng.uniform(0.05, duration))  # choose a kill point; nothing waits on a race here
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        state = content_digest(home)
        assert state in (before, after), f"partial state after kill #{attempt}"
        outcomes.append("before" if state == before else "after")
        assert snapshot_is_usable(home)
        # The next sync converges to the same result as an uninterrupted one.
        done = run_sync(home, "--full")
        _, err = done.communicate(timeout=300)
        assert done.returncode == 0, err
        assert content_digest(home) == after
    assert "before" in outcomes, outcomes  # at least one kill landed before the commit


def test_an_analyst_holding_the_analyst_database_blocks_no_sync(connected_company):
    company = connected_company
    engine = company.engine()
    engine.sync()
    analyst_code = textwrap.dedent(
        f"""
        import sys, duckdb
        path = {str(company.home.analyst_path)!r}
        held = duckdb.connect(path, read_only=True)
        count = lambda con: con.execute("SELECT count(*) FROM bill WHERE NOT is_deleted").fetchall()[0][0]
        print(count(held), flush=True)
        for line in sys.stdin:
            if line.strip() == "held":
                print(count(held), flush=True)
            elif line.strip() == "fresh":
                fresh = duckdb.connect(path, read_only=True)
                print(count(fresh), flush=True)
                fresh.close()
        """
    )
    analyst = subprocess.Popen(
        [sys.executable, "-c", analyst_code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        first = int(analyst.stdout.readline())
        reports = []
        for round_ in range(3):
            company.simulate(40, seed=100 + round_)
            reports.append(engine.sync(lock_timeout=30))
        assert all(r.snapshot_generation for r in reports)
        assert sum(r.total("created") for r in reports) > 0
        analyst.stdin.write("held\n")
        analyst.stdin.flush()
        assert int(analyst.stdout.readline()) == first  # a consistent state, as of when it opened
        analyst.stdin.write("fresh\n")
        analyst.stdin.flush()
        latest = int(analyst.stdout.readline())
        with MirrorDatabase(company.home).inspect() as con:
            assert latest == con.execute("SELECT count(*) FROM bill WHERE NOT is_deleted").fetchall()[0][0]
        assert latest != first
    finally:
        analyst.stdin.close()
        analyst.wait(10)
    current = company.home.realm(company.realm_id).snapshots_dir / "CURRENT"
    assert json.loads(current.read_text())["generation"] >= 4
