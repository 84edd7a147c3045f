"""The chaos soak: everything smartsync does, at once, against one sandbox that misbehaves on a schedule.

For ``config.seconds``: the activity simulator writes business changes; sync processes (Dagster
materializations of the mirror assets and ``smartsync sync``) run back to back; reader processes ask
the domain services with a mix of max_age values; an analyst holds ``analyst.duckdb`` open; webhooks
arrive (duplicated, shuffled) at a ``WebhookReceiver``. Meanwhile the fault schedule throttles, fails,
slows, revokes tokens, restarts the sandbox and SIGKILLs sync processes. Then, faults off, one final
sync, and the loss audit. ``run_soak`` returns the problems found (empty = nothing lost) and the
summary table.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from smartsync_pipeline.api.webhook_receiver import WebhookReceiver
from smartsync_pipeline.cli.company_commands import connect_company
from smartsync_pipeline.defs.partitions import REALMS_PARTITIONS_NAME
from smartsync_pipeline.home import Home
from smartsync_pipeline.inbox.store import WebhookInbox
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.reliability import loss_audit
from smartsync_pipeline_tests.reliability.activity_driver import ActivityDriver
from smartsync_pipeline_tests.reliability.chaos_sandbox import ChaosSandbox
from smartsync_pipeline_tests.reliability.fault_schedule import FaultRunner, build_schedule
from smartsync_pipeline_tests.reliability.soak_config import SoakConfig
from smartsync_pipeline_tests.reliability.soak_summary import SoakFacts, summary_table
from smartsync_pipeline_tests.reliability.sync_runner import UNFINISHED, SyncRunner, SyncTotals

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 300.0


@dataclass
class SoakResult:
    """What a soak found. ``problems`` empty means nothing was lost and nothing misbehaved."""

    config: SoakConfig
    problems: list[str]
    summary: str
    facts: SoakFacts
    workdir: Path
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@contextlib.contextmanager
def _dagster_home(path: Path) -> Iterator[None]:
    """DAGSTER_HOME for the duration of ``connect_company`` (it registers the realm partition there)."""
    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = before


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"kind": "error", "what": f"unreadable line in {path.name}: {line[:120]}"})
    return out


def _wait_ready(paths: list[Path], procs: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        ready = sum(1 for p in paths if p.exists() and '"ready"' in p.read_text()[:300])
        if ready == len(paths):
            return
        dead = [p.args for p in procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"a worker process exited during start-up: {dead[0]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {ready} of {len(paths)} workers were ready after {timeout:.0f} s")
        time.sleep(0.1)  # poll interval; the deadline decides


def _run_sync_cli(env: dict[str, str], *args: str, timeout: float = 900.0) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", "sync", "--json", *args],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"smartsync sync {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def _start_worker(
    module: str, home: Home, out: Path, stop_file: Path, deadline: float, env: dict[str, str], args: list[str]
) -> subprocess.Popen:
    """A reader or analyst process writing JSON lines to ``out`` (its stderr next to it)."""
    argv = [sys.executable, "-m", f"smartsync_pipeline_tests.reliability.{module}", "--home", str(home.root)]
    argv += ["--out", str(out), "--stop-file", str(stop_file), "--deadline", str(deadline), *args]
    with open(out.with_suffix(".stderr"), "w") as stderr:
        return subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=stderr)


def run_soak(config: SoakConfig, workdir: Path, echo: Callable[[str], None] = print) -> SoakResult:
    """Run one soak in ``workdir`` (created; left in place with every log) and audit it."""
    soak = ChaosSoak(config, workdir, echo)
    try:
        soak.prepare()
        soak.chaos()
        soak.wind_down()
        return soak.audit()
    finally:
        soak.close()


class ChaosSoak:
    """One soak's processes, threads and files, phase by phase."""

    def __init__(self, config: SoakConfig, workdir: Path, echo: Callable[[str], None]) -> None:
        self.config = config
        self.workdir = workdir
        self.echo = echo
        workdir.mkdir(parents=True, exist_ok=True)
        self.home = Home(workdir / "smartsync_home").ensure()
        self.dagster_home = workdir / "dagster_home"
        self.dagster_home.mkdir(exist_ok=True)
        shutil.copyfile(REPO_ROOT / "dagster.yaml", self.dagster_home / "dagster.yaml")
        self.logs = workdir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.stop_file = workdir / "STOP"
        self.stop_file.unlink(missing_ok=True)
        self.reader_files = [self.logs / f"reader-{k}.jsonl" for k in range(config.readers)]
        self.analyst_file = self.logs / "analyst.jsonl"
        self.problems: list[str] = []
        self.facts = SoakFacts(config=config)
        self.workers: list[subprocess.Popen] = []
        self.proc: SandboxProcess | None = None
        self.receiver: WebhookReceiver | None = None
        self.inbox: WebhookInbox | None = None
        self.runner: SyncRunner | None = None
        self.faults: FaultRunner | None = None
        self.activity: ActivityDriver | None = None
        self.baseline = 0
        self.env: dict[str, str] = {}

    # -- phases ---------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Sandbox, connected company, initial full sync, webhook receiver, readers and analyst."""
        config, home = self.config, self.home
        self.echo(f"soak: starting a {config.scale} sandbox (seed {config.seed}) in {self.workdir}")
        self.proc = SandboxProcess.start(
            scale=config.scale,
            seed=config.seed,
            state_file=self.workdir / "sandbox_state.jsonl",
            startup_timeout=config.sandbox_start_seconds,
        )
        self.sandbox = ChaosSandbox(self.proc)
        self.realm = self.proc.realm_id
        info = self.proc.info
        with _dagster_home(self.dagster_home):
            connect_company(
                home, realm_id=self.realm, api_base=info["api_base"], token_url=info["token_url"],
                client_id=info["client_id"], client_secret=info["client_secret"],
                refresh_token=info["refresh_token"], webhook_verifier=info["webhook_verifier"], verify=False,
            )  # fmt: skip
        with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
            if not instance.has_dynamic_partition(REALMS_PARTITIONS_NAME, self.realm):
                instance.add_dynamic_partitions(REALMS_PARTITIONS_NAME, [self.realm])
        self.env = {
            **os.environ,
            "SMARTSYNC_HOME": str(home.root),
            "DAGSTER_HOME": str(self.dagster_home),
            "PYTHONPATH": str(REPO_ROOT),
            "SMARTSYNC_LOG_LEVEL": "INFO",
        }

        started = time.monotonic()
        first = _run_sync_cli(self.env, "--full")
        self.facts.initial_sync_seconds = time.monotonic() - started
        self.facts.initial_objects = int(first["created"])
        with MirrorDatabase(home).inspect() as con:
            self.baseline = change_log.head(con).change_id
        took = self.facts.initial_sync_seconds
        self.echo(f"soak: initial full sync of {self.facts.initial_objects} objects in {took:.1f} s")

        self.inbox = WebhookInbox(home.inbox_path)
        self.receiver = WebhookReceiver(self.inbox, info["webhook_verifier"]).start()
        self.sandbox.configure_webhooks(
            {"url": self.receiver.webhook_url, "format": "classic", "duplicate_rate": config.webhook_duplicate_rate,
             "shuffle": True}
        )  # fmt: skip

        deadline = time.time() + config.seconds + READY_TIMEOUT + 600  # workers stop by themselves after it
        for k, out in enumerate(self.reader_files):
            args = ["--realm", self.realm, "--seed", str(config.seed * 100 + k)]
            args += ["--pause", str(config.reader_pause_seconds)]
            self.workers.append(_start_worker("reader_worker", home, out, self.stop_file, deadline, self.env, args))
        self.workers.append(
            _start_worker("analyst_worker", home, self.analyst_file, self.stop_file, deadline, self.env, [])
        )
        _wait_ready([*self.reader_files, self.analyst_file], self.workers, READY_TIMEOUT)
        self.echo(f"soak: {config.readers} readers and an analyst ready; chaos for {config.seconds:.0f} s")

    def chaos(self) -> None:
        """Activity, syncs and the fault schedule for ``config.seconds``."""
        config = self.config
        self.activity = ActivityDriver(self.sandbox, config.simulate_operations, config.simulate_interval_seconds)
        self.runner = SyncRunner(config.sync_kinds, self.realm, self.env, self.logs, self.dagster_home, config.seed)
        schedule = build_schedule(config.seconds, config.fault_rounds)
        kill_kinds = tuple(sorted(config.sync_kinds, key=lambda k: k != "dagster"))  # a Dagster run first
        self.faults = FaultRunner(self.sandbox, schedule, self.runner.kill_busy, kill_kinds)
        started = time.monotonic()
        self.activity.start()
        self.runner.start()
        self.faults.begin()
        self.faults.join(timeout=config.seconds + 300)
        while time.monotonic() < started + config.seconds:
            time.sleep(0.2)  # the calm end of the phase: readers, syncs and activity go on
        self.facts.chaos_seconds = time.monotonic() - started

    def wind_down(self) -> None:
        """Faults off, no new activity, the running sync finishes, workers stop, webhooks drain; then
        the one final sync."""
        assert self.faults and self.activity and self.runner
        self.faults.stop()
        self.sandbox.calm()
        self.activity.stop()
        self.runner.stop(finish_within=600)
        self.stop_file.write_text("stop\n")
        for worker in self.workers:
            try:
                worker.wait(timeout=300)
            except subprocess.TimeoutExpired:
                worker.kill()
                self.problems.append(f"worker {worker.args[2]} did not stop within 300 s")
        if not self.sandbox.webhooks_delivered(120):
            self.problems.append("the sandbox still had undelivered webhooks after 120 s")
        self.echo("soak: chaos over; final sync and audit")
        final = _run_sync_cli(self.env)
        self.facts.final_sync_changes = int(final["created"]) + int(final["updated"]) + int(final["deleted"])

    def audit(self) -> SoakResult:
        """Everything the loss audit checks, and the numbers for the summary table."""
        assert self.faults and self.activity and self.runner and self.receiver
        facts, problems, changes = self.facts, self.problems, self.activity.changes
        with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
            stuck = instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED))
        if stuck:
            problems.append(f"{len(stuck)} Dagster run(s) left unfinished")

        truth = loss_audit.SandboxTruth(self.home, self.realm, self.sandbox)
        problems += loss_audit.mirror_problems(truth)
        problems += loss_audit.audit_verify_problems(self.env)
        found, facts.change_log = loss_audit.change_log_problems(truth, changes, self.baseline)
        problems += found
        reader_records = [r for path in self.reader_files for r in _read_lines(path)]
        found, facts.reads = loss_audit.reader_problems(reader_records, self.config.readers)
        problems += found
        found, facts.analyst = loss_audit.analyst_problems(_read_lines(self.analyst_file))
        problems += found
        found, facts.inbox_events = loss_audit.webhook_problems(self.home.inbox_path, changes, self.realm)
        problems += found

        facts.syncs = SyncTotals.of(self.runner.jobs)
        facts.faults = self.faults.log
        facts.server = self.sandbox.close_tally()
        facts.receiver = self.receiver.counters
        facts.activity_calls = self.activity.calls
        facts.changes = len(changes)
        facts.objects_touched = len({(c.entity, c.id) for c in changes})
        problems += [f"harness: {e}" for e in (*self.faults.errors, *self.runner.errors, *self.activity.errors)]
        if facts.syncs.invalid_grant:
            problems.append(f"invalid_grant in {facts.syncs.invalid_grant} sync process(es)")
        if facts.server.token_refresh_failures:
            problems.append(f"the token endpoint refused {facts.server.token_refresh_failures} refresh(es)")
        if facts.receiver.errors or facts.receiver.rejected_signature or facts.receiver.rejected_payload:
            problems.append(f"the webhook receiver rejected or failed deliveries: {facts.receiver}")
        facts.problems = len(problems)
        return SoakResult(self.config, problems, summary_table(facts), facts, self.workdir)

    def close(self) -> None:
        """Stop whatever still runs (also after a failure half-way)."""
        self.stop_file.write_text("stop\n")
        for thread in (self.faults, self.activity):
            if thread is not None and thread.is_alive():
                thread.stop()
        if self.runner is not None and self.runner.is_alive():
            self.runner.stop(finish_within=60)
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
        if self.receiver is not None:
            self.receiver.stop()
        if self.inbox is not None:
            self.inbox.close()
        if self.proc is not None:
            self.proc.stop()
