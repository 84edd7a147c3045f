"""The one file lock (on ``filelock``): bounded waits across processes and threads, and a timeout that
names what was waited for and who holds it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from smartsync_pipeline.locking import FileLock, LockTimeout, lock_holders


def test_a_timeout_names_the_lock_and_the_process_holding_it(tmp_path):
    path = tmp_path / "locks" / "sync.lock"
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from smartsync_pipeline.locking import FileLock
        with FileLock(Path({str(path)!r})).exclusive(5):
            print("held", flush=True)
            sys.stdin.read()
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert lock_holders(path) == [holder.pid]
        lock = FileLock(path, what="the sync of company 42")
        started = time.monotonic()
        with pytest.raises(LockTimeout) as failure, lock.exclusive(0.5):
            pass
        assert 0.5 <= time.monotonic() - started < 5
        message = str(failure.value)
        assert message.startswith("the sync of company 42 is still held by another process after 0.")
        assert f"(held by pid {holder.pid} (python" in message and message.endswith("try again later")
        assert lock.is_held()
    finally:
        holder.stdin.close()
        holder.wait(10)
    with FileLock(path).exclusive(1) as waited:  # released by the holder's exit
        assert waited < 1


def test_two_threads_of_one_process_exclude_each_other(tmp_path):
    lock = FileLock(tmp_path / "x.lock", what="x")
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with lock.exclusive(5):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert inside.wait(5)
        with pytest.raises(LockTimeout), FileLock(tmp_path / "x.lock").exclusive(0.2):
            pass
    finally:
        release.set()
        thread.join(10)
    with lock.exclusive(1) as waited:
        assert waited < 1
