"""Fleet benchmarks for per-company storage (figures, not tests).

1. isolation: incremental sync of one company with 1 vs 200 other companies connected and synced
   (phases A, B, A again: 1 other, 200 others, 1 other after purging 199). Goal: B/A <= 1.2x.
2. workers: incremental syncs of N companies (after activity in each) done by 1, 2 and 4 worker
   processes; throughput ratio against 1 worker.
3. sensor: the state the freshness sensor reads per tick with 10, 1,000 and 10,000 companies: the
   single CURRENT JSON of the single-file layout vs the fleet state index's ``stale(now)``, time
   and bytes read (``rchar`` of /proc/self/io).
4. analyst: the analyst entry point over 1,000 companies: opening it (ATTACH + views), RSS, and
   fleet-wide queries.

    .venv/bin/python bench/bench_shards.py isolation --others 200 --repeat 7
    .venv/bin/python bench/bench_shards.py workers --companies 24 --repeat 3
    .venv/bin/python bench/bench_shards.py sensor --repeat 20
    .venv/bin/python bench/bench_shards.py analyst --companies 1000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smartsync_pipeline.cli.company_commands import connect_company  # noqa: E402
from smartsync_pipeline.defs.staleness import stale_entities  # noqa: E402
from smartsync_pipeline.entities import ENTITIES  # noqa: E402
from smartsync_pipeline.home import Home  # noqa: E402
from smartsync_pipeline.mirror.fleet_state import FleetState  # noqa: E402
from smartsync_pipeline.sandbox.process import SandboxProcess  # noqa: E402
from smartsync_pipeline.sync.company_shards import disconnect_company  # noqa: E402
from smartsync_pipeline.sync.engine import SyncEngine  # noqa: E402

MAX_REALMS_PER_SANDBOX = 50  # the sandbox's own limit


def start_sandbox(realms: int, seed: int = 7) -> SandboxProcess:
    return SandboxProcess.start(
        scale="small", seed=seed, realms=realms, per_window=10**9, max_concurrent=64, startup_timeout=600
    )


def start_sandboxes(realms: int) -> list[SandboxProcess]:
    """Enough sandbox processes for ``realms`` companies (distinct seeds give distinct realm ids)."""
    sizes = [min(MAX_REALMS_PER_SANDBOX, realms - i) for i in range(0, realms, MAX_REALMS_PER_SANDBOX)]
    started: list[SandboxProcess] = []
    try:
        for k, size in enumerate(sizes):
            started.append(start_sandbox(size, seed=7 + k))
    except BaseException:
        for sandbox in started:
            sandbox.stop()
        raise
    return started


def connect_all(home: Home, sandbox: SandboxProcess) -> list[str]:
    info = sandbox.info
    for realm in info["realms"]:
        connect_company(
            home, realm_id=realm["realm_id"], api_base=info["api_base"], token_url=info["token_url"],
            client_id=info["client_id"], client_secret=info["client_secret"],
            refresh_token=realm["refresh_token"], verify=False,
        )  # fmt: skip
    return [r["realm_id"] for r in info["realms"]]


def _sync_share(args: tuple[str, list[str]]) -> float:
    """One worker process: sync its share of the companies, one after the other."""
    root, realms = args
    engine = SyncEngine(Home(Path(root)))
    started = time.perf_counter()
    for realm in realms:
        engine.sync(realm, trigger="schedule")
    return time.perf_counter() - started


def _ready(_: int) -> bool:
    return True


def sync_in_workers(home: Home, realms: list[str], workers: int) -> float:
    """Wall time for ``workers`` processes (started and imported before the clock starts) to sync
    ``realms`` (round-robin shares)."""
    shares = [(str(home.root), realms[i::workers]) for i in range(workers)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        pool.map(_ready, range(workers * 4))
        started = time.perf_counter()
        pool.map(_sync_share, shares, chunksize=1)
        return time.perf_counter() - started


# -- 1. one company's incremental sync vs the number of other companies ------------------------------


def isolation(others: int, repeat: int, operations: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-fleet-iso-") as tmp:
        sandboxes = start_sandboxes(others + 1)
        sandbox = sandboxes[0]
        try:
            home = Home(Path(tmp)).ensure()
            realms = [realm for box in sandboxes for realm in connect_all(home, box)]
            target, first_other, rest = realms[0], realms[1], realms[2:]
            engine = SyncEngine(home)
            engine.sync(target)
            engine.sync(first_other)
            seeds = iter(range(1000, 2000))

            def rounds() -> dict:
                walls, applies, publishes, changes = [], [], [], []
                for _ in range(repeat):
                    sandbox.control("simulate", {"realm_id": target, "operations": operations, "seed": next(seeds)})
                    t0 = time.perf_counter()
                    report = engine.sync(target)
                    walls.append(time.perf_counter() - t0)
                    applies.append(report.timings["apply"])
                    publishes.append(report.timings.get("publish", 0.0))
                    changes.append(report.changed)
                return {
                    "sync_median_ms": round(statistics.median(walls) * 1000, 1),
                    "apply_median_ms": round(statistics.median(applies) * 1000, 1),
                    "publish_median_ms": round(statistics.median(publishes) * 1000, 1),
                    "changes_median": statistics.median(changes),
                    "walls_ms": [round(w * 1000) for w in walls],
                }

            one = rounds()
            t0 = time.perf_counter()
            sync_in_workers(home, rest, 2)
            fill = time.perf_counter() - t0
            many = rounds()
            for realm in rest:
                disconnect_company(home, realm, purge=True)
            one_again = rounds()
        finally:
            for box in sandboxes:
                box.stop()
    baseline = statistics.median(one["walls_ms"] + one_again["walls_ms"])
    return {
        "others_small": 1,
        "others_large": others,
        "one_other": one,
        "many_others": many,
        "one_other_again": one_again,
        "seconds_to_sync_the_others_2_workers": round(fill, 1),
        "ratio_many_vs_one": round(many["sync_median_ms"] / baseline, 2),
    }


# -- 2. throughput by worker processes ---------------------------------------------------------------


def workers(companies: int, repeat: int, counts: list[int], operations: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-fleet-workers-") as tmp:
        sandboxes = start_sandboxes(companies)
        try:
            home = Home(Path(tmp)).ensure()
            owner = {realm: box for box in sandboxes for realm in connect_all(home, box)}
            realms = list(owner)
            sync_in_workers(home, realms, 2)  # first (full) syncs, not measured
            walls: dict[int, list[float]] = {w: [] for w in counts}
            changes = 0
            seed = 5000
            for _ in range(repeat):
                for w in counts:  # interleaved, so machine noise hits every worker count alike
                    for realm in realms:
                        seed += 1
                        done = owner[realm].control(
                            "simulate", {"realm_id": realm, "operations": operations, "seed": seed}
                        )
                        changes += len(done["changes"])
                    walls[w].append(sync_in_workers(home, realms, w))
        finally:
            for box in sandboxes:
                box.stop()
    base = statistics.median(walls[counts[0]])
    return {
        "companies": companies,
        "sync": f"incremental (CDC) sync of every company after {operations} simulator operations in each",
        "changes_per_company_mean": round(changes / (companies * repeat * len(counts)), 1),
        "cores": os.cpu_count(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        **{
            f"workers_{w}": {
                "wall_median_s": round(statistics.median(walls[w]), 2),
                "companies_per_s": round(companies / statistics.median(walls[w]), 2),
                "throughput_ratio": round(base / statistics.median(walls[w]), 2),
            }
            for w in counts
        },
    }


# -- 3. what the freshness sensor reads per tick -----------------------------------------------------


def _rchar() -> int:
    with open("/proc/self/io") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("rchar"))


def _state_row(realm: str, name: str, when: datetime) -> dict:
    """A sync_state row as the single-file layout's CURRENT carried it (same keys, realistic values)."""
    iso = when.isoformat()
    return {
        "realm_id": realm, "entity": name, "last_sync_at": iso, "last_full_sync_at": iso, "watermark": iso,
        "last_mode": "incremental", "last_trigger": "schedule", "last_run_id": "6f1d2c3b-0a9e-4d7f-8b1c-2e3f4a5b6c7d",
        "last_sync_id": "9d8c7b6a5f4e3d2c1b0a998877665544", "last_created": 3, "last_updated": 12,
        "last_deleted": 0, "last_unchanged": 41, "rows_active": 25_000, "rows_deleted": 120,
    }  # fmt: skip


def sensor(sizes: list[int], repeat: int, stale_share: float) -> dict:
    now = datetime.now(UTC)
    rng = random.Random(7)
    out = {}
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-fleet-sensor-") as tmp:
            home = Home(Path(tmp)).ensure()
            realms = [f"{9130355000000000 + i}" for i in range(n)]
            stale = set(rng.sample(realms, max(1, int(n * stale_share))))
            state = {}
            for realm in realms:
                when = now - (timedelta(hours=3) if realm in stale else timedelta(minutes=5))
                state[realm] = {spec.name: _state_row(realm, spec.name, when) for spec in ENTITIES}
            # The single-file layout: one CURRENT with every company's state, read whole every tick.
            current = Path(tmp) / "CURRENT"
            current.write_text(json.dumps({"generation": 1, "state": state}, indent=1, sort_keys=True))
            # The per-company layout: the fleet state index.
            index = FleetState(home)
            index.record_many(state.items())
            old_t, old_b, new_t, new_b = [], [], [], []
            for _ in range(repeat):
                b0, t0 = _rchar(), time.perf_counter()
                doc = json.loads(current.read_text())
                old_due = {r: stale_entities(doc["state"], r, now) for r in realms}
                old_due = {r: e for r, e in old_due.items() if e}
                old_t.append(time.perf_counter() - t0)
                old_b.append(_rchar() - b0)
                b0, t0 = _rchar(), time.perf_counter()
                new_due = index.stale(now)
                new_t.append(time.perf_counter() - t0)
                new_b.append(_rchar() - b0)
            assert set(new_due) == set(old_due) == stale, "both layouts must find the same stale companies"
            out[str(n)] = {
                "stale_companies": len(stale),
                "single_current_json": {
                    "median_ms": round(statistics.median(old_t) * 1000, 2),
                    "bytes_read": int(statistics.median(old_b)),
                    "file_bytes": current.stat().st_size,
                },
                "fleet_state_index": {
                    "median_ms": round(statistics.median(new_t) * 1000, 2),
                    "bytes_read": int(statistics.median(new_b)),
                    "file_bytes": home.fleet_state_path.stat().st_size,
                },
            }
    return {"stale_share": stale_share, "sizes": out}


# -- 4. the analyst entry point over many companies ---------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


def _clone_company(home: Home, base: Path, realm: str) -> None:
    """A company whose mirror is a real synced mirror re-keyed to ``realm``, published by the real code."""
    import duckdb

    from smartsync_pipeline.mirror.database import MirrorDatabase
    from smartsync_pipeline.mirror.schema import record_data_version
    from smartsync_pipeline.mirror.snapshots import SnapshotStore, content_key, mirror_tables, read_state_rows

    shard = home.realm(realm).ensure()
    shutil.copyfile(base, shard.mirror_path)
    db = MirrorDatabase(home, realm)
    with db.locked():
        con = duckdb.connect(str(db.path))
        try:
            con.execute("BEGIN")
            for table in mirror_tables(con):
                columns = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
                if "realm_id" in columns:
                    con.execute(f"UPDATE {table} SET realm_id = ?", [realm])
            record_data_version(con, "other")
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
            state, key, tables = read_state_rows(con), content_key(con), mirror_tables(con)
        finally:
            con.close()
        SnapshotStore(home, realm).publish(db.path, state, content_key=key, tables=tables)


QUERIES = {
    "bills due in 30 days, per company": (
        "SELECT realm_id, count(*), sum(balance) FROM bills_due WHERE days_until_due <= 30 GROUP BY realm_id"
    ),
    "top 10 vendors by open AP across the fleet": (
        "SELECT realm_id, vendor_name, total_open FROM ap_aging ORDER BY total_open DESC LIMIT 10"
    ),
    "fleet cash position": "SELECT sum(current_balance) FROM cash_position",
    "changes per company and op": "SELECT realm_id, op, count(*) FROM change_log GROUP BY ALL",
}


def analyst_bench(companies: int, repeat: int) -> dict:
    from smartsync_pipeline.mirror import analyst

    with tempfile.TemporaryDirectory(prefix="bench-fleet-analyst-") as tmp:
        sandbox = start_sandbox(1)
        try:
            home = Home(Path(tmp)).ensure()
            [realm] = connect_all(home, sandbox)
            SyncEngine(home).sync(realm)
        finally:
            sandbox.stop()
        base = Path(tmp) / "base.duckdb"
        shutil.copyfile(home.realm(realm).mirror_path, base)
        t0 = time.perf_counter()
        for i in range(1, companies):
            _clone_company(home, base, f"{realm}{i:05d}")
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        analyst.write_script(home)
        script_s = time.perf_counter() - t0
        opens, rss = [], []
        timings: dict[str, list[float]] = {name: [] for name in QUERIES}
        for _ in range(repeat):
            before = _rss_mb()
            t0 = time.perf_counter()
            con = analyst.connect(home)
            opens.append(time.perf_counter() - t0)
            assert len(analyst.attached_realms(con)) == companies
            for name, sql in QUERIES.items():
                t0 = time.perf_counter()
                con.execute(sql).fetchall()
                timings[name].append(time.perf_counter() - t0)
            rss.append(_rss_mb() - before)
            con.close()
        rows = sum(1 for _ in home.realm_ids())
    return {
        "companies": companies,
        "company_size": "a synced small sandbox company (~1,150 objects, ~1,150 change-log rows), re-keyed",
        "seconds_to_build_the_fleet": round(build, 1),
        "write_script_s": round(script_s, 2),
        "open_median_s": round(statistics.median(opens), 2),
        "rss_growth_median_mb": round(statistics.median(rss)),
        "queries_median_ms": {name: round(statistics.median(t) * 1000) for name, t in timings.items()},
        "shards": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    i = sub.add_parser("isolation")
    i.add_argument("--others", type=int, default=200)
    i.add_argument("--repeat", type=int, default=7)
    i.add_argument("--operations", type=int, default=60)
    w = sub.add_parser("workers")
    w.add_argument("--companies", type=int, default=24)
    w.add_argument("--repeat", type=int, default=3)
    w.add_argument("--workers", default="1,2,4")
    w.add_argument("--operations", type=int, default=30)
    s = sub.add_parser("sensor")
    s.add_argument("--sizes", default="10,1000,10000")
    s.add_argument("--repeat", type=int, default=20)
    s.add_argument("--stale-share", type=float, default=0.02)
    a = sub.add_parser("analyst")
    a.add_argument("--companies", type=int, default=1000)
    a.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.what == "isolation":
        result = isolation(args.others, args.repeat, args.operations)
        print(json.dumps(result, indent=1))
        print(
            f"incremental sync of one company, median of {args.repeat}: with 1 other "
            f"{result['one_other']['sync_median_ms']} / {result['one_other_again']['sync_median_ms']} ms, with "
            f"{args.others} others {result['many_others']['sync_median_ms']} ms: ratio {result['ratio_many_vs_one']}x"
        )
    elif args.what == "workers":
        counts = [int(x) for x in args.workers.split(",")]
        result = workers(args.companies, args.repeat, counts, args.operations)
        print(json.dumps(result, indent=1))
        print(
            f"{args.companies} companies' incremental syncs, median of {args.repeat}: "
            + ", ".join(
                f"{n} worker(s) {result[f'workers_{n}']['wall_median_s']} s "
                f"({result[f'workers_{n}']['throughput_ratio']}x)"
                for n in counts
            )
        )
    elif args.what == "sensor":
        result = sensor([int(x) for x in args.sizes.split(",")], args.repeat, args.stale_share)
        print(json.dumps(result, indent=1))
        for n, r in result["sizes"].items():
            old, new = r["single_current_json"], r["fleet_state_index"]
            print(
                f"{n} companies ({r['stale_companies']} stale): one CURRENT {old['median_ms']} ms / "
                f"{old['bytes_read']:,} B read; fleet index {new['median_ms']} ms / {new['bytes_read']:,} B read"
            )
    else:
        result = analyst_bench(args.companies, args.repeat)
        print(json.dumps(result, indent=1))
        print(
            f"analyst entry point over {args.companies} companies: open {result['open_median_s']} s "
            f"(+{result['rss_growth_median_mb']} MB RSS); queries (median ms): {result['queries_median_ms']}"
        )


if __name__ == "__main__":
    main()
