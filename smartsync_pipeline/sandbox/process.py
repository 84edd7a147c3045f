"""Run the sandbox as a real subprocess (tests, demo) or in this process (benchmarks).

Tests talk to the sandbox over real HTTP from another process, so throttling, concurrency and restarts
behave as they would against QBO. The first stdout line of ``serve`` is the JSON connection info.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class SandboxStartError(RuntimeError):
    """The sandbox process died or said nothing before the start-up deadline."""


def _option_args(options: dict[str, Any]) -> list[str]:
    """``{"per_window": 50, "freeze": True}`` → ``["--per-window", "50", "--freeze"]``."""
    args: list[str] = []
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        else:
            args += [flag, str(value)]
    return args


def control_request(control_url: str, path: str, payload: dict[str, Any] | None = None, method: str = "POST") -> dict:
    """Call a sandbox's JSON control API (``<control_url>/<path>``) and return the decoded answer."""
    url = f"{control_url}/{path.lstrip('/')}"
    data = json.dumps(payload if payload is not None else {}).encode() if method != "GET" else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    try:
        # The control URL is the http://127.0.0.1 address the sandbox printed.
        with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")[:500]
        raise RuntimeError(f"sandbox control {method} {path} failed: HTTP {exc.code} {body}") from None


class SandboxProcess:
    """A ``python -m smartsync_pipeline.sandbox serve`` subprocess and its connection info."""

    def __init__(self, argv: list[str], startup_timeout: float = 120.0) -> None:
        self._argv = argv
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[str] | None = None
        self._stderr_lines: list[str] = []
        self.info: dict[str, Any] = {}

    @classmethod
    def start(
        cls,
        scale: str = "small",
        seed: int = 7,
        realms: int = 1,
        state_file: str | os.PathLike[str] | None = None,
        extra_args: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 120.0,
        **options: Any,
    ) -> SandboxProcess:
        """Start a sandbox and wait for its JSON line. Extra keyword options become CLI flags
        (``per_window=100`` → ``--per-window 100``)."""
        argv = [
            sys.executable,
            "-m",
            "smartsync_pipeline.sandbox",
            "serve",
            "--host",
            host,
            "--port",
            str(port),
            "--seed",
            str(seed),
            "--scale",
            scale,
            "--realms",
            str(realms),
            "--parent-pid",
            str(os.getpid()),
        ]
        if state_file is not None:
            argv += ["--state-file", str(Path(state_file))]
        argv += _option_args(options)
        argv += list(extra_args)
        proc = cls(argv, startup_timeout=startup_timeout)
        proc._launch()
        return proc

    def _launch(self) -> None:
        self._stderr_lines = []
        self._proc = subprocess.Popen(
            self._argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._drain_stderr, args=(self._proc,), daemon=True).start()
        first_line: list[str] = []
        got_line = threading.Event()

        def read_first_line() -> None:
            assert self._proc is not None and self._proc.stdout is not None
            first_line.append(self._proc.stdout.readline())
            got_line.set()
            # Keep draining so a chatty server never blocks on a full pipe.
            for _ in self._proc.stdout:
                pass

        threading.Thread(target=read_first_line, daemon=True).start()
        deadline = time.monotonic() + self._startup_timeout
        while not got_line.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                break
        line = first_line[0] if first_line else ""
        if not line.strip():
            self._proc.kill()
            self._proc.wait(10)
            raise SandboxStartError(
                f"sandbox did not start (exit code {self._proc.returncode}); stderr:\n"
                + "".join(self._stderr_lines[-40:])
            )
        try:
            self.info = json.loads(line)
        except json.JSONDecodeError as exc:
            self._proc.kill()
            raise SandboxStartError("sandbox printed something other than its JSON info line") from exc

    def _drain_stderr(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self._stderr_lines.append(line)
            if len(self._stderr_lines) > 500:
                del self._stderr_lines[:100]

    @property
    def stderr(self) -> str:
        """What the sandbox wrote to stderr so far (its log; never holds secrets)."""
        return "".join(self._stderr_lines)

    @property
    def api_base(self) -> str:
        return str(self.info["api_base"])

    @property
    def realm_id(self) -> str:
        return str(self.info["realm_id"])

    @property
    def control_url(self) -> str:
        return str(self.info["control_url"])

    @property
    def base_url(self) -> str:
        """``http://host:port`` without a path."""
        return self.api_base.rsplit("/v3", 1)[0]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def control(self, path: str, payload: dict[str, Any] | None = None, method: str = "POST") -> dict:
        """Call the JSON control API (``/_sandbox/<path>``) and return the decoded answer."""
        return control_request(self.control_url, path, payload, method)

    def restart(self) -> SandboxProcess:
        """Stop and start again on the same port (state survives when started with a state file)."""
        port = int(self.api_base.rsplit(":", 1)[1].split("/")[0])
        self.stop()
        argv = list(self._argv)
        argv[argv.index("--port") + 1] = str(port)
        self._argv = argv
        deadline = time.monotonic() + 10
        while True:
            try:
                self._launch()
                return self
            except SandboxStartError:
                # The old socket may linger for a moment; the server binds with SO_REUSEADDR.
                if time.monotonic() > deadline:
                    raise

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 10 s)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SandboxProcess(api_base={self.info.get('api_base')!r}, pid={self.pid})"
