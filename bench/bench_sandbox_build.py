"""Build time and memory of the seeded sandbox company at each scale (a script, not a test).

Each scale is built in a fresh interpreter so its RSS is its own. Also prints how fast base objects
render and serialise, which bounds how fast a client can page the sandbox.

    .venv/bin/python bench/bench_sandbox_build.py [--scales small,medium,large] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(scale: str, seed: int) -> dict:
    import numpy  # noqa: F401  (loaded before the baseline so it is not counted as company memory)

    from smartsync_pipeline.sandbox.company import build_company

    baseline = rss_mb()
    start = time.perf_counter()
    company = build_company(seed, scale, 0, anchor=time.time())
    build_seconds = time.perf_counter() - start
    after = rss_mb()
    bills = company.tables["Bill"]
    sample = min(bills.n, 5000)
    start = time.perf_counter()
    rendered = [bills.render(i) for i in range(sample)]
    render_us = (time.perf_counter() - start) / sample * 1e6
    start = time.perf_counter()
    json.dumps(rendered, separators=(",", ":"))
    json_us = (time.perf_counter() - start) / sample * 1e6
    return {
        "scale": scale,
        "objects": company.object_count,
        "build_s": round(build_seconds, 3),
        "rss_mb": round(after, 1),
        "company_mb": round(after - baseline, 1),
        "bytes_per_object": round((after - baseline) * 2**20 / company.object_count, 1),
        "render_us_per_bill": round(render_us, 1),
        "json_us_per_bill": round(json_us, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="small,medium,large")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.seed)))
        return 0
    header = f"{'scale':<8}{'objects':>11}{'build s':>10}{'RSS MB':>9}{'company MB':>12}{'B/object':>10}"
    header += f"{'render us':>11}{'json us':>9}"
    print(header)
    for scale in args.scales.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--one", scale, "--seed", str(args.seed)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{r['scale']:<8}{r['objects']:>11,}{r['build_s']:>10.2f}{r['rss_mb']:>9.0f}{r['company_mb']:>12.1f}"
            f"{r['bytes_per_object']:>10.1f}{r['render_us_per_bill']:>11.1f}{r['json_us_per_bill']:>9.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
