"""What the content check costs (figures, not tests).

A full sync of an untouched mirror skips every row whose SyncToken is unchanged without parsing its
JSON; with ``verify_content`` (``reconcile --deep``, the daily full reconciliation) it also extracts
every typed column from QBO's object and compares it with the stored row. This prints the median wall
time and apply phase of both on the same mirror, alternating, and the ratio.

    .venv/bin/python bench/bench_content_check.py --scale medium --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_sync import connect  # noqa: E402
from smartsync_pipeline.sandbox.process import SandboxProcess  # noqa: E402
from smartsync_pipeline.sync.engine import SyncEngine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-content-") as tmp:
        sandbox = SandboxProcess.start(
            scale=args.scale, seed=7, per_window=10**9, max_concurrent=64, startup_timeout=600
        )
        try:
            engine = SyncEngine(connect(Path(tmp), sandbox))
            first = engine.sync(mode="full")
            rows = sum(e.rows_active for e in first.entities.values())
            runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
            for _ in range(args.repeat):
                for verify in (False, True):
                    report = engine.sync(mode="full", verify_content=verify)
                    assert report.changed == 0, "the mirror must stay untouched"
                    runs[verify].append((report.duration_seconds, report.timings.get("apply", 0.0)))
        finally:
            sandbox.stop()
    plain = [statistics.median(x[i] for x in runs[False]) for i in (0, 1)]
    deep = [statistics.median(x[i] for x in runs[True]) for i in (0, 1)]
    print(f"{args.scale} mirror, {rows} active rows, median of {args.repeat} full syncs of an untouched mirror")
    print(f"  full sync              total {plain[0]:7.2f} s   apply {plain[1]:6.2f} s")
    print(f"  full + verify_content  total {deep[0]:7.2f} s   apply {deep[1]:6.2f} s")
    print(f"  ratio                  total {deep[0] / plain[0]:7.2f}x   apply {deep[1] / plain[1]:6.2f}x")


if __name__ == "__main__":
    main()
