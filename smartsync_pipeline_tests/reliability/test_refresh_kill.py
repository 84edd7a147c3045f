"""SIGKILL of a syncing process at the dangerous moment of a token refresh: QBO has answered the
refresh (and may have rotated the refresh token), the process has not stored the answer yet.

The sandbox models Intuit's rotation (``rotation_interval_seconds=86400``: a refresh token keeps its
value for its first 24 hours, then the first refresh replaces it and the old one dies at once) and
holds its answer back (``token_pause_ms``) so the test can kill the client exactly there, on a signal
from the server's own counters, not on a timer.

- Token younger than 24 h: QBO did not rotate, the stored token still works, the next sync recovers.
- Token older than 24 h: QBO rotated, the new token died with the process. Nothing local can bring it
  back (Intuit documents no grace period), so the next command must say exactly that and what to do,
  and leave the stored (previous) token as it was.

Before the fix (issue 15, finding 6) the sandbox rotated on every refresh (the young-token case lost
the company too) and the error was the generic "must be reconnected" with no word of the crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.conftest import ConnectedCompany

REPO_ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400


def _sync_process(company: ConnectedCompany) -> subprocess.Popen:
    env = {**os.environ, "SMARTSYNC_HOME": str(company.home.root)}
    for name in ("SMARTSYNC_DEBUG", "SMARTSYNC_SECRET_KEY", "DAGSTER_HOME"):
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", "sync", "--entity", "Term"],
        env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _successful_refreshes(sandbox: SandboxProcess) -> int:
    return int(sandbox.control("stats", method="GET")["token_refreshes"]["successful"])


def _kill_inside_refresh(company: ConnectedCompany) -> None:
    """Start a sync that must refresh, SIGKILL it once QBO has issued the new tokens but before the
    answer left the server."""
    sandbox = company.sandbox
    sandbox.control("revoke", {"realm_id": company.realm_id})  # the next API call is a 401 → refresh
    before = _successful_refreshes(sandbox)
    sandbox.control("faults", {"token_pause_ms": 30_000})
    proc = _sync_process(company)
    deadline = time.monotonic() + 120
    while _successful_refreshes(sandbox) == before:
        assert proc.poll() is None, f"the sync ended before refreshing: {proc.communicate()}"
        assert time.monotonic() < deadline, "the sync never refreshed"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    sandbox.control("faults", {"token_pause_ms": 0})


def _run_sync(company: ConnectedCompany) -> subprocess.CompletedProcess:
    proc = _sync_process(company)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def company(sandbox_factory, tmp_path: Path) -> ConnectedCompany:
    sandbox = sandbox_factory(seed=61, rotation_interval_seconds=DAY)
    connected = ConnectedCompany(tmp_path / "home", sandbox)
    connected.engine().sync(entities=["Term"])
    return connected


def test_kill_during_a_refresh_that_did_not_rotate_recovers(company: ConnectedCompany) -> None:
    for _ in range(2):
        _kill_inside_refresh(company)
        tokens = CompanyStore(company.home).tokens(company.realm_id)
        assert tokens.refresh_in_flight() is not None  # the crash is on record

        done = _run_sync(company)

        assert done.returncode == 0, done.stderr
        assert tokens.refresh_in_flight() is None


def test_kill_during_a_rotating_refresh_says_what_happened(company: ConnectedCompany) -> None:
    company.sandbox.control("clock", {"advance_seconds": DAY + 60})  # the stored refresh token is a day old
    tokens = CompanyStore(company.home).tokens(company.realm_id)
    stored_before = tokens.path.read_bytes()

    _kill_inside_refresh(company)
    assert tokens.path.read_bytes() == stored_before  # the previous token was never overwritten

    for _ in range(2):  # every later command says the same, and changes nothing
        done = _run_sync(company)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        [line] = [x for x in done.stderr.splitlines() if x.startswith("Error")]
        assert f"company {company.realm_id} must be reconnected" in line, line
        assert "interrupted refresh" in line and "ended before it stored the answer" in line, line
        assert "authorize the app again" in line and f"smartsync connect --realm {company.realm_id}" in line, line
        assert tokens.path.read_bytes() == stored_before
        assert tokens.refresh_in_flight() is not None
