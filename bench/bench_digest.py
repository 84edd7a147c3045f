"""Runway digest benchmark (figures, not a test): what one digest costs on a synced company, against
the plain bills-due read in the same run.

1. fresh: `DigestDataOrchestrator.get_digest_data` with every mirror fresh (median of --repeat), and
   its parts: the bank movements of 26 weeks (`bank_flows(182)`, raw JSON fields of every cash-moving
   entity), open bills + open invoices, cash; the ratio to `get_bills_due_in_days(30)`.
2. live: the same digest with max_age=0 (every entity refreshed from the sandbox first): wall time and
   on-demand refreshes per digest (one per entity the digest reads).

    .venv/bin/python bench/bench_digest.py [--scale small|medium] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_sync import connect  # noqa: E402
from smartsync_pipeline.orchestrators.digest import HISTORY_DAYS, DigestDataOrchestrator  # noqa: E402
from smartsync_pipeline.sandbox.process import SandboxProcess  # noqa: E402
from smartsync_pipeline.services import for_business  # noqa: E402
from smartsync_pipeline.smart.reader import SmartReader  # noqa: E402
from smartsync_pipeline.sync.engine import SyncEngine  # noqa: E402


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm: first use opens the snapshot
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium", choices=["small", "medium"])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.pop("DAGSTER_HOME", None)  # no Dagster recording: the read path alone
    with tempfile.TemporaryDirectory(prefix="bench-digest-") as tmp, SandboxProcess.start(scale=args.scale) as sb:
        home = connect(Path(tmp) / "home", sb)
        realm = sb.info["realm_id"]
        SyncEngine(home).sync(realm)
        reader = SmartReader(str(home.root), record_in_dagster=False)
        s = for_business(reader, realm)
        orch = DigestDataOrchestrator(reader)
        flows = s.bank_flows.bank_flows(HISTORY_DAYS)
        print(f"scale {args.scale}: {len(flows.movements)} bank movements in {HISTORY_DAYS} days "
              f"from {', '.join(flows.entities)}; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        bills = median_seconds(lambda: s.bills.get_bills_due_in_days(30), args.repeat)
        parts = {
            "digest (fresh)": median_seconds(lambda: orch.get_digest_data(realm), args.repeat),
            "  bank_flows(182 days)": median_seconds(lambda: s.bank_flows.bank_flows(HISTORY_DAYS), args.repeat),
            "  open bills + invoices": median_seconds(
                lambda: (s.bills.open_documents(), s.invoices.open_documents()), args.repeat
            ),
            "  cash": median_seconds(lambda: s.accounts.get_cash_position(), args.repeat),
            "  open credits": median_seconds(lambda: s.credits.open_credits(), args.repeat),
        }
        print(f"bills_due(30) baseline: {bills * 1000:.1f} ms median of {args.repeat}")
        for name, seconds in parts.items():
            print(f"{name:<26} {seconds * 1000:8.1f} ms   {seconds / bills:6.1f}x bills_due")
        live = []
        for _ in range(3):
            before = reader.stats.get("refresh", 0)
            start = time.perf_counter()
            orch.get_digest_data(realm, max_age=0)
            live.append((time.perf_counter() - start, reader.stats.get("refresh", 0) - before))
        wall = statistics.median(w for w, _ in live)
        print(f"digest (max_age=0)         {wall * 1000:8.1f} ms   {live[0][1]} on-demand refreshes per digest")


if __name__ == "__main__":
    main()
