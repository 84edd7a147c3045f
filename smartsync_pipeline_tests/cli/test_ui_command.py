"""``smartsync ui`` stops completely (issue 14 item 2): after a run was launched through the webserver
and is in progress, one Ctrl-C in a real terminal (a pty, the command the foreground job of a shell),
or one SIGTERM, ends every process the command started — webserver, daemon, their code servers, the
run worker and the sandbox it brought up — within a bounded time, with a UI websocket left open as a
browser tab leaves it. (Before the fix, with that connection open, both left the code servers and the
run workers running; SIGTERM left every Dagster process running.)

Every process descended from the command is found through /proc while the run is in progress; their
sessions are remembered, so a process that was re-parented (orphaned) is still found afterwards.
"""

from __future__ import annotations

import base64
import fcntl
import os
import pty
import shutil
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from smartsync_pipeline.cli.sandbox_commands import connect_service_company
from smartsync_pipeline.home import Home
from smartsync_pipeline.sandbox.process import control_request
from smartsync_pipeline.sandbox.service import SandboxService

REPO_ROOT = Path(__file__).resolve().parents[2]
SMARTSYNC = str(Path(sys.executable).with_name("smartsync"))
JOB_SHELL = Path(__file__).with_name("job_shell.py")
STOP_BOUND_SECONDS = 30  # the command's grace period is 8 s; the rest is margin for a loaded machine

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(condition, timeout: float, what: str, output: list[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = b"".join(output or [])[-3000:].decode("utf-8", "replace")
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")
        time.sleep(0.2)  # poll interval; the deadline decides


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, session id, command line) of every process on the machine."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if stat[0] == "Z":
            continue
        found[int(entry)] = (int(stat[1]), int(stat[3]), cmdline.strip())
    return found


def _descendants(root: int) -> dict[int, tuple[int, int, str]]:
    """``root`` and every process below it."""
    procs = _processes()
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _, _) in procs.items() if ppid == parent]
        members.update(children)
        frontier.extend(children)
    return {pid: procs[pid] for pid in members if pid in procs}


def _descendant_sessions(root: int) -> set[int]:
    return {sid for _, sid, _ in _descendants(root).values()}


def _survivors(sessions: set[int], shell: int) -> list[str]:
    """Processes of those sessions still alive, except the shell (it stays, at its prompt)."""
    return [f"{pid} {cmd[:160]}" for pid, (_, sid, cmd) in _processes().items() if sid in sessions and pid != shell]


@dataclass
class UiWorld:
    home: Home
    dagster_home: Path
    realm_id: str
    sandbox_port: int


@pytest.fixture
def ui_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[UiWorld]:
    """A connected sandbox company as the demo leaves it (settings + journal under SMARTSYNC_HOME), its
    realm registered in a fresh instance, and the sandbox stopped: the UI has to bring it back."""
    home = Home(tmp_path / "smartsync_home").ensure()
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copyfile(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("SMARTSYNC_HOME", str(home.root))
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    service = SandboxService(home.root / "sandbox")
    port = _free_port()
    service.start(port=port)
    try:
        connect_service_company(home, service)
        realm = service.info()["realm_id"]
    finally:
        service.stop()
    yield UiWorld(home, dagster_home, realm, port)
    service.stop()


def _launch_run_through_the_webserver(web_port: int, realm_id: str) -> str:
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=web_port, timeout=60)
    return client.submit_job_execution(
        "mirror_sync",
        repository_location_name="smartsync_pipeline.definitions",
        repository_name="__repository__",
        tags={"dagster/partition": realm_id},
    )


def _start_ui_in_a_terminal(env: dict[str, str], web_port: int) -> tuple[subprocess.Popen, int, int, list[bytes]]:
    """``smartsync ui`` as the foreground job of a shell on a new pseudo-terminal, as a person runs it.
    Returns (shell, pid of the job, terminal master fd, output)."""
    master, slave = pty.openpty()

    def controlling_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    shell = subprocess.Popen(
        [sys.executable, str(JOB_SHELL), SMARTSYNC, "ui", "--port", str(web_port)],
        stdin=slave, stdout=slave, stderr=slave, env=env, cwd=REPO_ROOT, start_new_session=True,
        preexec_fn=controlling_terminal,
    )  # fmt: skip
    os.close(slave)
    output: list[bytes] = []

    def drain() -> None:  # a full pty buffer would block the command
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            output.append(chunk)

    threading.Thread(target=drain, daemon=True).start()
    _wait(lambda: any(p == shell.pid for p, _, _ in _processes().values()), 30, "the job to start", output)
    job = next(pid for pid, (ppid, _, _) in _processes().items() if ppid == shell.pid)
    return shell, job, master, output


@pytest.mark.filterwarnings("ignore::DeprecationWarning:gql.*")
@pytest.mark.parametrize("stop_with", ["ctrl-c", "sigterm"])
def test_ui_stops_every_process_after_a_run(ui_world: UiWorld, stop_with: str) -> None:
    web_port = _free_port()
    env = {**os.environ, "SMARTSYNC_HOME": str(ui_world.home.root), "DAGSTER_HOME": str(ui_world.dagster_home)}
    shell, ui, master, output = _start_ui_in_a_terminal(env, web_port)
    sessions: set[int] = set()
    try:

        def serving() -> bool:
            assert ui in _processes(), "smartsync ui exited:\n" + b"".join(output).decode(errors="replace")[-3000:]
            return _answers(f"http://127.0.0.1:{web_port}/server_info")

        _wait(serving, 180, "the webserver", output)
        # Slow QBO down so the run is still in progress when the user presses Ctrl-C.
        control_request(f"http://127.0.0.1:{ui_world.sandbox_port}/_sandbox", "faults", {"latency_ms": 700})
        run_id = _launch_run_through_the_webserver(web_port, ui_world.realm_id)
        browser_tab = _open_ui_websocket(web_port)  # the UI's live connection, as an open browser tab holds it
        with dg.DagsterInstance.from_config(str(ui_world.dagster_home)) as instance:

            def started() -> bool:
                run = instance.get_run_by_id(run_id)
                return run is not None and run.status == dg.DagsterRunStatus.STARTED

            _wait(started, 180, f"run {run_id} to start", output)
        tree = _descendants(ui)
        commands = [cmd for _, _, cmd in tree.values()]
        assert any("dagster_webserver" in c or "dagster-webserver" in c for c in commands) and any(
            "sandbox serve" in c for c in commands
        )
        sessions = {sid for _, sid, _ in tree.values()}
        signalled = time.monotonic()
        if stop_with == "ctrl-c":
            os.write(master, b"\x03")  # the terminal turns it into SIGINT for the foreground job
        else:
            os.kill(ui, signal.SIGTERM)
        deadline = signalled + STOP_BOUND_SECONDS
        while _survivors(sessions, shell.pid) and time.monotonic() < deadline:
            time.sleep(0.2)  # poll; the bound decides
        left = _survivors(sessions, shell.pid)
        assert left == [], f"still running {STOP_BOUND_SECONDS} s after {stop_with}:\n" + "\n".join(left)
        # The two start-up warnings `dagster dev` used to log are gone (see ui_command's docstring).
        text = b"".join(output).decode(errors="replace")
        assert "Dagster stopped" in text and "sandbox stopped" in text, text[-2000:]
        assert "dg dev" not in text and "will not be used to configure Dagster" not in text
        browser_tab.close()
    finally:  # whatever the outcome, nothing this test started may outlive it
        sessions |= _descendant_sessions(shell.pid)
        for pid, (_, sid, _) in _processes().items():
            if sid in sessions and pid != os.getpid():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shell.wait(10)
        os.close(master)


def _open_ui_websocket(web_port: int) -> socket.socket:
    """A GraphQL websocket to the webserver, opened like the UI's and left open."""
    sock = socket.create_connection(("127.0.0.1", web_port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /graphql HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{web_port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: graphql-ws\r\n\r\n"
        ).encode()
    )
    answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101"), answer[:200]
    return sock


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
