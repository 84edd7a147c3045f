"""The sandbox as a background service: what ``smartsync sandbox start|stop|status`` manage.

One sandbox per SMARTSYNC_HOME, detached from the terminal (its own session, so Ctrl-C in the shell
that started it does not reach it), with everything about it in ``SMARTSYNC_HOME/sandbox/``:

- ``demo.json``: scale, seed, port and state file (the demo writes it; a service start reuses it), so
  the company the demo connected comes back with the same data, the same port and the same tokens;
- ``state.jsonl``: the sandbox's journal of writes and issued tokens (replayed on start);
- ``service.pid``: pid, port and start time of the running service;
- ``service.json``: its connection line (holds sandbox tokens: 0600, like the journal);
- ``service.log``: its log (never holds secrets).

A pid file whose process is gone, or is no sandbox, is stale and is removed by the next command.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from smartsync_pipeline.durable_files import write_atomically
from smartsync_pipeline.sandbox.process import control_request

SETTINGS_FILE = "demo.json"
STATE_FILE = "state.jsonl"
PID_FILE = "service.pid"
INFO_FILE = "service.json"
LOG_FILE = "service.log"
LOCK_FILE = "service.lock"
SERVE_MODULE = "smartsync_pipeline.sandbox"


class SandboxServiceError(RuntimeError):
    """The service could not be started or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class SandboxSettings:
    """What makes the service's company the same company every time it starts."""

    scale: str
    seed: int
    port: int
    state_file: str
    profile: str = "healthy"  # how the company runs its books (sandbox/company.py PROFILES)


@dataclass(frozen=True)
class ServiceStatus:
    """``running`` with where to reach it, or not running (and why, in ``detail``)."""

    running: bool
    pid: int | None = None
    port: int | None = None
    api_base: str | None = None
    realm_ids: tuple[str, ...] = ()
    started_at: str | None = None
    detail: str = ""

    def describe(self) -> str:
        if not self.running:
            return f"sandbox: stopped{f' ({self.detail})' if self.detail else ''}"
        realms = ", ".join(self.realm_ids) or "-"
        return f"sandbox: running (pid {self.pid}) at {self.api_base}, port {self.port}, company {realms}"


def is_sandbox_process(pid: int) -> bool:
    """True when ``pid`` is a live (not zombie) sandbox server process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's: the command line decides
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # not Linux: trust the signal probe
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return False
    return state != "Z" and SERVE_MODULE in cmdline and " serve " in f"{cmdline} "


def _reap(pid: int) -> None:
    """Collect the exit status when the service is our own child (a start from this process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


class SandboxService:
    """The background sandbox of one SMARTSYNC_HOME (``folder`` is its ``sandbox/`` directory)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    # -- files -------------------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        return self.folder / name

    def _ensure_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _lock(self) -> FileLock:
        self._ensure_folder()
        return FileLock(str(self._path(LOCK_FILE)), timeout=600)

    def saved_settings(self) -> SandboxSettings | None:
        path = self._path(SETTINGS_FILE)
        if not path.exists():
            return None
        doc = json.loads(path.read_text())
        return SandboxSettings(
            scale=str(doc["scale"]), seed=int(doc["seed"]), port=int(doc["port"]), state_file=str(doc["state_file"]),
            profile=str(doc.get("profile", "healthy")),
        )  # fmt: skip

    def settings(self, *, scale: str, seed: int, port: int, profile: str = "healthy") -> SandboxSettings:
        """The saved settings (same company as before), or new ones from the arguments."""
        return self.saved_settings() or SandboxSettings(scale, seed, port, str(self._path(STATE_FILE)), profile)

    def save_settings(self, settings: SandboxSettings) -> None:
        self._ensure_folder()
        self._write(SETTINGS_FILE, json.dumps(asdict(settings), indent=1))

    def _write(self, name: str, text: str, mode: int = 0o600) -> None:
        write_atomically(self._path(name), text, mode=mode)  # the project's one atomic-write helper

    def _pid_record(self) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(PID_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _clear(self) -> None:
        for name in (PID_FILE, INFO_FILE):
            self._path(name).unlink(missing_ok=True)

    # -- the running service -----------------------------------------------------------------------
    def status(self) -> ServiceStatus:
        record = self._pid_record()
        if record is None:
            return ServiceStatus(False, detail="not started")
        pid = int(record["pid"])
        if not is_sandbox_process(pid):
            _reap(pid)
            self._clear()
            return ServiceStatus(False, detail=f"process {pid} is gone; removed its stale pid file")
        info = self.info()
        return ServiceStatus(
            True,
            pid=pid,
            port=int(record["port"]),
            api_base=info.get("api_base"),
            realm_ids=tuple(r["realm_id"] for r in info.get("realms", [])) or (info.get("realm_id", ""),),
            started_at=record.get("started_at"),
        )

    def info(self) -> dict[str, Any]:
        """The running service's connection line (api_base, control_url, realm, tokens)."""
        try:
            return json.loads(self._path(INFO_FILE).read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return {}

    def control(self, path: str, payload: dict[str, Any] | None = None, method: str = "POST") -> dict[str, Any]:
        """Call the running service's control API (``/_sandbox/<path>``)."""
        control_url = self.info().get("control_url")
        if not control_url:
            raise SandboxServiceError("the sandbox is not running: start it with `smartsync sandbox start`")
        return control_request(control_url, path, payload, method)

    def start(
        self,
        *,
        scale: str = "small",
        seed: int = 7,
        port: int = 8765,
        startup_timeout: float = 300,
        profile: str = "healthy",
    ) -> ServiceStatus:
        """Start the service unless it runs already; returns its status. The company is the one the
        saved settings describe (the demo's), else a new one from the arguments."""
        with self._lock():
            current = self.status()
            if current.running:
                return current
            settings = self.settings(scale=scale, seed=seed, port=port, profile=profile)
            self.save_settings(settings)
            self._launch(settings, startup_timeout)
            return self.status()

    def _launch(self, settings: SandboxSettings, startup_timeout: float) -> None:
        argv = [
            sys.executable, "-m", SERVE_MODULE, "serve", "--host", "127.0.0.1", "--port", str(settings.port),
            "--scale", settings.scale, "--seed", str(settings.seed), "--state-file", settings.state_file,
            "--profile", settings.profile,
        ]  # fmt: skip
        info_path, log_path = self._path(INFO_FILE), self._path(LOG_FILE)
        info_path.unlink(missing_ok=True)
        out_fd = os.open(info_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        log_start = log_path.stat().st_size
        try:
            # Its own session: no terminal signal reaches it; it outlives the command that started it.
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out_fd, stderr=log_fd, start_new_session=True, close_fds=True
            )
        finally:
            os.close(out_fd)
            os.close(log_fd)
        deadline = time.monotonic() + startup_timeout
        while True:
            text = info_path.read_text()
            if text.endswith("\n"):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
                self._clear()
                with open(log_path, "rb") as fh:
                    fh.seek(log_start)
                    tail = fh.read().decode("utf-8", "replace").strip().splitlines()[-5:]
                if any("Address already in use" in line for line in tail):
                    raise SandboxServiceError(
                        f"the sandbox did not start on port {settings.port}: the port is already in use on "
                        "127.0.0.1 (another sandbox, perhaps of another SMARTSYNC_HOME, or another program): "
                        "stop it, or pass another --port"
                    )
                why = " / ".join(tail) or f"exit code {proc.returncode}"
                raise SandboxServiceError(f"the sandbox did not start on port {settings.port}: {why}")
            time.sleep(0.05)  # poll for the connection line; the deadline bounds the wait
        started = datetime.now(UTC).isoformat(timespec="seconds")
        self._write(PID_FILE, json.dumps({"pid": proc.pid, "port": settings.port, "started_at": started}))

    def stop(self, timeout: float = 10) -> ServiceStatus:
        """Stop the service (SIGTERM, SIGKILL after ``timeout``); returns what was running."""
        with self._lock():
            current = self.status()
            if not current.running or current.pid is None:
                return current
            os.kill(current.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while is_sandbox_process(current.pid):
                _reap(current.pid)
                if time.monotonic() > deadline:
                    os.kill(current.pid, signal.SIGKILL)
                    deadline = time.monotonic() + timeout
                time.sleep(0.05)  # poll for the exit; the deadline bounds the wait
            _reap(current.pid)
            self._clear()
            return current
