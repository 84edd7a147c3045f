"""QBO's per-company request budget shared through PostgreSQL by several processes (hosts)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg2
import pytest

from smartsync_pipeline.coordination import SharedRateLimiter
from smartsync_pipeline.coordination.postgres import holder_name
from smartsync_pipeline.coordination.request_budget import WaitTooLong
from smartsync_pipeline.home import Home
from smartsync_pipeline.qbo.rate_limit import RealmRateLimiter, realm_limiter

HOLDER = [sys.executable, "-m", "smartsync_pipeline_tests.coordination.holder"]


def test_processes_share_one_window_and_the_concurrency_slots(coordination_db: str) -> None:
    """3 processes x 8 requests against 8 per 1 s and 2 concurrent: never 3 at once, never 9 in a window."""
    per_window, window, concurrent = 8, 1.0, 2
    args = ["slots", coordination_db, "ns-window", "realm-1", "8", str(per_window), str(window), str(concurrent)]
    procs = [subprocess.Popen([*HOLDER, *args], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    intervals = sorted(tuple(map(float, line.split())) for out in outputs for line in out.splitlines())
    assert len(intervals) == 24
    # Concurrency: at every slot start, fewer than `concurrent` other slots are open.
    for start, _ in intervals:
        open_at_start = sum(1 for s, e in intervals if s <= start < e)
        assert open_at_start <= concurrent, f"{open_at_start} requests in flight at {start}"
    # Window: any per_window + 1 consecutive sends span at least the window (the limiter adds a guard).
    starts = [s for s, _ in intervals]
    spans = [starts[i + per_window] - starts[i] for i in range(len(starts) - per_window)]
    assert min(spans) >= window, f"{per_window + 1} requests within {min(spans):.3f} s"


def test_retry_after_holds_back_every_process(coordination_db: str) -> None:
    one = SharedRateLimiter(coordination_db, "ns-block", "realm-1")
    other = SharedRateLimiter(coordination_db, "ns-block", "realm-1")
    try:
        one.block_for(0.6)
        start = time.monotonic()
        with other.slot() as ticket:
            waited = time.monotonic() - start
        assert waited >= 0.5 and ticket.waited_for_window >= 0.5
        assert other.in_window() == 1
    finally:
        one.close()
        other.close()


def test_a_killed_process_gives_its_slots_back(coordination_db: str) -> None:
    holder = subprocess.Popen(
        [*HOLDER, "hold-slots", coordination_db, "ns-slots", "realm-1", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    limiter = SharedRateLimiter(coordination_db, "ns-slots", "realm-1", max_concurrent=2)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not limiter._try_slot(0) and not limiter._try_slot(1)  # both taken by the other process
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        with limiter.slot() as ticket:
            assert ticket.waited_for_slot < 10
    finally:
        holder.kill()
        holder.wait()
        limiter.close()


def test_the_limiter_follows_the_configuration(coordination_db: str, tmp_path, monkeypatch) -> None:
    home = Home(tmp_path / "home").ensure()
    monkeypatch.delenv("SMARTSYNC_COORDINATION", raising=False)
    assert isinstance(realm_limiter("123", home=home), RealmRateLimiter)
    monkeypatch.setenv("SMARTSYNC_COORDINATION", coordination_db)
    shared = realm_limiter("123", home=home, max_concurrent=3)
    assert isinstance(shared, SharedRateLimiter) and shared.max_concurrent == 3
    assert "postgresql" not in repr(shared)


def test_limiters_of_one_process_share_one_session_and_its_slots(coordination_db: str) -> None:
    """A process with a limiter per company (hundreds) uses ONE database connection; two limiters of the
    same company in it never both get a slot (advisory locks are re-entrant within a session)."""
    limiters = [SharedRateLimiter(coordination_db, "ns-session", f"realm-{i}", max_concurrent=1) for i in range(40)]
    for limiter in limiters:
        with limiter.slot():
            pass
    con = psycopg2.connect(coordination_db)
    try:
        with con.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                [holder_name()],
            )
            assert cur.fetchone()[0] == 1
    finally:
        con.close()
    twin = SharedRateLimiter(coordination_db, "ns-session", "realm-0", max_concurrent=1)
    with limiters[0].slot():
        assert not twin._try_slot(0)
    assert twin._try_slot(0)  # free again once the request ended
    twin._release_slot(0)


def test_a_retry_after_longer_than_max_wait_is_refused_at_once(coordination_db: str) -> None:
    limiter = SharedRateLimiter(coordination_db, "ns-maxwait", "realm-1")
    limiter.block_for(30)
    start = time.monotonic()
    with pytest.raises(WaitTooLong) as caught:
        with limiter.slot(max_wait=1.0):
            pass
    assert time.monotonic() - start < 5 and caught.value.blocked and 25 < caught.value.wait <= 30
