"""How fast the QBO client pages a whole entity out of a `medium` sandbox.

Starts a sandbox process, connects a client through a throw-away SMARTSYNC_HOME, pages every Bill
(1000 per page) ``--runs`` times and prints objects/s (median, min, max). The sandbox's share is the
time from sending each request to receiving its response headers (``Response.elapsed``: server work
plus loopback), over the wall time of the run; the rest is the client (body download, JSON decoding,
limiter, bookkeeping).

    .venv/bin/python bench/bench_client_paging.py [--scale medium] [--runs 5] [--entity Bill]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_sync import connect  # noqa: E402
from smartsync_pipeline.qbo.client import QBOClient  # noqa: E402
from smartsync_pipeline.qbo.credentials import CompanyStore  # noqa: E402
from smartsync_pipeline.qbo.rate_limit import RealmRateLimiter  # noqa: E402
from smartsync_pipeline.sandbox.process import SandboxProcess  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--entity", default="Bill")
    args = parser.parse_args()

    started = time.perf_counter()
    sandbox = SandboxProcess.start(scale=args.scale, seed=7)
    print(f"sandbox ({args.scale}) ready in {time.perf_counter() - started:.1f} s")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = connect(Path(tmp), sandbox)
            store = CompanyStore(home)
            conn = store.load(str(sandbox.info["realm_id"]))

            server_seconds = [0.0]
            session = requests.Session()
            session.hooks["response"].append(
                lambda r, *a, **k: server_seconds.__setitem__(0, server_seconds[0] + r.elapsed.total_seconds())
            )
            limiter = RealmRateLimiter(conn.realm_id, home=home)  # QBO's defaults: 500 per minute, 10 at once
            client = QBOClient(conn, store.tokens(conn.realm_id), home=home, limiter=limiter, session=session)
            expected = client.count(args.entity)
            print(f"{args.entity}: COUNT(*) = {expected}")

            rates, shares = [], []
            for run in range(1, args.runs + 1):
                server_seconds[0] = 0.0
                calls_before, bytes_before = client.stats.api_calls, client.stats.bytes_received
                t0 = time.perf_counter()
                total = sum(len(page) for page in client.iter_pages(args.entity))
                wall = time.perf_counter() - t0
                if total != expected:
                    print(f"run {run}: paged {total} objects but COUNT(*) said {expected}", file=sys.stderr)
                    return 1
                rates.append(total / wall)
                shares.append(server_seconds[0] / wall)
                print(
                    f"run {run}: {total} objects in {wall:.2f} s = {total / wall:,.0f} objects/s; "
                    f"{client.stats.api_calls - calls_before} calls, "
                    f"{(client.stats.bytes_received - bytes_before) / 1e6:.1f} MB; "
                    f"sandbox response time share {server_seconds[0] / wall:.0%}"
                )
            print(
                f"median {statistics.median(rates):,.0f} objects/s "
                f"(min {min(rates):,.0f}, max {max(rates):,.0f}); "
                f"sandbox share median {statistics.median(shares):.0%}; "
                f"limiter wait {client.stats.wait_seconds:.2f} s, retries {client.stats.retries}"
            )
            client.close()
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
