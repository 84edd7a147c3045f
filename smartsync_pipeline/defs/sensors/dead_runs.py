"""Ends runs whose worker process died without a word: a run killed with SIGKILL (or by the OOM killer,
or with its machine's power) would otherwise stay STARTED in Dagster forever.

Dagster 1.13's run monitoring (enabled in ``dagster.yaml``) ends runs stuck in STARTING or CANCELING,
but it checks a STARTED run's worker only through the run launcher, and the ``DefaultRunLauncher``
cannot tell (``supports_check_run_worker_health`` is False). This sensor does it for the way our runs
are executed: every run worker, launched by the daemon or run in process by the CLI, writes the run's
RUN_START event with its own pid. A STARTED run whose pid is gone, a zombie, or a newer process that
reused the number, is reported failed, naming the pid. The status is read again after the pid is found
dead (a dead worker writes nothing more), so a run that finished just before is never touched.

It assumes the workers run on the machine that evaluates the sensor, which is the DefaultRunLauncher's
model (one process per run beside the code location).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

RUN_START = dg.DagsterEventType.RUN_START
START_SLACK_SECONDS = 2.0  # clock-tick rounding between the process start and its first event


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    pid: int
    reason: str


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def worker_gone(pid: int, run_started_at: float) -> str | None:
    """Why process ``pid``, which started a run at ``run_started_at``, is no longer that run's worker;
    None while it still is (or cannot be told apart from it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"its worker process {pid} is gone"
    except PermissionError:
        return None  # someone else's process: cannot be ours, but do not guess
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None  # no /proc here: the signal probe said it lives
    if stat[0] == "Z":
        return f"its worker process {pid} has exited"
    boot = _boot_time()
    if boot is not None:
        started = boot + int(stat[19]) / os.sysconf("SC_CLK_TCK")
        if started > run_started_at + START_SLACK_SECONDS:
            return f"its worker process {pid} is gone (the number now belongs to a newer process)"
    return None


def end_dead_runs(instance: dg.DagsterInstance) -> list[DeadRun]:
    """Report every STARTED run whose worker is gone as failed; returns what was ended."""
    ended: list[DeadRun] = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        records = instance.get_records_for_run(run.run_id, of_type=RUN_START, limit=1).records
        if not records:
            continue
        entry = records[0].event_log_entry
        pid = entry.dagster_event.pid if entry.dagster_event else None
        if pid is None:
            continue
        reason = worker_gone(pid, entry.timestamp)
        if reason is None:
            continue
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.status != dg.DagsterRunStatus.STARTED:
            continue  # it finished before its worker exited
        instance.report_run_failed(current, f"Run ended as failed: {reason} (killed or crashed).")
        ended.append(DeadRun(run.run_id, pid, reason))
    return ended


@dg.sensor(
    name="dead_run_reaper",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Fails STARTED runs whose worker process is gone (killed with SIGKILL, crashed).",
)
def dead_run_reaper(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    ended = end_dead_runs(context.instance)
    for dead in ended:
        context.log.warning(f"run {dead.run_id}: {dead.reason}; marked failed")
    if not ended:
        return dg.SkipReason("every STARTED run has a live worker")
    return dg.SkipReason("ended " + ", ".join(f"{d.run_id} ({d.reason})" for d in ended))
