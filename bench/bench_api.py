"""Runway Service load benchmark (figures, not a test). A real `smartsync serve` process over a real
sandbox; clients are asyncio HTTP/1.1 keep-alive connections from this process.

1. fresh: 100 concurrent clients reading GET /businesses/{id}/bills/due?days=30 (fresh: the mirror):
   throughput, p50/p99 latency, and ratios to the in-process service call
   (`for_business(...).bills.get_bills_due_in_days(30)`) median: of the p50 under load (mostly queueing),
   of the server's time per answer (wall / answers) and of one lone client's p50.
2. stale: 50 concurrent clients on a stale business (`Cache-Control: max-age=1` after the data aged
   past 1 s): how many refreshes reached QBO (single flight: 1) and how the answers were sourced.
3. long: a constant load (20 clients) for --long-seconds; the server's RSS and open descriptors
   sampled after every 500 requests (flat = no leak).

    .venv/bin/python bench/bench_api.py [--scale small|medium] [--requests 40] [--long-seconds 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_sync import connect  # noqa: E402
from smartsync_pipeline.api.keys import KeyStore  # noqa: E402
from smartsync_pipeline.sandbox.process import SandboxProcess  # noqa: E402
from smartsync_pipeline.services import for_business  # noqa: E402
from smartsync_pipeline.smart.reader import SmartReader  # noqa: E402
from smartsync_pipeline.sync.engine import SyncEngine  # noqa: E402


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def client(host: str, port: int, request: bytes, n: int, out: list[tuple[float, int, bytes]]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(n):
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            lines = head.split(b"\r\n")
            length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length"))
            body = await reader.readexactly(length)
            out.append((time.perf_counter() - started, status, body))
    finally:
        writer.close()


def request(path: str, key: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n{extra}\r\n".encode()


async def load(url: str, req: bytes, clients: int, per_client: int) -> tuple[list[tuple[float, int, bytes]], float]:
    host, port = url.removeprefix("http://").split(":")
    out: list[tuple[float, int, bytes]] = []
    started = time.perf_counter()
    await asyncio.gather(*(client(host, int(port), req, per_client, out) for _ in range(clients)))
    return out, time.perf_counter() - started


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", "serve", "--port", "0"],
        env={**env, "SMARTSYNC_HOME": str(home), "SMARTSYNC_LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    line = proc.stdout.readline()
    return proc, next(w for w in line.split() if w.startswith("http://"))


def rss_and_fds(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return rss // 1024, len(os.listdir(f"/proc/{pid}/fd"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="small")
    parser.add_argument("--requests", type=int, default=40, help="requests per client in the fresh run")
    parser.add_argument("--long-seconds", type=float, default=120.0)
    args = parser.parse_args()
    results: dict[str, object] = {"scale": args.scale}
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = SandboxProcess.start(scale=args.scale, seed=7)
        server = None
        try:
            home = connect(Path(tmp) / "home", sandbox)
            realm = sandbox.realm_id
            SyncEngine(home).sync(realm, mode="full", trigger="manual")
            _, key = KeyStore(home).create("bench", [realm], ("read",), 1_000_000)
            server, url = start_server(home.root)
            path = f"/businesses/{realm}/bills/due?days=30"

            # in-process baseline: the same service call, median of 50
            bills = for_business(SmartReader(smartsync_home=str(home.root), record_in_dagster=False), realm).bills
            samples = []
            for _ in range(50):
                t0 = time.perf_counter()
                docs = bills.get_bills_due_in_days(30)
                samples.append(time.perf_counter() - t0)
            baseline = statistics.median(samples)
            results["rows_answered"] = docs.count

            # 1. fresh: 100 clients
            asyncio.run(load(url, request(path, key), 20, 5))  # warm-up
            answers, elapsed = asyncio.run(load(url, request(path, key), 100, args.requests))
            lat = [a[0] for a in answers]
            assert {a[1] for a in answers} == {200}, {a[1] for a in answers}
            # one client alone: the HTTP cost of one answer without queueing behind 99 others
            single, _ = asyncio.run(load(url, request(path, key), 1, 200))
            single_p50 = pct([a[0] for a in single], 0.5)
            results["fresh"] = {
                "clients": 100, "requests": len(answers), "throughput_rps": round(len(answers) / elapsed, 1),
                "p50_ms": round(pct(lat, 0.5) * 1000, 1), "p99_ms": round(pct(lat, 0.99) * 1000, 1),
                "in_process_service_median_ms": round(baseline * 1000, 2),
                "p50_vs_in_process": round(pct(lat, 0.5) / baseline, 1),
                # with 100 clients on 2 cores a request mostly waits in line: the server's time per answer
                # (wall / requests) and one client's p50 are the figures to compare with the service call
                "server_ms_per_answer": round(elapsed / len(answers) * 1000, 2),
                "server_ms_per_answer_vs_in_process": round(elapsed / len(answers) / baseline, 1),
                "one_client_p50_ms": round(single_p50 * 1000, 2),
                "one_client_p50_vs_in_process": round(single_p50 / baseline, 1),
            }  # fmt: skip

            # 2. stale: 50 clients at once on data older than they allow
            time.sleep(1.5)  # let the data age past max-age=1 (that is what makes the business stale)
            before = sandbox.control("stats", method="GET")["requests"].get("cdc", 0)
            answers, elapsed = asyncio.run(load(url, request(path, key, "Cache-Control: max-age=1\r\n"), 50, 1))
            after = sandbox.control("stats", method="GET")["requests"].get("cdc", 0)
            sources = [json.loads(a[2])["provenance"][0]["source"] for a in answers]
            results["stale"] = {
                "clients": 50, "statuses": sorted({a[1] for a in answers}), "qbo_cdc_calls": after - before,
                "answers_from_the_refresh": sources.count("api"), "answers_reusing_it": sources.count("mirror"),
                "p50_ms": round(pct([a[0] for a in answers], 0.5) * 1000, 1), "wall_s": round(elapsed, 2),
            }  # fmt: skip

            # 3. long run: constant load, RSS and descriptors every 5 s
            samples_long: list[tuple[float, int, int]] = []
            deadline = time.monotonic() + args.long_seconds
            start = time.monotonic()
            count = 0
            while time.monotonic() < deadline:
                answers, _ = asyncio.run(load(url, request(path, key), 20, 25))
                count += len(answers)
                rss, fds = rss_and_fds(server.pid)
                samples_long.append((round(time.monotonic() - start), rss, fds))
            rss_values = [s[1] for s in samples_long]
            fd_values = [s[2] for s in samples_long]
            results["long"] = {
                "seconds": round(time.monotonic() - start), "requests": count,
                "rss_mb_first_last_max": [rss_values[0], rss_values[-1], max(rss_values)],
                "fds_first_last_max": [fd_values[0], fd_values[-1], max(fd_values)],
                "samples": samples_long[:: max(1, len(samples_long) // 12)],
            }  # fmt: skip
        finally:
            if server is not None:
                server.terminate()
                server.wait(60)
            sandbox.stop()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
