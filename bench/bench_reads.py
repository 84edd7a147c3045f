"""Read-path benchmarks (figures, not tests).

1. Fresh read of BillService.get_bills_due_in_days(30) on a mirror of 100k bills: median latency of
   the bare DuckDB query it runs (open read-only connection on the same snapshot), of the SmartReader
   read (freshness decision + provenance), and of the domain service call; ratios to the bare query.
2. Stale read (max_age=0): median wall time, and what is left after the sandbox's own CDC response.
3. The same question answered by paging QBO directly (a filtered query through the client).

    .venv/bin/python bench/bench_reads.py [--repeat 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from bench.bench_sync import connect  # noqa: E402
from smartsync_pipeline.mirror.snapshots import SnapshotStore  # noqa: E402
from smartsync_pipeline.qbo.query import Query  # noqa: E402
from smartsync_pipeline.sandbox.process import SandboxProcess  # noqa: E402
from smartsync_pipeline.services import for_business  # noqa: E402
from smartsync_pipeline.smart.reader import SmartReader  # noqa: E402
from smartsync_pipeline.sync.engine import SyncEngine  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, object]:
    samples, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--scale", default="bills-100k")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as tmp:
        sandbox = SandboxProcess.start(scale=args.scale, seed=7, per_window=10**9, max_concurrent=64)
        try:
            home = connect(Path(tmp), sandbox)
            realm = sandbox.info["realm_id"]
            engine = SyncEngine(home)
            engine.sync(realm, mode="full")
            reader = SmartReader(smartsync_home=str(home.root), record_in_dagster=False)
            bills = for_business(reader, realm).bills
            horizon = date.today() + timedelta(days=30)
            info = SnapshotStore(home, realm).current()
            sql = (
                "SELECT id, doc_number, vendor_id, vendor_name, txn_date, due_date, total_amt, balance, currency_id, "
                "last_updated_time FROM bill WHERE realm_id = ? AND NOT is_deleted AND (balance > 0 AND due_date <= ?) "
                "ORDER BY due_date, id"
            )
            con = duckdb.connect(str(info.path), read_only=True)
            n_bills = con.execute("SELECT count(*) FROM bill WHERE NOT is_deleted").fetchall()[0][0]
            # Warm up both paths once, then measure them interleaved in blocks.
            con.execute(sql, [realm, horizon]).df()
            bills.qbo_sync.get_bills_by_due_days(30)
            bare, reads, service = [], [], []
            for _ in range(5):
                bare.append(timed(lambda: con.execute(sql, [realm, horizon]).df(), args.repeat // 5)[0])
                reads.append(timed(lambda: bills.qbo_sync.get_bills_by_due_days(30), args.repeat // 5)[0])
                service.append(timed(lambda: bills.get_bills_due_in_days(30), args.repeat // 5)[0])
            rows = len(con.execute(sql, [realm, horizon]).df())
            con.close()
            bare_ms, read_ms, service_ms = (statistics.median(x) for x in (bare, reads, service))
            prov = bills.get_bills_due_in_days(30).provenance
            assert prov.source == "mirror" and not prov.stale

            # Stale reads: max_age=0 refreshes first (one CDC call, apply, publish).
            stale, fetch, apply_, publish = [], [], [], []
            for i in range(10):
                sandbox.control("simulate", {"realm_id": realm, "operations": 5, "seed": 500 + i})
                t0 = time.perf_counter()
                result = reader.read("Bill", realm, where="balance > 0 AND due_date <= ?", params=[horizon], max_age=0)
                stale.append(time.perf_counter() - t0)
                assert result.provenance.source == "api"
            # Per-phase costs of the same kind of refresh, from the engine's own report.
            for i in range(10):
                sandbox.control("simulate", {"realm_id": realm, "operations": 5, "seed": 900 + i})
                report = engine.sync(realm, ["Bill"], trigger="on_demand")
                fetch.append(report.timings.get("fetch", 0.0))
                apply_.append(report.timings.get("apply", 0.0))
                publish.append(report.timings.get("publish", 0.0))

            # The same question by paging QBO directly.
            client = engine.client(realm)
            q = Query.select("Bill").where("Balance", ">", 0).where("DueDate", "<=", horizon)

            def page_all() -> int:
                total, start = 0, 1
                while True:
                    page = client.query(q.start_position(start).max_results(1000))
                    total += len(page.items)
                    if len(page.items) < 1000:
                        return total
                    start += 1000

            direct_ms, direct_rows = timed(page_all, 5)
        finally:
            sandbox.stop()
    out = {
        "mirror_bills": n_bills,
        "rows_answered": rows,
        "bare_duckdb_query_median_ms": round(bare_ms, 2),
        "smart_reader_read_median_ms": round(read_ms, 2),
        "ratio_reader_to_bare": round(read_ms / bare_ms, 3),
        "bill_service_median_ms": round(service_ms, 2),
        "ratio_service_to_bare": round(service_ms / bare_ms, 3),
        "stale_read_max_age_0_median_ms": round(statistics.median(stale) * 1000, 1),
        "refresh_fetch_cdc_median_ms": round(statistics.median(fetch) * 1000, 1),
        "refresh_apply_median_ms": round(statistics.median(apply_) * 1000, 1),
        "refresh_publish_median_ms": round(statistics.median(publish) * 1000, 1),
        "stale_overhead_beyond_cdc_ms": round((statistics.median(stale) - statistics.median(fetch)) * 1000, 1),
        "direct_qbo_paging_median_ms": round(direct_ms, 1),
        "direct_qbo_rows": direct_rows,
        "ratio_direct_paging_to_fresh_read": round(direct_ms / read_ms, 1),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
