"""Read-path benchmarks (figures, not tests), on a mirror of 100k bills, Dagster recording on.

1. Fresh read of ``get_bills_by_due_days(30)``: median latency of the bare DuckDB query it runs, of
   the SmartReader read and of the domain service call; ratios to the bare query.
2. Stale read (``max_age=0``, the same question) after a few changes in QBO: median wall time, the
   read's own overhead beyond QBO's CDC answer, and that overhead phase by phase (lock waits, CDC,
   sync state, opening the mirror, apply, change log, commit, publish, record in Dagster, answer,
   other); ratio stale/fresh. Every refresh is recorded as a materialization in a real Dagster
   instance (DAGSTER_HOME in the temporary folder); the bench counts them afterwards.
3. The same with nothing changed in QBO (a no-change refresh) against a bare CDC call.
4. A long-running loop of reads mixing fresh and ``max_age=0`` in one process: open descriptors,
   threads and RSS after warm-up and at the end.
5. The same question answered by paging QBO directly.

    .venv/bin/python bench/bench_reads.py [--repeat 50] [--stale 20] [--loop 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from bench.bench_sync import connect  # noqa: E402
from smartsync_pipeline.cli.instance_commands import write_instance_config  # noqa: E402
from smartsync_pipeline.mirror.snapshots import SnapshotStore  # noqa: E402
from smartsync_pipeline.qbo.query import Query  # noqa: E402
from smartsync_pipeline.sandbox.process import SandboxProcess  # noqa: E402
from smartsync_pipeline.services import for_business  # noqa: E402
from smartsync_pipeline.smart.reader import SmartReader  # noqa: E402
from smartsync_pipeline.sync.engine import SyncEngine  # noqa: E402
from smartsync_pipeline.sync.fetch import fetch_cdc  # noqa: E402
from smartsync_pipeline.sync.report import SyncReport  # noqa: E402

# The stale read's phases, in the order they happen (SyncReport.timings keys; "lock" and "other" are
# derived). "fetch" is the CDC call: QBO's answer, the part that is not ours.
PHASES = ("lock", "fetch", "states", "open", "apply", "change_log", "commit", "publish", "record", "answer")


class ObservedEngine(SyncEngine):
    """The engine the reader refreshes through, keeping every report (timings are filled in by the
    reader after ``sync`` returns: record, answer)."""

    reports: list[SyncReport]

    def sync(self, *args: Any, **kwargs: Any) -> SyncReport:
        report = super().sync(*args, **kwargs)
        self.reports.append(report)
        return report


def median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1) if values else 0.0


def process_usage() -> dict[str, int]:
    with open("/proc/self/status") as fh:
        status = dict(line.split(":", 1) for line in fh)
    return {
        "open_descriptors": len(os.listdir("/proc/self/fd")),
        "threads": int(status["Threads"].strip()),
        "rss_mb": int(status["VmRSS"].split()[0]) // 1024,
    }


def stale_reads(sandbox, realm: str, qbo, fresh, engine: ObservedEngine, n: int, *, changes: int) -> dict[str, Any]:
    """``n`` stale reads, each after ``changes`` simulated QBO operations (0: a no-change refresh),
    each preceded by three fresh reads (the ratio's baseline, measured under the same conditions)."""
    totals, fresh_times, per_phase = [], [], {p: [] for p in (*PHASES, "other", "overhead")}
    changed = []
    for i in range(n):
        for _ in range(3):
            t0 = time.perf_counter()
            fresh()
            fresh_times.append(time.perf_counter() - t0)
        if changes:
            sandbox.control("simulate", {"realm_id": realm, "operations": changes, "seed": 500 + i})
        before = len(engine.reports)
        t0 = time.perf_counter()
        result = qbo.get_bills_by_due_days(30, max_age=0)
        total = time.perf_counter() - t0
        assert result.provenance.source == "api" and not result.provenance.stale, result.provenance
        assert len(engine.reports) == before + 1
        report = engine.reports[-1]
        phases = dict(report.timings)
        phases["lock"] = report.lock_wait_seconds
        known = sum(phases.get(p, 0.0) for p in PHASES)
        phases["other"] = max(0.0, total - known)
        phases["overhead"] = total - phases.get("fetch", 0.0)
        for p in per_phase:
            per_phase[p].append(phases.get(p, 0.0))
        totals.append(total)
        changed.append(report.changed)
    return {
        "reads": n,
        "changed_rows_per_refresh_median": statistics.median(changed),
        "stale_read_median_ms": median_ms(totals),
        "fresh_read_median_ms_same_run": median_ms(fresh_times),
        "ratio_stale_to_fresh": round(statistics.median(totals) / statistics.median(fresh_times), 2),
        "own_overhead_beyond_cdc_median_ms": median_ms(per_phase["overhead"]),
        "phase_medians_ms": {p: median_ms(v) for p, v in per_phase.items() if p != "overhead"},
    }


def count_recorded(realm: str) -> int:
    """On-demand refreshes of qbo/bill recorded in the Dagster instance for this company."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        records = instance.fetch_materializations(dg.AssetKey(["qbo", "bill"]), limit=10_000).records
    return sum(
        1
        for r in records
        if r.partition_key == realm and (r.asset_materialization.tags or {}).get("smartsync/trigger") == "on_demand"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=50, help="fresh reads per figure")
    parser.add_argument("--stale", type=int, default=20, help="stale reads per figure")
    parser.add_argument("--changes", type=int, default=5, help="simulated QBO operations before each stale read")
    parser.add_argument("--loop", type=int, default=1000, help="reads in the long-running loop (0: skip)")
    parser.add_argument("--loop-stale-every", type=int, default=4, help="every n-th loop read is max_age=0")
    parser.add_argument("--scale", default="bills-100k")
    args = parser.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as tmp:
        dagster_home = Path(tmp) / "dagster"
        write_instance_config(dagster_home, postgres=False)
        os.environ["DAGSTER_HOME"] = str(dagster_home)
        sandbox = SandboxProcess.start(scale=args.scale, seed=7, per_window=10**9, max_concurrent=64)
        try:
            home = connect(Path(tmp) / "home", sandbox)
            realm = sandbox.info["realm_id"]
            engine = ObservedEngine(home)
            engine.reports = []
            engine.sync(realm, mode="full")
            reader = SmartReader(smartsync_home=str(home.root), record_in_dagster=True).with_engine(engine)
            bills = for_business(reader, realm).bills
            qbo = bills.qbo_sync
            horizon = date.today() + timedelta(days=30)
            info = SnapshotStore(home, realm).current()
            sql = (
                "SELECT id, doc_number, vendor_id, vendor_name, txn_date, due_date, total_amt, balance, currency_id, "
                "last_updated_time FROM bill WHERE realm_id = ? AND NOT is_deleted AND (balance > 0 AND due_date <= ?) "
                "ORDER BY due_date, id"
            )
            con = duckdb.connect(str(info.path), read_only=True)
            n_bills = con.execute("SELECT count(*) FROM bill WHERE NOT is_deleted").fetchall()[0][0]
            rows = len(con.execute(sql, [realm, horizon]).df())
            # 1. Fresh reads, interleaved in blocks.
            qbo.get_bills_by_due_days(30)
            bare, reads, service = [], [], []
            block = max(1, args.repeat // 5)
            for _ in range(5):
                for samples, fn in (
                    (bare, lambda: con.execute(sql, [realm, horizon]).df()),
                    (reads, lambda: qbo.get_bills_by_due_days(30)),
                    (service, lambda: bills.get_bills_due_in_days(30)),
                ):
                    for _ in range(block):
                        t0 = time.perf_counter()
                        fn()
                        samples.append(time.perf_counter() - t0)
            con.close()
            assert bills.get_bills_due_in_days(30).provenance.source == "mirror"
            out["fresh"] = {
                "mirror_bills": n_bills,
                "rows_answered": rows,
                "bare_duckdb_query_median_ms": median_ms(bare),
                "smart_reader_read_median_ms": median_ms(reads),
                "ratio_reader_to_bare": round(statistics.median(reads) / statistics.median(bare), 2),
                "bill_service_median_ms": median_ms(service),
                "ratio_service_to_bare": round(statistics.median(service) / statistics.median(bare), 2),
            }

            # 2. and 3. Stale reads with a few changes, then with none.
            def fresh() -> object:
                return qbo.get_bills_by_due_days(30)

            qbo.get_bills_by_due_days(30, max_age=0)  # warm-up: the first refresh opens the client
            out["stale"] = stale_reads(sandbox, realm, qbo, fresh, engine, args.stale, changes=args.changes)
            out["stale_no_change"] = nochange = stale_reads(sandbox, realm, qbo, fresh, engine, args.stale, changes=0)
            client = engine.client(realm)
            bare_cdc = []
            for _ in range(args.stale):
                since = datetime_now() - timedelta(minutes=5)
                t0 = time.perf_counter()
                fetch_cdc(client, ["Bill"], since)
                bare_cdc.append(time.perf_counter() - t0)
            nochange["bare_cdc_call_median_ms"] = median_ms(bare_cdc)
            nochange["ratio_no_change_read_to_bare_cdc"] = round(
                nochange["stale_read_median_ms"] / max(0.001, median_ms(bare_cdc)), 2
            )
            out["dagster"] = {
                "refreshes": len(engine.reports) - 1,
                "on_demand_materializations_of_qbo_bill": count_recorded(realm),
            }

            # 4. The long-running loop.
            if args.loop:
                loop: dict[str, Any] = {"reads": args.loop, "stale_every": args.loop_stale_every}
                for i in range(args.loop):
                    if i == 50:
                        loop["after_warm_up"] = process_usage()
                    if i % args.loop_stale_every == 0:
                        sandbox.control("simulate", {"realm_id": realm, "operations": 2, "seed": 9000 + i})
                        qbo.get_bills_by_due_days(30, max_age=0)
                    else:
                        qbo.get_bills_by_due_days(30)
                loop["at_end"] = process_usage()
                loop["python_threads_at_end"] = threading.active_count()
                out["loop"] = loop

            # 5. The same question by paging QBO directly.
            q = Query.select("Bill").where("Balance", ">", 0).where("DueDate", "<=", horizon)

            def page_all() -> int:
                total, start = 0, 1
                while True:
                    page = client.query(q.start_position(start).max_results(1000))
                    total += len(page.items)
                    if len(page.items) < 1000:
                        return total
                    start += 1000

            direct = []
            for _ in range(3):
                t0 = time.perf_counter()
                direct_rows = page_all()
                direct.append(time.perf_counter() - t0)
            out["direct_qbo_paging"] = {
                "median_ms": median_ms(direct),
                "rows": direct_rows,
                "ratio_to_fresh_read": round(statistics.median(direct) / statistics.median(reads), 1),
            }
            out["load_average_at_end"] = os.getloadavg()
        finally:
            sandbox.stop()
    print(json.dumps(out, indent=1))


def datetime_now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


if __name__ == "__main__":
    main()
