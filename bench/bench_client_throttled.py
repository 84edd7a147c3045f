"""Does the client use a throttled budget fully without ever being throttled?

Starts a sandbox limited to ``--per-window`` requests per ``--window-seconds`` (default 100 per 10 s),
gives the client the same limit, and lets ``--threads`` threads issue small queries for
``--duration`` seconds. Prints the achieved rate over the allowed rate (goal >= 95 %), failed calls
(goal 0) and the 429s the client received and the sandbox sent.

    .venv/bin/python bench/bench_client_throttled.py [--duration 30] [--threads 4]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_sync import connect  # noqa: E402
from smartsync_pipeline.qbo.client import QBOClient  # noqa: E402
from smartsync_pipeline.qbo.credentials import CompanyStore  # noqa: E402
from smartsync_pipeline.qbo.errors import QBOError  # noqa: E402
from smartsync_pipeline.qbo.query import Query  # noqa: E402
from smartsync_pipeline.qbo.rate_limit import RealmRateLimiter  # noqa: E402
from smartsync_pipeline.sandbox.process import SandboxProcess  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--per-window", type=int, default=100)
    parser.add_argument("--window-seconds", type=float, default=10.0)
    args = parser.parse_args()

    sandbox = SandboxProcess.start(
        scale="small", seed=7, per_window=args.per_window, window_seconds=args.window_seconds
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = connect(Path(tmp), sandbox)
            store = CompanyStore(home)
            conn = store.load(str(sandbox.info["realm_id"]))
            limiter = RealmRateLimiter(
                conn.realm_id, home=home, per_window=args.per_window, window_seconds=args.window_seconds
            )
            client = QBOClient(conn, store.tokens(conn.realm_id), home=home, limiter=limiter)
            sandbox.control("stats/reset")
            query = Query.select("Vendor").max_results(5)

            ok_times: list[float] = []
            failures: list[str] = []
            lock = threading.Lock()
            t0 = time.monotonic()
            deadline = t0 + args.duration

            def worker() -> None:
                while time.monotonic() < deadline:
                    try:
                        client.query(query)
                    except QBOError as exc:
                        with lock:
                            failures.append(type(exc).__name__)
                        continue
                    with lock:
                        ok_times.append(time.monotonic() - t0)

            threads = [threading.Thread(target=worker) for _ in range(args.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            # Throughput inside the measured interval: calls that completed by the deadline (threads
            # already waiting for budget at the deadline finish later and are not counted).
            in_time = sum(1 for t in ok_times if t <= args.duration)
            # The most a sliding window starting empty admits in `duration`: a full window's worth at
            # the start of each window length.
            allowed = args.per_window * math.ceil(args.duration / args.window_seconds)
            stats = sandbox.control("stats", method="GET")
            print(
                f"{args.threads} threads for {args.duration:.0f} s against {args.per_window} per "
                f"{args.window_seconds:.0f} s: {in_time} calls completed in time = {in_time / allowed:.1%} of "
                f"the allowed {allowed:.0f} ({len(ok_times)} in all)"
            )
            print(
                f"failed calls: {len(failures)} {sorted(set(failures))}; 429s received by the client: "
                f"{client.stats.throttled}; sandbox 429s: {stats['throttled_429']}; "
                f"client limiter wait {client.stats.wait_seconds:.1f} s"
            )
            client.close()
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
