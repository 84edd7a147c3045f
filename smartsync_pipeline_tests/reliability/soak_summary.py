"""The numbers of one soak and the table it prints (the table RELIABILITY.md records)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smartsync_pipeline.api.routes.webhooks import ReceiverCounters
from smartsync_pipeline_tests.reliability.chaos_sandbox import ServerTally
from smartsync_pipeline_tests.reliability.fault_schedule import FaultLog
from smartsync_pipeline_tests.reliability.loss_audit import ChangeLogFacts, ReadFacts
from smartsync_pipeline_tests.reliability.soak_config import SoakConfig
from smartsync_pipeline_tests.reliability.sync_runner import SyncTotals


@dataclass
class SoakFacts:
    config: SoakConfig
    initial_sync_seconds: float = 0.0
    initial_objects: int = 0
    chaos_seconds: float = 0.0
    final_sync_changes: int = 0
    activity_calls: int = 0
    changes: int = 0
    objects_touched: int = 0
    inbox_events: int = 0
    reads: ReadFacts = field(default_factory=ReadFacts)
    syncs: SyncTotals = field(default_factory=SyncTotals)
    faults: FaultLog = field(default_factory=FaultLog)
    server: ServerTally = field(default_factory=ServerTally)
    receiver: ReceiverCounters = field(default_factory=ReceiverCounters)
    change_log: ChangeLogFacts | None = None
    analyst: dict[str, Any] = field(default_factory=dict)
    problems: int = 0


def _rows(f: SoakFacts) -> list[tuple[str, str]]:
    c, r, s, srv = f.config, f.reads, f.syncs, f.server
    sources = r.by_source or {}
    rows = [
        ("chaos phase", f"{f.chaos_seconds:.0f} s, {c.scale} realm ({f.initial_objects} objects), {c.readers} readers"),
        ("reads", f"{r.reads} ({sources.get('api', 0)} api, {sources.get('mirror', 0)} mirror)"),
        ("  served stale, flagged", str(r.stale_flagged)),
        ("  refused (DataUnavailableError)", str(r.unavailable)),
        ("  unhandled exceptions", str(r.exceptions)),
        ("read latency p50 / p99", f"{r.percentile(0.5) * 1000:.0f} ms / {r.percentile(0.99) * 1000:.0f} ms"),
        ("on-demand refreshes (ran / reused)", f"{r.refreshes} / {r.refreshes_reused}"),
        ("sync processes", ", ".join(f"{n} {k}" for k, n in sorted(s.by_kind.items())) or "0"),
        ("  succeeded / killed / failed", f"{s.succeeded} / {s.killed} / {len(s.failed)}"),
        ("  Dagster runs reaped after a kill", str(s.reaped_runs)),
        ("syncs inside readers (refreshes)", str(r.syncs)),
        ("kills (SIGKILL mid-sync)", f"{f.faults.injected.get('process_killed', 0)}"),
    ]
    rows += [(f"fault: {kind}", str(n)) for kind, n in sorted(f.faults.injected.items())]
    rows += [
        ("client retries (syncs + readers)", f"{s.retries} + {r.retries}"),
        ("server answers 429 / 5xx / 401", f"{srv.throttled_429} / {srv.server_errors_5xx} / {srv.auth_failures_401}"),
        ("token refreshes ok / refused", f"{srv.token_refreshes} / {srv.token_refresh_failures}"),
        (
            "lock waits (count / seconds)",
            f"{s.lock_waits + r.lock_waits} / {s.lock_wait_seconds + r.lock_wait_seconds:.1f}",
        ),
        ("sandbox restarts (downtime)", ", ".join(f"{d:.1f} s" for d in f.faults.restart_downtimes) or "0"),
        ("simulator calls / changes / objects", f"{f.activity_calls} / {f.changes} / {f.objects_touched}"),
        (
            "webhooks sent / dup sent / stored / dup dropped",
            f"{srv.webhook_events} / {srv.webhook_duplicates_sent} / {f.receiver.events_stored} / "
            f"{f.receiver.duplicates}",
        ),
        ("analyst loops / fresh opens / errors", _analyst(f.analyst)),
        ("final sync changes", str(f.final_sync_changes)),
    ]
    if f.change_log is not None:
        rows.append(("change log rows (during soak)", f"{f.change_log.rows} ({f.change_log.rows_during_soak})"))
    rows.append(("LOSSES / PROBLEMS", str(f.problems)))
    return rows


def _analyst(a: dict[str, Any]) -> str:
    return f"{a.get('loops', 0)} / {a.get('fresh_opens', 0)} / {a.get('errors', 0)}" if a else "-"


def summary_table(f: SoakFacts) -> str:
    rows = _rows(f)
    width = max(len(k) for k, _ in rows)
    lines = [f"{'what':<{width}}  value", f"{'-' * width}  {'-' * 40}"]
    lines += [f"{k:<{width}}  {v}" for k, v in rows]
    if f.syncs.failed:
        lines.append("failed sync processes:")
        lines += [f"  {line}" for line in f.syncs.failed]
    return "\n".join(lines)
