"""The first look at the UI, as a new user gets it after `make demo` and `make test` (issue 14).

Starts `smartsync ui` on the repository's own homes (the Makefile's `.smartsync` and `.dagster_home`),
lets the daemon tick for a while (sensors and schedules launch whatever they would), then asks the
webserver's GraphQL API for failed runs, failed partitions and failed checks, screenshots the pages a
user opens first in headless Chromium, and stops the UI with one Ctrl-C (SIGINT). Exit 1 if anything
failed or the UI did not stop.

    .venv/bin/python scripts/ui_first_look.py [--port 3333] [--watch-seconds 90] [--out ui-first-look]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
PAGES = {"overview": "/overview", "runs": "/runs", "assets": "/assets", "jobs": "/jobs"}

QUERY = """
{
  runsOrError(limit: 500) { ... on Runs { results { runId status jobName } } }
  assetNodes {
    assetKey { path }
    assetPartitionStatuses {
      ... on DefaultPartitionStatuses { failedPartitions materializedPartitions }
    }
    assetChecksOrError {
      ... on AssetChecks { checks { name executionForLatestMaterialization { status } } }
    }
  }
}
"""


def graphql(url: str) -> dict:
    body = json.dumps({"query": QUERY}).encode()
    request = urllib.request.Request(f"{url}/graphql", body, {"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (our own http://127.0.0.1)
        answer = json.load(response)
    if answer.get("errors"):
        raise SystemExit(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


def wait_serving(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"smartsync ui exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the UI did not answer within {timeout:.0f} s")


def summarize(data: dict) -> dict:
    runs = data["runsOrError"]["results"]
    by_status: dict[str, int] = {}
    for run in runs:
        by_status[run["status"]] = by_status.get(run["status"], 0) + 1
    failed_partitions = {}
    failed_checks = []
    materialized = 0
    for node in data["assetNodes"]:
        key = "/".join(node["assetKey"]["path"])
        statuses = node.get("assetPartitionStatuses") or {}
        if statuses.get("failedPartitions"):
            failed_partitions[key] = statuses["failedPartitions"]
        materialized += len(statuses.get("materializedPartitions") or [])
        for check in (node.get("assetChecksOrError") or {}).get("checks", []):
            execution = check.get("executionForLatestMaterialization") or {}
            if execution.get("status") in ("FAILED", "EXECUTION_FAILED"):
                failed_checks.append(f"{key}:{check['name']}")
    return {
        "runs_by_status": by_status,
        "failed_runs": [r for r in runs if r["status"] == "FAILURE"],
        "failed_partitions": failed_partitions,
        "failed_checks": failed_checks,
        "materialized_partitions": materialized,
        "assets": len(data["assetNodes"]),
    }


def screenshots(url: str, out: Path) -> list[str]:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    shots = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        for name, path in PAGES.items():
            page.goto(url + path, wait_until="networkidle", timeout=120_000)
            if name == "overview":  # Dagster's first-visit newsletter dialog covers the first page
                # (an instance that has shown it before does not show it again)
                with contextlib.suppress(PlaywrightTimeout):
                    page.get_by_role("button", name="Skip").click(timeout=10_000)
            page.wait_for_timeout(1500)  # the UI renders after its GraphQL answers arrive
            target = out / f"{name}.png"
            page.screenshot(path=str(target), full_page=True)
            shots.append(str(target))
        browser.close()
    return shots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3333)
    parser.add_argument("--watch-seconds", type=float, default=90.0)
    parser.add_argument("--out", type=Path, default=ROOT / "ui-first-look")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("SMARTSYNC_HOME", str(ROOT / ".smartsync"))
    env.setdefault("DAGSTER_HOME", str(ROOT / ".dagster_home"))
    smartsync = Path(sys.executable).with_name("smartsync")
    url = f"http://127.0.0.1:{args.port}"
    with open(args.out / "ui.log", "w") as log:
        proc = subprocess.Popen(
            [str(smartsync), "ui", "--port", str(args.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_serving(url, proc, 180)
        time.sleep(args.watch_seconds)  # a user looking around: the daemon's sensors tick meanwhile
        summary = summarize(graphql(url))
        summary["screenshots"] = screenshots(url, args.out)
    finally:
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
            stopped = f"stopped {time.monotonic() - started:.1f} s after one Ctrl-C (exit {proc.returncode})"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stopped = "did NOT stop within 60 s of Ctrl-C"
    summary["ui"] = stopped
    print(json.dumps(summary, indent=1))
    bad = summary["failed_runs"] or summary["failed_partitions"] or summary["failed_checks"] or "NOT" in stopped
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
