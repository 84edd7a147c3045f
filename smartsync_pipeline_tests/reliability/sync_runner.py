"""Back-to-back sync processes for a soak: Dagster materializations of the mirror assets and
``smartsync sync`` runs, one at a time, any of which the fault schedule may SIGKILL mid-sync.

A killed ``dagster asset materialize`` leaves its run STARTED: nothing in Dagster watches an in-process
CLI run. The dead run holds nothing later syncs need (writers are serialized by the engine's file locks,
which die with the process; there is no Dagster pool whose slot it could keep, see B5 in
RELIABILITY.md), so the next sync proceeds. For honest run history the runner marks such runs failed,
as an operator would; those "reaped" runs are counted and reported.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGSTER_BIN = str(Path(sys.executable).with_name("dagster"))
IN_PROCESS = json.dumps({"execution": {"config": {"in_process": {}}}})
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
INVALID_GRANT_MARKERS = ("invalid_grant", "must be reconnected")


@dataclass
class SyncJob:
    """One sync process and how it ended."""

    number: int
    kind: str  # dagster | cli
    started: float
    seconds: float = 0.0
    returncode: int | None = None
    killed: bool = False
    reaped_runs: int = 0
    retries: int = 0
    lock_wait_seconds: float = 0.0
    invalid_grant: bool = False
    error_line: str = ""
    log_path: str = ""

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and not self.killed


def sync_command(kind: str, realm_id: str) -> list[str]:
    if kind == "dagster":
        return [
            DAGSTER_BIN, "asset", "materialize", "-m", "smartsync_pipeline.definitions",
            "--select", "group:mirrors", "--partition", realm_id, "--config-json", IN_PROCESS,
        ]  # fmt: skip
    if kind == "cli":
        return [sys.executable, "-m", "smartsync_pipeline.cli.main", "sync", "--realm", realm_id, "--json"]
    raise ValueError(f"unknown sync kind {kind!r}")


def _holds_sync_lock(pid: int, lock_name: str) -> bool:
    """True while process ``pid`` has the realm's sync lock file open: it is inside ``SyncEngine.sync``
    (holding the lock, or trying to take it)."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").endswith(lock_name):
                    return True
            except OSError:
                continue
    except OSError:
        return False
    return False


def _last_error_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        stripped = line.strip()
        if stripped.startswith(("Error:", "dagster.", "smartsync_pipeline.")) or "Error" in stripped[:60]:
            return stripped[:300]
    return text.strip().splitlines()[-1][:300] if text.strip() else ""


class SyncRunner(threading.Thread):
    """Runs sync processes back to back until stopped; ``kill_busy`` SIGKILLs the one inside a sync."""

    def __init__(
        self,
        kinds: tuple[str, ...],
        realm_id: str,
        env: dict[str, str],
        logs_dir: Path,
        dagster_home: Path,
        seed: int = 0,
    ) -> None:
        super().__init__(name="soak-syncs", daemon=True)
        self.kinds = kinds
        self.realm_id = realm_id
        self.env = env
        self.logs_dir = logs_dir
        self.dagster_home = dagster_home
        self.jobs: list[SyncJob] = []
        self.errors: list[str] = []
        self._rng = random.Random(seed)
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._current: tuple[SyncJob, subprocess.Popen] | None = None
        self._lock_name = f"/realms/{realm_id}/locks/sync.lock"  # the company's sync lock (engine.realm_lock)

    # -- control ----------------------------------------------------------------------------------
    def stop(self, finish_within: float = 300.0) -> None:
        """Start no new process; let the running one finish (killed after ``finish_within`` s)."""
        self._halt.set()
        self.join(timeout=finish_within)
        if self.is_alive():
            with self._lock:
                if self._current is not None:
                    self._current[1].kill()
            self.join(timeout=60)

    def kill_busy(self, timeout: float, kind: str | None = None) -> str | None:
        """SIGKILL the running sync process (of ``kind``, when given) once it is inside a sync; None if
        there was none within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._halt.is_set():
            with self._lock:
                current = self._current
                busy = current is not None and current[1].poll() is None and kind in (None, current[0].kind)
                if busy and _holds_sync_lock(current[1].pid, self._lock_name):
                    job, proc = current
                    time.sleep(self._rng.uniform(0.0, 0.4))  # a random point inside the sync
                    proc.send_signal(signal.SIGKILL)
                    job.killed = True
                    age = time.monotonic() - job.started
                    return f"{job.kind} sync #{job.number} (pid {proc.pid}) after {age:.1f} s"
            time.sleep(0.02)  # poll interval; the deadline decides
        return None

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        number = 0
        while not self._halt.is_set():
            kind = self.kinds[number % len(self.kinds)]
            number += 1
            try:
                self._run_one(number, kind)
            except Exception as exc:  # a harness problem, reported by the soak
                self.errors.append(f"sync #{number} ({kind}): {type(exc).__name__}: {exc}")
                self._halt.wait(1.0)

    def _run_one(self, number: int, kind: str) -> None:
        log_path = self.logs_dir / f"sync-{number:04d}-{kind}.log"
        out_path = self.logs_dir / f"sync-{number:04d}-{kind}.out"
        job = SyncJob(number, kind, time.monotonic(), log_path=str(log_path))
        with open(log_path, "w") as err, open(out_path, "w") as out:
            proc = subprocess.Popen(
                sync_command(kind, self.realm_id), env=self.env, cwd=REPO_ROOT, stdout=out, stderr=err
            )
            with self._lock:
                self._current = (job, proc)
            try:
                job.returncode = proc.wait()
            finally:
                with self._lock:
                    self._current = None
        job.seconds = time.monotonic() - job.started
        stderr = log_path.read_text(errors="replace")
        job.invalid_grant = any(m in stderr for m in INVALID_GRANT_MARKERS)
        if job.killed and kind == "dagster":
            job.reaped_runs = self.reap_dead_runs(f"run worker of sync #{number} was killed (SIGKILL) by the soak")
        if job.returncode != 0 and not job.killed:
            job.error_line = _last_error_line(stderr)
        if kind == "cli":
            job.retries = stderr.count("retrying in")
            if job.returncode == 0:
                report = json.loads(out_path.read_text())
                job.retries = max(job.retries, int(report.get("retries", 0)))
                job.lock_wait_seconds = float(report.get("lock_wait_seconds", 0.0))
        self.jobs.append(job)

    def reap_dead_runs(self, reason: str) -> int:
        """Mark unfinished runs failed (bookkeeping only: a dead run holds nothing that blocks the next
        sync). Only one sync process runs at a time and it is dead now, so every unfinished run
        belongs to a dead worker."""
        reaped = 0
        with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
            for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
                instance.report_run_failed(run, reason)
                reaped += 1
        return reaped


@dataclass
class SyncTotals:
    """The sync processes of a soak, summed up."""

    by_kind: dict[str, int] = field(default_factory=dict)
    succeeded: int = 0
    killed: int = 0
    failed: list[str] = field(default_factory=list)
    reaped_runs: int = 0
    retries: int = 0
    lock_wait_seconds: float = 0.0
    lock_waits: int = 0
    invalid_grant: int = 0

    @classmethod
    def of(cls, jobs: list[SyncJob]) -> SyncTotals:
        t = cls()
        for job in jobs:
            t.by_kind[job.kind] = t.by_kind.get(job.kind, 0) + 1
            t.succeeded += job.succeeded
            t.killed += job.killed
            t.reaped_runs += job.reaped_runs
            t.retries += job.retries
            t.lock_wait_seconds += job.lock_wait_seconds
            t.lock_waits += job.lock_wait_seconds > 0.01
            t.invalid_grant += job.invalid_grant
            if not job.succeeded and not job.killed:
                t.failed.append(f"#{job.number} {job.kind} rc={job.returncode}: {job.error_line}")
        return t
