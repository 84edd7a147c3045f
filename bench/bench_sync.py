"""Sync engine benchmarks (figures, not tests).

1. Full backfill of a sandbox company: records/s end to end, the apply step alone, and the peak RSS
   of the syncing process (a child process, measured by the kernel's ru_maxrss).
2. Incremental sync of ~100 changes into a small mirror vs a large one: median wall time of
   `SyncEngine.sync` and of its apply phase, and the large/small ratio (goal: within 1.5x).

    .venv/bin/python bench/bench_sync.py backfill --scale large
    .venv/bin/python bench/bench_sync.py incremental --small-scale small --large-scale large --repeat 7
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smartsync_pipeline.cli.company_commands import connect_company  # noqa: E402
from smartsync_pipeline.home import Home  # noqa: E402
from smartsync_pipeline.sandbox.process import SandboxProcess  # noqa: E402
from smartsync_pipeline.sync.engine import SyncEngine  # noqa: E402


def connect(home_dir: Path, sandbox: SandboxProcess) -> Home:
    info = sandbox.info
    home = Home(home_dir).ensure()
    connect_company(
        home, realm_id=info["realm_id"], api_base=info["api_base"], token_url=info["token_url"],
        client_id=info["client_id"], client_secret=info["client_secret"], refresh_token=info["refresh_token"],
        verify=False,
    )  # fmt: skip
    return home


def _sample_rss(proc: subprocess.Popen) -> dict[str, int]:
    """Peak RSS of the child per 10 s slice, read from /proc while it runs (where memory goes)."""
    import threading

    peaks: dict[str, int] = {}

    def watch() -> None:
        start = time.monotonic()
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as fh:
                    kb = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS"))
            except (OSError, StopIteration):
                break
            key = f"{int(time.monotonic() - start) // 10 * 10:>4}s"
            peaks[key] = max(peaks.get(key, 0), kb // 1024)
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    proc.wait()
    thread.join()
    return peaks


def backfill(scale: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        t0 = time.perf_counter()
        sandbox = SandboxProcess.start(scale=scale, seed=7, per_window=10**9, max_concurrent=64, startup_timeout=600)
        build = time.perf_counter() - t0
        try:
            home = connect(Path(tmp), sandbox)
            env = {**os.environ, "SMARTSYNC_HOME": str(home.root)}
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "smartsync_pipeline.cli.main", "sync", "--full", "--json"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            samples = _sample_rss(proc)
            stdout, stderr = proc.communicate()
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"sync failed ({proc.returncode}):\n{stderr[-3000:]}")
            peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            report = json.loads(stdout)
            records = report["created"]
            apply_s = report["timings"]["apply"]
            return {
                "scale": scale,
                "sandbox_build_s": round(build, 1),
                "records": records,
                "wall_s": round(wall, 1),
                "records_per_s_end_to_end": round(records / wall),
                "fetch_s": round(report["timings"].get("fetch", 0), 1),
                "apply_s": round(apply_s, 1),
                "records_per_s_apply": round(records / apply_s),
                "publish_s": round(report["timings"].get("publish", 0), 2),
                "peak_rss_mb_sync_process": round(peak_kb / 1024),
                "rss_mb_by_phase_sampled": samples,
                "mirror_mb": round(home.realm(sandbox.realm_id).mirror_path.stat().st_size / 1e6),
            }
        finally:
            sandbox.stop()


def incremental(scale: str, repeat: int, operations: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-incr-{scale}-") as tmp:
        sandbox = SandboxProcess.start(scale=scale, seed=7, per_window=10**9, max_concurrent=64, startup_timeout=600)
        try:
            home = connect(Path(tmp), sandbox)
            engine = SyncEngine(home)
            first = engine.sync(mode="full")
            rows = sum(e.rows_active + e.rows_deleted for e in first.entities.values())
            walls, applies, publishes, changed = [], [], [], []
            for i in range(repeat):
                sandbox.control("simulate", {"realm_id": sandbox.realm_id, "operations": operations, "seed": 100 + i})
                t0 = time.perf_counter()
                report = engine.sync()
                walls.append(time.perf_counter() - t0)
                applies.append(report.timings["apply"])
                publishes.append(report.timings.get("publish", 0.0))
                changed.append(report.changed)
            return {
                "scale": scale,
                "mirror_rows": rows,
                "changes_per_sync_median": statistics.median(changed),
                "sync_median_ms": round(statistics.median(walls) * 1000, 1),
                "apply_median_ms": round(statistics.median(applies) * 1000, 1),
                "publish_median_ms": round(statistics.median(publishes) * 1000, 1),
            }
        finally:
            sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    b = sub.add_parser("backfill")
    b.add_argument("--scale", default="large")
    i = sub.add_parser("incremental")
    i.add_argument("--small-scale", default="small")
    i.add_argument("--large-scale", default="large")
    i.add_argument("--repeat", type=int, default=7)
    i.add_argument("--operations", type=int, default=60, help="simulator operations per round (~100 changes)")
    args = parser.parse_args()
    if args.what == "backfill":
        print(json.dumps(backfill(args.scale), indent=1))
        return
    small = incremental(args.small_scale, args.repeat, args.operations)
    large = incremental(args.large_scale, args.repeat, args.operations)
    print(json.dumps({"small": small, "large": large}, indent=1))
    print(
        f"incremental sync, median of {args.repeat}: {small['mirror_rows']} rows {small['sync_median_ms']} ms "
        f"(apply {small['apply_median_ms']} ms) vs {large['mirror_rows']} rows {large['sync_median_ms']} ms "
        f"(apply {large['apply_median_ms']} ms): ratio {large['sync_median_ms'] / small['sync_median_ms']:.2f}x "
        f"(apply {large['apply_median_ms'] / small['apply_median_ms']:.2f}x)"
    )


if __name__ == "__main__":
    main()
