"""``smartsync sync | log | audit verify | reconcile``: drive and inspect the mirror from a shell."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.entities import entity, entity_names
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.snapshots import SnapshotReader
from smartsync_pipeline.sync.engine import SyncEngine, resolve_realm
from smartsync_pipeline.sync.reconcile import reconcile as run_reconcile
from smartsync_pipeline.sync.report import SyncReport

ENTITY_HELP = "entity to sync (repeatable); default: all of " + ", ".join(entity_names())
# The change-log columns `smartsync log` shows (the JSON documents stay out), in --json key order.
LOG_FIELDS = (
    "change_id",
    "recorded_at",
    "entity",
    "entity_id",
    "op",
    "sync_token_before",
    "sync_token_after",
    "changed_fields",
    "trigger",
    "run_id",
    "row_hash",
)


def _entities(values: tuple[str, ...]) -> list[str]:
    return [entity(v).name for v in values]  # validates early, with the list of known entities


class ProgressBars:
    """A rich progress bar per entity for backfills (shown only on a terminal)."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def __call__(self, name: str, done: int, total: int | None) -> None:
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=total)
        self.progress.update(self.tasks[name], completed=done, total=total)


def print_report(console: Console, report: SyncReport) -> None:
    table = Table(title=f"sync of company {report.realm_id} ({report.trigger})", title_justify="left")
    for col in ("entity", "mode", "created", "updated", "deleted", "unchanged", "rows"):
        table.add_column(col, justify="right" if col not in ("entity", "mode") else "left")
    for e in report.entities.values():
        table.add_row(
            e.entity,
            e.mode,
            str(e.created),
            str(e.updated),
            str(e.deleted),
            str(e.unchanged),
            str(e.rows_active),
        )
    console.print(table)
    span = f"changes {report.change_id_first}..{report.change_id_last}" if report.change_id_last else "no changes"
    console.print(
        f"{span}, chain head {report.chain_head_hash[:16]}…, {report.api_calls} API calls, "
        f"{report.duration_seconds:.2f} s"
    )
    for e in report.entities.values():
        if e.fallback_reason:
            console.print(f"  {e.entity}: full sync because {e.fallback_reason}")


@click.command()
@click.option("--realm", "realm_id", help="company realm id (optional with one company)")
@click.option("--entity", "entities", multiple=True, help=ENTITY_HELP)
@click.option("--full", is_flag=True, help="page everything instead of asking CDC for changes")
@click.option("--json", "as_json", is_flag=True, help="print the sync report as JSON")
@friendly_errors
def sync(realm_id: str | None, entities: tuple[str, ...], full: bool, as_json: bool) -> None:
    """Sync QBO into the mirror (incremental via CDC; full on first run or with --full)."""
    home = Home.from_env()
    # Check the arguments before anything touches SMARTSYNC_HOME (the engine creates its folders).
    names = _entities(entities) or None
    realm = resolve_realm(home, realm_id)
    console = Console(stderr=as_json)
    bars = ProgressBars(console)
    engine = SyncEngine(home)
    with bars.progress:
        report = engine.sync(
            realm,
            names,
            mode="full" if full else "auto",
            trigger="manual",
            progress=bars if console.is_terminal else None,
        )
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=1))
    else:
        print_report(console, report)


@click.command(name="log")
@click.option("--realm", "realm_id")
@click.option("--entity", "entity_name", help="only this entity")
@click.option("--id", "entity_id", help="only this object (the history of one object)")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def log_command(
    realm_id: str | None, entity_name: str | None, entity_id: str | None, limit: int, as_json: bool
) -> None:
    """Show the change log, newest last (from the newest published snapshot)."""
    home = Home.from_env()
    realm = resolve_realm(home, realm_id)
    where, params = ["realm_id = ?"], [realm]
    if entity_name:
        where.append("entity = ?")
        params.append(entity(entity_name).name)
    if entity_id:
        where.append("entity_id = ?")
        params.append(entity_id)
    reader = SnapshotReader(home)
    with reader.cursor(realm_id=realm) as (cur, _):
        rows = cur.execute(
            f"SELECT * FROM (SELECT {', '.join(LOG_FIELDS)} FROM change_log "
            f"WHERE {' AND '.join(where)} ORDER BY change_id DESC LIMIT ?) ORDER BY change_id",
            [*params, limit],
        ).fetchall()
    if as_json:
        click.echo(json.dumps([dict(zip(LOG_FIELDS, r, strict=True)) for r in rows], default=_json_default, indent=1))
        return
    if not rows:
        click.echo("no changes recorded for that selection")
        return
    table = Table(*("id", "recorded", "entity", "object", "op", "token", "fields", "trigger"))
    for r in rows:
        token = f"{r[5] or '-'}→{r[6] or '-'}"
        fields = ",".join(r[7] or []) if r[7] else ""
        table.add_row(str(r[0]), f"{r[1]:%Y-%m-%d %H:%M:%S}", r[2], r[3], r[4], token, fields, r[8])
    Console().print(table)


def _json_default(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else str(v)


@click.group()
def audit() -> None:
    """Check the transaction trail."""


@audit.command()
@click.option("--realm", "realm_id", help="one company (default: every company with a mirror)")
@click.option(
    "--snapshot",
    is_flag=True,
    help="verify the published snapshots instead: untouched since published, chain intact, equal to the mirror",
)
@friendly_errors
def verify(realm_id: str | None, snapshot: bool) -> None:
    """Recompute each company's hash chain; exit 1 and name the first broken link if one is broken."""
    from smartsync_pipeline.mirror.snapshot_audit import audit_snapshots
    from smartsync_pipeline.mirror.upgrade import ensure_upgraded

    home = Home.from_env()
    ensure_upgraded(home)  # a single-file mirror of an older release becomes per-company shards first
    realms = [home.realm(realm_id).realm_id] if realm_id else home.realm_ids()
    if not realms:
        raise click.ClickException(f"no company has a mirror under {home.realms_dir} yet; run `smartsync sync` first")
    broken = False
    for realm in realms:
        prefix = f"company {realm}: " if len(realms) > 1 or realm_id else ""
        problems: list[str] = []
        if snapshot:
            audit = audit_snapshots(home, realm)
            result = audit.chain
            problems = audit.problems
        else:
            with MirrorDatabase(home, realm).inspect() as con:
                result = change_log.verify(con)
        if result is not None and not result.ok:
            broken = True
            click.echo(f"{prefix}change log BROKEN at change {result.first_broken}: {result.reason}", err=True)
        for problem in problems:
            broken = True
            click.echo(f"{prefix}{problem}", err=True)
        if result is not None and result.ok and not problems:
            click.echo(
                f"{prefix}change log intact: {result.rows_checked} changes, head {result.head.change_id} "
                f"{result.head.row_hash}" + (" (snapshots as published, equal to the mirror)" if snapshot else "")
            )
    if broken:
        raise SystemExit(1)


@click.command()
@click.option("--realm", "realm_id")
@click.option("--entity", "entities", multiple=True, help="entity to compare (repeatable); default: all")
@click.option("--counts-only", is_flag=True, help="compare COUNT(*) only (one call per entity)")
@friendly_errors
def reconcile(realm_id: str | None, entities: tuple[str, ...], counts_only: bool) -> None:
    """Compare the mirror with QBO; exit 0 when equal, 1 with a table of differences when not."""
    home = Home.from_env()
    realm = resolve_realm(home, realm_id)
    names = _entities(entities) or None  # checked before the engine creates anything
    engine = SyncEngine(home)
    report = run_reconcile(
        engine.client(realm),
        SnapshotReader(home),
        realm,
        names,
        compare_ids=not counts_only,
    )
    table = Table("entity", "QBO", "mirror", "status")
    for e in report.entities.values():
        table.add_row(e.entity, str(e.qbo_count), str(e.mirror_count), "equal" if e.equal else e.describe())
    Console().print(table)
    if not report.equal:
        raise SystemExit(1)
