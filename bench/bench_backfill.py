"""A new company's first sync against QBO's physical limits (issue 12, section 4).

One sandbox that enforces QBO's per-company limits (500 requests a minute, 10 at once) serves every
run. Each figure is the median of ``--runs`` runs:

- ``plain``: a plain client (requests + the standard library's json) pages every entity one page after
  another (STARTPOSITION 1, 1001, ...), decoding each page and nothing else;
- ``smartsync``: ``smartsync sync --json`` as its own process into an empty SMARTSYNC_HOME (the first
  sync of every entity: fetch, parse, apply, change log and publish), with its peak RSS, its CPU
  seconds, the sandbox's CPU seconds for the run, and the apply alone (the sync report's apply and
  change-log phases, its waits for pages excluded).

Every run starts with an empty rate-limit window on both sides, like a new company, and with the
package byte-compiled, as an installed one is (``make venv`` does it too; with PYTHONDONTWRITEBYTECODE
set, an editable install would otherwise compile every module at every start).

Both run without added latency and with the sandbox adding ``--latency-ms`` (default 300 ms, what real
QBO takes for a 1,000-object page) to every request. The rate-limit floor of a run is its requests ÷
500 a minute. Goals: with latency, smartsync within 1.2x the floor and >= 2x faster than plain paging;
without latency, >= 0.9x the plain paging rate; peak RSS <= 500 MB on ``large``.

    .venv/bin/python bench/bench_backfill.py [--scale medium] [--runs 3] [--latency-ms 300]
    .venv/bin/python bench/bench_backfill.py --scale large --runs 1
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_sync import connect  # noqa: E402
from smartsync_pipeline.entities import iter_entities  # noqa: E402
from smartsync_pipeline.home import Home  # noqa: E402
from smartsync_pipeline.qbo.client import QBOClient  # noqa: E402
from smartsync_pipeline.qbo.credentials import CompanyStore  # noqa: E402
from smartsync_pipeline.sandbox.process import SandboxProcess  # noqa: E402

QBO_PER_MINUTE = 500


@dataclass
class Run:
    seconds: float
    objects: int
    requests: int
    peak_rss_mb: int = 0
    throttled: int = 0  # 429s the sandbox answered
    max_concurrent: int = 0  # the most requests the sandbox had in flight at once
    cpu_s: float = 0.0  # CPU seconds of the syncing process (user + system)
    apply_s: float = 0.0  # the sync report's apply + change_log phases (waits for pages excluded)
    sandbox_cpu_s: float = 0.0  # CPU seconds the sandbox spent serving the run

    @property
    def rate(self) -> float:
        return self.objects / self.seconds

    @property
    def floor_seconds(self) -> float:
        return self.requests / QBO_PER_MINUTE * 60


def fresh_window(sandbox: SandboxProcess, home: Home) -> None:
    """Each run starts with QBO's whole allowance, like a new company: the sandbox forgets the last
    minute's requests and so does the client's shared budget (its send log under the home's locks)."""
    sandbox.control("limits", {})  # same limits, window emptied
    for log in home.locks_dir.glob("rate-*.log"):
        log.unlink()


def plain_paging(sandbox: SandboxProcess, home: Home, token: str, page_size: int = 1000) -> Run:
    """Every entity, page after page, with the standard library's JSON decoder; 429s waited out."""
    fresh_window(sandbox, home)
    url = f"{sandbox.api_base.rstrip('/')}/company/{sandbox.realm_id}/query"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    objects = calls = 0
    sandbox_before = _process_cpu(sandbox.pid)
    started = time.perf_counter()
    with requests.Session() as http:
        for spec in iter_entities():
            start = 1
            while True:
                where = " WHERE Active IN (true, false)" if spec.name_list else ""
                sql = f"SELECT * FROM {spec.name}{where} ORDERBY Id STARTPOSITION {start} MAXRESULTS {page_size}"
                response = http.get(url, params={"query": sql, "minorversion": "75"}, headers=headers)
                calls += 1
                if response.status_code == 429:
                    time.sleep(float(response.headers.get("Retry-After", "1")))
                    continue
                response.raise_for_status()
                items = json.loads(response.content)["QueryResponse"].get(spec.name, [])
                objects += len(items)
                if len(items) < page_size:
                    break
                start += page_size
    run = Run(time.perf_counter() - started, objects, calls)
    run.sandbox_cpu_s = round(_process_cpu(sandbox.pid) - sandbox_before, 1)
    return run


def smartsync_first_sync(sandbox: SandboxProcess, home: Home) -> Run:
    """``smartsync sync --json`` in its own process, the company's mirror removed first (its
    connection kept: the sandbox rotates refresh tokens). Its requests, 429s and highest concurrency
    are what the sandbox saw; peak RSS is the kernel's (the largest child so far)."""
    shutil.rmtree(home.realm(sandbox.realm_id).root, ignore_errors=True)
    fresh_window(sandbox, home)
    env = {**os.environ, "SMARTSYNC_HOME": str(home.root)}
    sandbox.control("stats", {})  # reset
    cpu_before, sandbox_before = _children_cpu(), _process_cpu(sandbox.pid)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", "sync", "--json"],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"smartsync sync failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    seen = sandbox.control("stats", method="GET")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    report = json.loads(proc.stdout)
    run = Run(seconds, report["created"], seen["requests_total"], peak)
    run.apply_s = round(report["timings"].get("apply", 0.0) + report["timings"].get("change_log", 0.0), 1)
    run.throttled, run.max_concurrent = seen["throttled_429"], seen["max_concurrent_seen"]
    run.cpu_s = round(_children_cpu() - cpu_before, 1)
    run.sandbox_cpu_s = round(_process_cpu(sandbox.pid) - sandbox_before, 1)
    return run


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int | None) -> float:
    """utime + stime of a running process, from /proc (the sandbox is not waited for between runs)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=300)
    args = parser.parse_args()

    compileall.compile_dir(ROOT / "smartsync_pipeline", quiet=1)
    sandbox = SandboxProcess.start(scale=args.scale, seed=7, startup_timeout=900)  # QBO's limits: 500/min, 10 at once
    figures: dict[str, dict] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
            home = connect(Path(tmp), sandbox)
            store = CompanyStore(home)
            with QBOClient(store.load(sandbox.realm_id), store.tokens(sandbox.realm_id), home=home) as client:
                token = client.oauth.access_token()  # valid for the sandbox's hour: plain paging uses it
            for latency in (0, args.latency_ms):
                sandbox.control("faults", {"latency_ms": latency})
                plain, ours = [], []
                for _ in range(args.runs):
                    plain.append(plain_paging(sandbox, home, token))
                    ours.append(smartsync_first_sync(sandbox, home))
                p, s = median_run(plain), median_run(ours)
                figures[f"latency_{latency}ms"] = {
                    "plain": asdict(p) | {"objects_per_s": round(p.rate)},
                    "smartsync": asdict(s)
                    | {
                        "objects_per_s": round(s.rate),
                        "floor_s": round(s.floor_seconds, 1),
                        "apply_objects_per_s": round(s.objects / s.apply_s) if s.apply_s else None,
                    },
                    "smartsync_vs_floor": round(s.seconds / s.floor_seconds, 2),
                    "speedup_over_plain": round(p.seconds / s.seconds, 2),
                    "rate_vs_plain": round(s.rate / p.rate, 2),
                    "all_runs_s": {
                        "plain": [round(r.seconds, 1) for r in plain],
                        "smartsync": [round(r.seconds, 1) for r in ours],
                    },
                }
    finally:
        sandbox.stop()
    print(json.dumps({"scale": args.scale, "runs": args.runs, **figures}, indent=1))
    no_lat, lat = figures["latency_0ms"], figures[f"latency_{args.latency_ms}ms"]
    peak = max(no_lat["smartsync"]["peak_rss_mb"], lat["smartsync"]["peak_rss_mb"])
    print(
        f"{args.scale}, median of {args.runs}: without latency smartsync {no_lat['smartsync']['objects_per_s']:,}/s = "
        f"{no_lat['rate_vs_plain']}x plain paging ({no_lat['plain']['objects_per_s']:,}/s); with {args.latency_ms} ms "
        f"a request smartsync {lat['smartsync']['seconds']:.1f} s = {lat['smartsync_vs_floor']}x the rate-limit floor "
        f"({lat['smartsync']['floor_s']} s for {lat['smartsync']['requests']} requests), {lat['speedup_over_plain']}x "
        f"faster than plain paging ({lat['plain']['seconds']:.1f} s); peak RSS {peak} MB"
    )


if __name__ == "__main__":
    main()
