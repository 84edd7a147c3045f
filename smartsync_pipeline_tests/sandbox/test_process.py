"""Starting the sandbox: the JSON start-up line, both CLIs, the in-process server, clear start errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests

from smartsync_pipeline.sandbox.process import SandboxProcess, SandboxStartError
from smartsync_pipeline.sandbox.server import SandboxServer
from smartsync_pipeline_tests.sandbox.api_session import SandboxApi

INFO_KEYS = {
    "api_base", "token_url", "realm_id", "client_id", "client_secret", "refresh_token", "access_token",
    "webhook_verifier", "auth_code", "control_url", "realms", "pid", "scale", "seed",
}  # fmt: skip


def test_start_up_line_describes_how_to_connect(sandbox):
    info = sandbox.info
    assert INFO_KEYS <= set(info)
    assert info["api_base"].startswith("http://127.0.0.1:") and info["api_base"].endswith("/v3")
    port = info["api_base"].split(":")[2].split("/")[0]
    assert info["control_url"] == f"http://127.0.0.1:{port}/_sandbox"
    assert info["token_url"] == f"http://127.0.0.1:{port}/oauth2/v1/tokens/bearer"
    assert (info["scale"], info["seed"], info["pid"]) == ("small", 7, sandbox.pid)
    assert info["realms"][0]["realm_id"] == info["realm_id"]
    assert "client_secret" not in repr(sandbox) and info["access_token"] not in repr(sandbox)


def test_several_realms_in_one_server(sandbox_factory):
    sandbox = sandbox_factory(realms=3, seed=12)
    realms = sandbox.info["realms"]
    assert len(realms) == 3 and len({r["realm_id"] for r in realms}) == 3
    for realm in realms:
        assert SandboxApi(sandbox, realm_id=realm["realm_id"]).count("SELECT COUNT(*) FROM Vendor") > 0


@pytest.mark.parametrize(
    "module",
    [["-m", "smartsync_pipeline.sandbox", "serve"], ["-m", "smartsync_pipeline.cli.main", "sandbox", "serve"]],
)
def test_both_command_lines_print_the_json_line_first(module):
    proc = subprocess.Popen(
        [
            sys.executable,
            *module,
            "--port",
            "0",
            "--seed",
            "3",
            "--scale",
            "small",
            "--realms",
            "2",
            "--per-window",
            "50",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
        assert INFO_KEYS <= set(info) and len(info["realms"]) == 2
        limits = requests.get(info["control_url"] + "/limits", timeout=10).json()
        assert limits["per_window"] == 50
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0


def test_a_sandbox_that_cannot_start_raises_with_its_stderr():
    with pytest.raises(SandboxStartError, match="scale"):
        SandboxProcess.start(extra_args=["--scale", "enormous"], startup_timeout=30)


def test_in_process_server():
    with SandboxServer(seed=5, scale="small") as server:
        info = server.info
        response = requests.get(
            f"{server.api_base}/company/{server.realm_id}/query",
            params={"query": "SELECT COUNT(*) FROM Bill"},
            headers={"Authorization": f"Bearer {info['access_token']}"},
            timeout=10,
        )
        assert response.json()["QueryResponse"]["totalCount"] == 250
    with pytest.raises(requests.ConnectionError):
        requests.get(info["control_url"] + "/health", timeout=2)


def test_control_api_errors_are_clear(sandbox):
    with pytest.raises(RuntimeError, match="HTTP 404"):
        sandbox.control("nothing-here")
    with pytest.raises(RuntimeError, match="unknown realm"):
        sandbox.control("simulate", {"realm_id": "123", "operations": 1})
    assert sandbox.control("health", method="GET")["ok"] is True


def test_the_sandbox_exits_when_its_parent_dies(tmp_path):
    """A killed test run must not leave sandboxes behind: the child watches its parent."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys\n"
        "from smartsync_pipeline.sandbox.process import SandboxProcess\n"
        "p = SandboxProcess.start(seed=2)\n"
        "print(p.pid, flush=True)\n"
        "import os; os._exit(0)\n"  # dies without stopping its sandbox
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True)
    child = int(out.stdout.strip())
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
