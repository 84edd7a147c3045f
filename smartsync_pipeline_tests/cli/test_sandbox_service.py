"""``smartsync sandbox start|status|stop``: the sandbox as a background service of SMARTSYNC_HOME (issue 14
item 3). Real CLI processes: start → status running with its port → a sync works → stop → status stopped;
a restart brings the same company back and the stored (rotated) tokens still work."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartsync_pipeline.sandbox.service import SandboxService, is_sandbox_process

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smartsync(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMARTSYNC_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", *args],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "smartsync_home"
    yield root
    SandboxService(root / "sandbox").stop()  # never leave a service behind, whatever the test did


def test_start_status_sync_stop(home: Path) -> None:
    port = _free_port()
    started = smartsync(home, "sandbox", "start", "--port", str(port), "--connect")
    assert started.returncode == 0, started.stderr
    assert f"port {port}" in started.stdout and "connected company" in started.stdout

    status = smartsync(home, "sandbox", "status")
    assert status.returncode == 0, status.stderr
    assert "running" in status.stdout and f"port {port}" in status.stdout
    pid = int(status.stdout.split("(pid ")[1].split(")")[0])
    assert os.getsid(pid) == pid, "the service leads its own session: no terminal signal reaches it"

    synced = smartsync(home, "sync", "--json")
    assert synced.returncode == 0, synced.stderr
    report = json.loads(synced.stdout)
    assert report["mode"] == "full" and report["created"] > 0

    stopped = smartsync(home, "sandbox", "stop")
    assert stopped.returncode == 0 and f"pid {pid}" in stopped.stdout
    assert not is_sandbox_process(pid)  # gone (or a zombie, when nobody reaps orphans here)
    after = smartsync(home, "sandbox", "status")
    assert after.returncode == 3 and "stopped" in after.stdout and "smartsync sandbox start" in after.stdout
    assert not (home / "sandbox" / "service.pid").exists()

    # The same company again (the demo's settings and journal): the rotated tokens still work.
    again = smartsync(home, "sandbox", "start")
    assert again.returncode == 0 and f"port {port}" in again.stdout, again.stderr
    resync = smartsync(home, "sync", "--json")
    assert resync.returncode == 0, resync.stderr
    assert json.loads(resync.stdout)["mode"] == "incremental"
    assert smartsync(home, "sandbox", "stop").returncode == 0


def test_start_twice_keeps_one_service_and_a_stale_pid_file_is_cleared(home: Path) -> None:
    port = _free_port()
    first = smartsync(home, "sandbox", "start", "--port", str(port))
    second = smartsync(home, "sandbox", "start", "--port", str(port))
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    pid = int(first.stdout.split("(pid ")[1].split(")")[0])
    assert f"(pid {pid})" in second.stdout

    os.kill(pid, 9)  # the service dies without cleaning up
    status = smartsync(home, "sandbox", "status")
    assert status.returncode == 3 and "stale pid file" in status.stdout


def test_a_taken_port_is_one_clear_line(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        failed = smartsync(home, "sandbox", "start", "--port", str(port))
    assert failed.returncode == 1
    assert failed.stderr.startswith("Error: the sandbox did not start on port") and "Traceback" not in failed.stderr
    # what happened and what to do, not the server's stack frames (they said 'File ".../socketserver.py"')
    assert "the port is already in use" in failed.stderr and "--port" in failed.stderr
    assert 'File "' not in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
    assert smartsync(home, "sandbox", "status").returncode == 3
