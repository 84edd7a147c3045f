"""``smartsync demo`` as a user runs it, twice (issue 14 items 3 and 6): the first run backfills, a re-run
says it synced incrementally (it used to say "one full sync"), and afterwards the sandbox keeps running
as a background service, so the connected company answers live, as the closing text says."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from smartsync_pipeline.defs.assets.mirrors import MIRROR_KEYS
from smartsync_pipeline.sandbox.service import SandboxService

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_demo_twice_then_the_company_keeps_answering(tmp_path: Path) -> None:
    home, dagster_home = tmp_path / "smartsync_home", tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, "SMARTSYNC_HOME": str(home), "DAGSTER_HOME": str(dagster_home), "COLUMNS": "200"}

    def smartsync(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "smartsync_pipeline.cli.main", *args],
            env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip

    port = _free_port()
    try:
        first = smartsync("demo", "--port", str(port), "--operations", "20")
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
        assert "a full sync (the backfill)" in first.stdout
        assert "incremental" not in first.stdout.split("2. Syncing the mirror")[1].split("3. The runway")[0]
        assert "keeps running in the background" in first.stdout and "smartsync sandbox status" in first.stdout
        # The checks are evaluated by the demo itself, not "Not Evaluated" until a first run (item 5).
        keys = [dg.AssetCheckKey(key, "freshness") for key in MIRROR_KEYS.values()]
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
        assert set(latest) == set(keys) and {r.status.value for r in latest.values()} == {"SUCCEEDED"}

        second = smartsync("demo", "--port", str(port), "--operations", "20")
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
        step2 = second.stdout.split("2. Syncing the mirror")[1].split("3. The runway")[0]
        assert "an incremental (CDC) sync" in step2 and "full sync" not in step2
        assert "already connected" in second.stdout

        # After the demo: the service runs, and live commands work against it.
        status = smartsync("sandbox", "status")
        assert status.returncode == 0 and f"port {port}" in status.stdout, status.stdout
        live = smartsync("bills-due", "--max-age", "0")
        assert live.returncode == 0, live.stderr
        assert "source: api" in live.stdout or "source: mirror" in live.stdout
        assert "STALE" not in live.stdout
        synced = smartsync("sync")
        assert synced.returncode == 0, synced.stderr
        reconciled = smartsync("reconcile")
        assert reconciled.returncode == 0, reconciled.stdout[-2000:]
    finally:
        SandboxService(home / "sandbox").stop()
