"""Company locks through PostgreSQL advisory locks: exclusion across processes, a bounded wait that
names the holder, and release when the holder is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smartsync_pipeline.coordination import AdvisoryLock, company_lock, coordination_url, home_namespace
from smartsync_pipeline.coordination.advisory_lock import AdvisoryLock as AdvisoryLockClass
from smartsync_pipeline.coordination.settings import CoordinationConfigError
from smartsync_pipeline.home import Home
from smartsync_pipeline.locking import FileLock, LockTimeout
from smartsync_pipeline.sync.engine import SyncEngine

HOLDER = [sys.executable, "-m", "smartsync_pipeline_tests.coordination.holder"]


def _start_holder(url: str, name: str) -> subprocess.Popen:
    proc = subprocess.Popen([*HOLDER, "lock", url, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_held_lock_times_out_naming_its_holder_and_a_killed_holder_releases_it(coordination_db: str) -> None:
    name = "ns-kill/realm-1/write"
    holder = _start_holder(coordination_db, name)
    try:
        lock = AdvisoryLock(coordination_db, name, what="the mirror writer lock of company realm-1")
        assert lock.is_held()
        with pytest.raises(LockTimeout) as caught:
            with lock.exclusive(timeout=0.3):
                pass
        message = str(caught.value)
        assert "the mirror writer lock of company realm-1" in message
        assert f"pid {holder.pid}" in message  # the holder, by host and pid
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        # The server ends the dead process's session and its lock with it: no cleanup, no lease expiry.
        with lock.exclusive(timeout=10) as waited:
            assert waited < 10
    finally:
        holder.kill()
        holder.wait()


def test_processes_updating_one_file_under_the_lock_lose_no_update(coordination_db: str, tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    procs = [
        subprocess.Popen([*HOLDER, "count", coordination_db, "ns-count/realm/write", str(counter), "40"])
        for _ in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert counter.read_text() == "120"


def test_lock_timeout_zero_and_none(coordination_db: str) -> None:
    lock = AdvisoryLock(coordination_db, "ns-zero/realm/sync")
    with lock.exclusive(timeout=None):
        other = AdvisoryLock(coordination_db, "ns-zero/realm/sync")
        start = time.monotonic()
        with pytest.raises(LockTimeout):
            with other.exclusive(timeout=0):
                pass
        assert time.monotonic() - start < 2
        assert AdvisoryLock(coordination_db, "ns-zero/realm/full").is_held() is False  # another name is free
    assert lock.is_held() is False


def test_company_locks_follow_the_configuration(
    coordination_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Home(tmp_path / "home").ensure()
    shard = home.realm("123").ensure()
    monkeypatch.delenv("SMARTSYNC_COORDINATION", raising=False)
    assert isinstance(company_lock(shard, "sync", "x"), FileLock)
    monkeypatch.setenv("SMARTSYNC_COORDINATION", coordination_db)
    lock = company_lock(shard, "sync", "the sync of company 123")
    assert isinstance(lock, AdvisoryLockClass)
    assert lock.name == f"{home_namespace(home)}/123/sync"
    # The engine's lock is that lock: a holder on "another host" (process) makes it held.
    holder = _start_holder(coordination_db, lock.name)
    try:
        assert SyncEngine(home).realm_lock("123").is_held()
        assert not SyncEngine(home).full_lock("123").is_held()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert not SyncEngine(home).realm_lock("123").is_held()


def test_namespace_is_the_homes_own_and_stable(tmp_path: Path) -> None:
    a, b = Home(tmp_path / "a").ensure(), Home(tmp_path / "b").ensure()
    first = home_namespace(a)
    assert home_namespace(Home(tmp_path / "a")) == first  # another host reading the shared home
    assert home_namespace(b) != first
    assert (a.root / "coordination-id").stat().st_mode & 0o777 == 0o600


def test_a_bad_setting_is_a_clear_error_without_the_secret() -> None:
    assert coordination_url({}) is None
    assert coordination_url({"SMARTSYNC_COORDINATION": "local"}) is None
    with pytest.raises(CoordinationConfigError) as caught:
        coordination_url({"SMARTSYNC_COORDINATION": "redis://:hunter2@10.0.0.1:6379/0"})
    assert "hunter2" not in str(caught.value) and "postgresql://" in str(caught.value)


def test_an_unreachable_database_is_reported_without_the_password() -> None:
    lock = AdvisoryLock("postgresql://smartsync:hunter2@127.0.0.1:1/nowhere", "x")
    with pytest.raises(ConnectionError) as caught:
        with lock.exclusive(timeout=1):
            pass
    assert "coordination database" in str(caught.value) and "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(lock)


def test_the_server_drops_a_vanished_holder_within_half_a_minute(coordination_db: str) -> None:
    """The server's keepalives, set per session: a host that vanished without closing its socket loses its
    locks after 10 s idle + 3 probes 5 s apart, not after the operating system's default two hours."""
    from smartsync_pipeline.coordination.postgres import connect

    conn = connect(coordination_db)
    try:
        with conn.cursor() as cur:
            found = {}
            for name in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count"):
                cur.execute(f"SHOW {name}")
                found[name] = cur.fetchone()[0]
    finally:
        conn.close()
    assert found == {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3"}


def test_token_refreshes_on_different_hosts_exclude_each_other(
    coordination_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token refresh lock is a file lock on one machine; with coordination configured its outermost
    hold also takes the company's token lock in PostgreSQL (a rotating refresh token must never be used
    by two hosts at once)."""
    from smartsync_pipeline.qbo.credentials import TokenStore
    from smartsync_pipeline.qbo.errors import QBOError

    home = Home(tmp_path / "home").ensure()
    home.realm("123").ensure()
    store = TokenStore("123", home.root / "tokens.json", home.locks_dir / "token-123.lock", home)
    monkeypatch.setenv("SMARTSYNC_COORDINATION", coordination_db)
    holder = _start_holder(coordination_db, f"{home_namespace(home)}/123/token")  # "another host"
    try:
        with pytest.raises(QBOError, match="held on another host"):
            with store.lock(timeout=0.3):
                pass
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with store.lock(timeout=5), store.lock(timeout=5):  # free again, and still re-entrant in one thread
        assert AdvisoryLock(coordination_db, f"{home_namespace(home)}/123/token").is_held()
    assert not AdvisoryLock(coordination_db, f"{home_namespace(home)}/123/token").is_held()


def _my_sessions(url: str) -> list[int]:
    import psycopg2

    from smartsync_pipeline.coordination.postgres import holder_name

    con = psycopg2.connect(url)
    try:
        with con.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [holder_name()])
            return [r[0] for r in cur.fetchall()]
    finally:
        con.close()


def test_released_sessions_are_kept_for_the_next_lock_and_a_dead_one_is_replaced(coordination_db: str) -> None:
    import psycopg2

    from smartsync_pipeline.coordination.lock_sessions import idle_count

    before = len(_my_sessions(coordination_db))
    for i in range(20):
        with AdvisoryLock(coordination_db, f"ns-reuse/realm-{i % 3}/write").exclusive(timeout=5):
            pass
    sessions = _my_sessions(coordination_db)
    assert len(sessions) <= before + 1  # one session served all twenty locks (none new if one was kept)
    assert 1 <= idle_count(coordination_db) <= 4
    # The kept session dies (server restart, idle timeout): the next lock opens a new one.
    admin = psycopg2.connect(coordination_db)
    admin.autocommit = True
    with admin.cursor() as cur:
        for pid in sessions:
            cur.execute("SELECT pg_terminate_backend(%s)", [pid])
    admin.close()
    lock = AdvisoryLock(coordination_db, "ns-reuse/realm-0/write")
    with lock.exclusive(timeout=5):
        assert AdvisoryLock(coordination_db, "ns-reuse/realm-0/write").is_held()
    assert not lock.is_held()
    # A kept session holds nothing: nobody else is refused any of the keys used above.
    assert not any(AdvisoryLock(coordination_db, f"ns-reuse/realm-{i}/write").is_held() for i in range(3))


def test_a_writer_whose_session_was_ended_learns_it_before_committing(
    coordination_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database ends the writer lock's session (it judged the host dead): the writer, still running,
    must not commit. ``MirrorDatabase.confirm_locked`` (called by the engine just before its commit)
    raises ``LockLost``; with a live session or a file lock it passes."""
    import psycopg2

    from smartsync_pipeline.coordination import LockLost
    from smartsync_pipeline.mirror.database import MirrorDatabase

    home = Home(tmp_path / "home").ensure()
    home.realm("123").ensure()
    monkeypatch.delenv("SMARTSYNC_COORDINATION", raising=False)
    with MirrorDatabase(home, "123").locked(timeout=5):
        pass  # (file lock: nothing to confirm)
    db = MirrorDatabase(home, "123")
    db.confirm_locked()
    monkeypatch.setenv("SMARTSYNC_COORDINATION", coordination_db)
    db = MirrorDatabase(home, "123")
    with db.locked(timeout=5):
        db.confirm_locked()  # alive: fine
        admin = psycopg2.connect(coordination_db)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", [db.lock._held.get_backend_pid()])
        admin.close()
        with pytest.raises(LockLost, match="nothing was committed"):
            db.confirm_locked()
        assert not AdvisoryLock(coordination_db, db.lock.name).is_held()  # someone else could take it now
    with pytest.raises(LockLost, match="not held"):
        db.confirm_locked()
