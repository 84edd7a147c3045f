"""Apply lanes (sync/apply_lanes.py): a shadow's entities applied on several cursors at once, with the
same mirror and the same change log per entity as one after another, one gap-free chain, and the
first error stopping every lane."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

import duckdb
import pytest

from smartsync_pipeline.entities import iter_entities
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.sync.apply_lanes import MAX_APPLY_LANES, ApplyLanes
from smartsync_pipeline.sync.errors import SyncError
from smartsync_pipeline_tests.conftest import ConnectedCompany
from smartsync_pipeline_tests.mirror_equality import mirror_differences
from smartsync_pipeline_tests.sync.test_full_listings import Wrapped, real_client

BARRIER_TIMEOUT = 30  # only reached when the lanes do not run at once


def in_order(jobs):
    """A ``take`` handing out ``jobs`` one at a time, in order (as the engine's does entities)."""
    queue, lock = iter(jobs), threading.Lock()

    def take(lanes):
        with lock:
            return next(queue, None)

    return take


@pytest.fixture
def con(tmp_path: Path):
    c = duckdb.connect(str(tmp_path / "lanes.duckdb"))
    c.execute("CREATE TABLE done (job INTEGER, lane VARCHAR)")
    yield c
    c.close()


def test_lanes_run_every_job_once_at_the_same_time_on_their_own_cursors(con) -> None:
    both_started = threading.Barrier(2, timeout=BARRIER_TIMEOUT)

    def work(cur, job: int, lanes) -> None:
        if job < 2:
            both_started.wait()  # times out (and fails the test) unless two lanes run at once
        cur.execute("BEGIN TRANSACTION")
        cur.execute("INSERT INTO done VALUES (?, ?)", [job, threading.current_thread().name])
        cur.execute("COMMIT")

    lanes = ApplyLanes(con, 2, on_error=lambda exc: None)
    lanes.run(in_order(range(20)), work)
    rows = con.execute("SELECT job, lane FROM done ORDER BY job").fetchall()
    assert [job for job, _ in rows] == list(range(20))
    assert {lane for _, lane in rows} == {"smartsync-apply_0", "smartsync-apply_1"}
    assert lanes.times.wall >= lanes.times.busy_wall >= 0


def test_the_first_error_stops_the_lanes_rolls_back_and_is_raised(con) -> None:
    errors: list[BaseException] = []

    def work(cur, job: int, lanes) -> None:
        cur.execute("BEGIN TRANSACTION")
        cur.execute("INSERT INTO done VALUES (?, 'x')", [job])
        if job == 3:
            raise ValueError("job 3 failed")
        cur.execute("COMMIT")

    threads_before = threading.active_count()
    with pytest.raises(ValueError, match="job 3 failed"):
        ApplyLanes(con, 2, on_error=errors.append).run(in_order(range(100)), work)
    assert [str(e) for e in errors] == ["job 3 failed"]  # told once, whichever lane saw it
    jobs = [r[0] for r in con.execute("SELECT job FROM done").fetchall()]
    assert 3 not in jobs  # its transaction was rolled back
    assert len(jobs) < 99  # the lanes stopped taking jobs
    assert threading.active_count() == threads_before


def test_a_failing_lane_interrupts_the_statement_another_lane_is_running(con) -> None:
    """Ctrl-C or a failed unit must not wait for the other lane's long statement to finish."""
    running = threading.Event()

    def mark_running(i: int) -> int:
        running.set()
        return i

    con.create_function("mark_running", mark_running, ["BIGINT"], "BIGINT")

    def work(cur, job: int, lanes) -> None:
        if job == 0:  # hours of work unless interrupted
            cur.execute("SELECT count(*) FROM range(1000000000000) t(i) WHERE mark_running(i) % 7 = 3").fetchall()
        else:
            assert running.wait(BARRIER_TIMEOUT)
            raise ValueError("the other lane failed")

    with pytest.raises(ValueError, match="the other lane failed"):
        ApplyLanes(con, 2, on_error=lambda exc: None).run(in_order(range(2)), work)


def test_time_when_every_lane_waits_for_pages_is_kept_apart(con) -> None:
    meet = threading.Barrier(2, timeout=BARRIER_TIMEOUT)

    def work(cur, job: int, lanes) -> None:
        with lanes.waiting():
            meet.wait()  # both lanes are waiting here at once
            meet.wait()

    lanes = ApplyLanes(con, 2, on_error=lambda exc: None)
    lanes.run(in_order(range(2)), work)
    assert 0 < lanes.times.all_waiting <= lanes.times.wall


def test_lanes_are_bounded(con, connected_company: ConnectedCompany, monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in (0, MAX_APPLY_LANES + 1):
        with pytest.raises(ValueError, match="apply lanes must be between 1 and 4"):
            ApplyLanes(con, bad, on_error=lambda exc: None)
    for bad in ("0", "5", "two"):
        monkeypatch.setenv("SMARTSYNC_APPLY_LANES", bad)
        with pytest.raises(SyncError, match="SMARTSYNC_APPLY_LANES must be a whole number from 1 to 4"):
            connected_company.engine()
    monkeypatch.setenv("SMARTSYNC_APPLY_LANES", "3")
    assert connected_company.engine().apply_lanes == 3


def logged_per_entity(company: ConnectedCompany) -> dict[str, list[tuple]]:
    db = MirrorDatabase(company.home, company.realm_id)
    with db.inspect() as con:
        assert change_log.verify(con).ok
        ids = [r[0] for r in con.execute("SELECT change_id FROM change_log ORDER BY change_id").fetchall()]
        assert ids == list(range(1, len(ids) + 1))
        per: dict[str, list[tuple]] = {}
        for name, *row in con.execute(
            "SELECT entity, entity_id, op, sync_token_after FROM change_log ORDER BY change_id"
        ).fetchall():
            per.setdefault(name, []).append(tuple(row))
    return per


def copy_shard(src: Path, dst: Path) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("locks", "staging", "duckdb_tmp"))


def test_a_backfill_in_lanes_equals_one_entity_after_another(connected_company: ConnectedCompany, tmp_path: Path):
    """Small pages and units, so entities have several units each and lanes interleave them."""
    company = connected_company
    shard = company.home.realm(company.realm_id).root
    small = {"page_size": 50, "rows_per_transaction": 100}
    one_by_one = company.engine(apply_lanes=1, **small).sync()
    assert mirror_differences(company) == {}
    logged_one_by_one = logged_per_entity(company)
    shutil.rmtree(shard)  # a new company again (its connection is kept)

    in_lanes = company.engine(apply_lanes=2, **small).sync()
    assert mirror_differences(company) == {}
    assert logged_per_entity(company) == logged_one_by_one
    assert list(in_lanes.entities) == [s.name for s in iter_entities()]  # reported in registry order
    assert {n: (e.created, e.rows_active) for n, e in in_lanes.entities.items()} == {
        n: (e.created, e.rows_active) for n, e in one_by_one.entities.items()
    }
    assert in_lanes.change_id_last == sum(e.created for e in in_lanes.entities.values())
    assert in_lanes.timings["apply"] > 0 and in_lanes.timings["change_log"] > 0

    # A full reconciliation after activity on every entity converges the same way in lanes.
    company.simulate(300, seed=5)
    copy_shard(shard, tmp_path / "before-full")
    company.engine(apply_lanes=2, **small).sync(mode="full")
    assert mirror_differences(company) == {}
    logged_in_lanes = logged_per_entity(company)
    copy_shard(tmp_path / "before-full", shard)
    company.engine(apply_lanes=1, **small).sync(mode="full")
    assert mirror_differences(company) == {}
    assert logged_per_entity(company) == logged_in_lanes


def test_a_lane_takes_a_listed_entity_before_earlier_ones_still_paged(connected_company: ConnectedCompany) -> None:
    """Account's and Vendor's pages (first in the registry) are held back until Customer has been
    applied: taking entities in registry order, both lanes would wait for them while Customer's pages
    are all in."""
    company = connected_company
    client = real_client(company)
    customer_applied = threading.Event()

    class OnApplied(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("applied Customer "):
                customer_applied.set()

    def page(name: str, start: int, **kwargs):
        if name in ("Account", "Vendor"):
            customer_applied.wait(BARRIER_TIMEOUT)  # reaches the timeout only when lanes wait in order
        return client.page(name, start, **kwargs)

    handler = OnApplied()
    sync_log = logging.getLogger("smartsync.sync")
    sync_log.addHandler(handler)
    level = sync_log.level
    sync_log.setLevel(logging.DEBUG)
    try:
        company.engine(apply_lanes=2, client_factory=lambda _: Wrapped(client, page=page)).sync()
    finally:
        sync_log.removeHandler(handler)
        sync_log.setLevel(level)
        client.close()
    assert customer_applied.is_set()
    first = logged_first_ids(company)
    assert first["Customer"] < min(first["Account"], first["Vendor"])
    assert mirror_differences(company) == {}


def logged_first_ids(company: ConnectedCompany) -> dict[str, int]:
    with MirrorDatabase(company.home, company.realm_id).inspect() as con:
        return dict(con.execute("SELECT entity, min(change_id) FROM change_log GROUP BY entity").fetchall())
