"""``smartsync ui``: the Dagster UI (webserver + daemon) on DAGSTER_HOME, stopped completely by Ctrl-C.

Why not ``dagster dev``: it left processes behind. The command used to run ``dagster dev`` with
``subprocess.run``, which SIGKILLs its child 0.25 s after a Ctrl-C, before ``dagster dev`` can stop the
webserver and daemon it started; a SIGTERM killed this process outright, with no clean-up at all; and a
webserver with a browser still connected waits for those connections to close. Whatever was left ran
on: webserver, daemon, their code servers and the run workers of runs in progress.

Here the webserver and the daemon (and so their code servers and every run worker, which Dagster
starts without a new session) share ONE process group that this command owns. Ctrl-C, SIGTERM or
SIGHUP interrupt the whole group (Dagster's own graceful stop: runs in progress are told to stop);
whatever is still alive ``GRACE_SECONDS`` later is SIGKILLed, and a second Ctrl-C kills at once. The
command returns only when no process of the group is left. Running the two services directly also
drops ``dagster dev``'s two start-up warnings (``dev`` superseded by ``dg dev``, which is not installed
here; and the repository's ``dagster.yaml`` in the working folder being ignored: it is the template
``smartsync instance init`` copies into DAGSTER_HOME, which is the file Dagster reads).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import click

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home

DEFINITIONS_MODULE = "smartsync_pipeline.definitions"
GRACE_SECONDS = 8.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class DagsterServices:
    """``dagster-webserver`` and ``dagster-daemon run`` in one process group, stopped as one."""

    def __init__(self, host: str, port: int) -> None:
        bin_dir = Path(sys.executable).parent
        module = ["-m", DEFINITIONS_MODULE]
        self.argvs = [
            [str(bin_dir / "dagster-webserver"), *module, "-h", host, "-p", str(port)],
            [str(bin_dir / "dagster-daemon"), "run", *module],
        ]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.pgid: int | None = None

    def start(self) -> DagsterServices:
        for argv in self.argvs:
            # The first leads a new process group (not the terminal's foreground group, so a Ctrl-C
            # reaches only this command, which decides how the group stops); the second joins it.
            group = 0 if self.pgid is None else self.pgid
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, process_group=group)
            self.procs.append(proc)
            if self.pgid is None:
                self.pgid = proc.pid
        return self

    def exited(self) -> subprocess.Popen[bytes] | None:
        """A service that ended on its own (it should not), else None."""
        return next((p for p in self.procs if p.poll() is not None), None)

    def signal_group(self, signum: int) -> None:
        if self.pgid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signum)

    def group_alive(self) -> bool:
        """True while any process of the group lives (our own children are reaped here first)."""
        for proc in self.procs:
            proc.poll()
        if self.pgid is None:
            return False
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, kill_now: threading.Event, grace: float = GRACE_SECONDS) -> float:
        """Interrupt the group, SIGKILL what is left after ``grace`` (or when ``kill_now`` is set), and
        wait until no process of the group is left. Returns the seconds it took."""
        started = time.monotonic()
        self.signal_group(signal.SIGINT)
        killed = False
        while self.group_alive():
            if not killed and (kill_now.is_set() or time.monotonic() - started > grace):
                self.signal_group(signal.SIGKILL)
                killed = True
            kill_now.wait(0.1)  # poll the group; the grace period bounds the wait before SIGKILL
        return time.monotonic() - started


def _demo_sandbox(home: Home) -> tuple[object | None, bool]:
    """The demo's sandbox service, started if it is not running: (service, started by us)."""
    from smartsync_pipeline.sandbox.service import SandboxService

    service = SandboxService(home.root / "sandbox")
    if service.saved_settings() is None:
        return None, False
    if service.status().running:
        click.echo(service.status().describe() + " (left running when the UI stops)")
        return service, False
    status = service.start()
    click.echo(status.describe() + " (stopped with the UI)")
    return service, True


@click.command()
@click.option("--port", default=3000, show_default=True, help="Dagster webserver port")
@click.option("--host", default="127.0.0.1", show_default=True, help="address the webserver listens on")
@friendly_errors
def ui(port: int, host: str) -> None:
    """The Dagster UI and its daemon on $DAGSTER_HOME, with the demo's sandbox company; Ctrl-C stops all."""
    if not os.environ.get("DAGSTER_HOME"):
        raise click.UsageError("DAGSTER_HOME is not set (`make ui` sets it to ./.dagster_home)")
    home = Home.from_env().ensure()
    service, started_sandbox = _demo_sandbox(home)
    stop_requested, kill_now = threading.Event(), threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop_requested.is_set():
            kill_now.set()  # a second Ctrl-C: do not wait for a graceful stop
        stop_requested.set()

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    services = DagsterServices(host, port)
    try:
        services.start()
        click.echo(f"Dagster UI on http://{host}:{port} — Ctrl-C stops it (a second Ctrl-C kills at once)")
        while not stop_requested.wait(0.5):
            ended = services.exited()
            if ended is not None:
                click.echo(f"{Path(ended.args[0]).name} exited with code {ended.returncode}; stopping", err=True)
                break
    finally:
        took = services.stop(kill_now)
        click.echo(f"Dagster stopped ({took:.1f} s)")
        if started_sandbox and service is not None:
            service.stop()  # type: ignore[attr-defined]
            click.echo("sandbox stopped")
        for signum, handler in previous.items():
            signal.signal(signum, handler)
