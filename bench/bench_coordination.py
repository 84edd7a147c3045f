"""What coordinating through PostgreSQL costs against the single-machine files (figures, not tests).

Per QBO request the client takes a limiter slot (concurrency slot + sliding-window record); per sync
the engine takes two company locks (``sync`` and ``write``). Measured in one run, alternating A/B/A
blocks, on a fresh PostgreSQL database (127.0.0.1:5432, database ``test``'s server):

- ``slot()`` of the file limiter (``qbo/rate_limit.py``) vs the shared one (``coordination/request_budget.py``);
- acquire + release of a ``flock`` company lock vs a PostgreSQL session advisory lock (a new session
  each time, as the engine takes it).

    .venv/bin/python bench/bench_coordination.py --calls 400 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg2

from smartsync_pipeline.coordination import AdvisoryLock, SharedRateLimiter
from smartsync_pipeline.home import Home
from smartsync_pipeline.locking import FileLock
from smartsync_pipeline.qbo.rate_limit import RealmRateLimiter

ADMIN = {"host": "127.0.0.1", "port": 5432, "dbname": "test"}


def _per_call_ms(action: Callable[[], None], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        action()
    return (time.perf_counter() - start) / calls * 1000


def _slot(limiter) -> Callable[[], None]:
    def take() -> None:
        with limiter.slot():
            pass

    return take


def _lock(lock) -> Callable[[], None]:
    def take() -> None:
        with lock.exclusive(timeout=10):
            pass

    return take


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    admin = psycopg2.connect(**ADMIN, user="postgres")
    admin.autocommit = True
    name = f"smartsync_bench_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Home(Path(tmp)).ensure()
            big = {"per_window": 10**9, "window_seconds": 60.0}  # measure the bookkeeping, never a wait
            file_limiter = RealmRateLimiter("bench", home=home, **big)
            shared_limiter = SharedRateLimiter(url, "bench", "bench", **big)
            file_lock = FileLock(home.root / "bench.lock")
            advisory = AdvisoryLock(url, "bench/bench/write")
            pairs = {
                "limiter slot": (_slot(file_limiter), _slot(shared_limiter)),
                "company lock": (_lock(file_lock), _lock(advisory)),
            }
            for label, (files, postgres) in pairs.items():
                a1, b, a2 = [], [], []
                files(), postgres()  # warm: schema, first connection
                for _ in range(args.repeat):
                    a1.append(_per_call_ms(files, args.calls))
                    b.append(_per_call_ms(postgres, args.calls))
                    a2.append(_per_call_ms(files, args.calls))
                fa = statistics.median(a1 + a2)
                pb = statistics.median(b)
                print(
                    f"{label}: files {fa:.3f} ms, PostgreSQL {pb:.3f} ms per call ({pb / fa:.1f}x; "
                    f"median of {args.repeat} x {args.calls}, A/B/A: {statistics.median(a1):.3f} / "
                    f"{pb:.3f} / {statistics.median(a2):.3f} ms)"
                )
            shared_limiter.close()
            file_limiter.close()
    finally:
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


if __name__ == "__main__":
    main()
