"""A real Runway Service process (``smartsync serve``) over a SMARTSYNC_HOME connected to a real
sandbox process, for the API tests. One per session: one sandbox (two companies), one full sync, one
server, shared by the API test modules; tests that change knobs (faults, tokens) put them back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from smartsync_pipeline.api.keys import KeyStore
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.conftest import ConnectedCompany

REPO = Path(__file__).resolve().parents[2]


class ApiServer:
    """``python -m smartsync_pipeline.cli.main serve --port 0 …`` and the URL from its first line."""

    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        environ = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        environ.update({"SMARTSYNC_HOME": str(home), "SMARTSYNC_LOG_LEVEL": "INFO", **(env or {})})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "smartsync_pipeline.cli.main", "serve", "--port", "0", *args],
            cwd=REPO, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise AssertionError(f"serve exited {self.proc.returncode}: {''.join(self.stderr_lines)[-3000:]}")
        self.line = line.strip()
        self.url = next(w for w in self.line.split() if w.startswith("http://"))
        self.session = requests.Session()

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    def get(self, path: str, key: str | None = None, headers: dict[str, str] | None = None, **kw: Any):
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        return self.session.get(self.url + path, headers=sent, timeout=kw.pop("timeout", 120), **kw)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.session.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class ServedHome:
    """A home with two sandbox companies, fully synced, a server on it and keys."""

    home: Path
    sandbox: SandboxProcess
    companies: list[ConnectedCompany]
    server: ApiServer
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.companies[0].realm_id

    @property
    def other_realm(self) -> str:
        return self.companies[1].realm_id

    def key(self, name: str, businesses: list[str], scopes: tuple[str, ...] = ("read",), rate: int = 100_000) -> str:
        _record, secret = KeyStore(self.companies[0].home).create(name, businesses, scopes, rate)
        self.keys[name] = secret
        return secret

    def reader(self):
        return self.companies[0].reader()


def start_served_home(root: Path, *server_args: str) -> Iterator[ServedHome]:
    sandbox = SandboxProcess.start(scale="small", seed=7, realms=2)
    server = None
    try:
        home = root / "home"
        home.mkdir()
        companies = [ConnectedCompany(home, sandbox, i) for i in range(2)]
        engine = companies[0].engine()
        for c in companies:
            engine.sync(c.realm_id, mode="full", trigger="manual")
        server = ApiServer(home, *server_args)
        served = ServedHome(home, sandbox, companies, server)
        served.key("all", [c.realm_id for c in companies])
        yield served
    finally:
        if server is not None:
            server.kill()
        sandbox.stop()


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedHome]:
    yield from start_served_home(tmp_path_factory.mktemp("api"), "--stale-if-error", "3600")
