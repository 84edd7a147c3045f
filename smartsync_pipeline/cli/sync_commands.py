"""``smartsync sync | log | audit verify | reconcile``: drive and inspect the mirror from a shell."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.cli.process_end import nothing_to_tear_down
from smartsync_pipeline.defs.change_archive import verify_archive
from smartsync_pipeline.entities import entity, entity_names
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror import change_log
from smartsync_pipeline.mirror.anchors import AnchorStore, check_points
from smartsync_pipeline.mirror.database import MirrorDatabase
from smartsync_pipeline.mirror.snapshots import SnapshotReader
from smartsync_pipeline.smart.materialization import DagsterTrail
from smartsync_pipeline.sync.company_reconciliation import DEFAULT_MONTHS, reconcile_reports
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
        if e.repaired:
            console.print(f"  {e.entity}: repaired {e.repaired} row(s) whose content differed from QBO")


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
    _record_in_dagster(report, "full" if full else "auto")
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=1))
    else:
        print_report(console, report)
    nothing_to_tear_down()  # the mirror is checkpointed, closed and published; the trail is closed


def _record_in_dagster(report: SyncReport, requested_mode: str) -> None:
    """One trail: a CLI sync shows in Dagster like scheduled ones (a materialization of each synced
    mirror asset for the company's partition) when an instance is configured (DAGSTER_HOME)."""
    trail = DagsterTrail()
    try:
        trail.record_quietly(report, requested_mode=requested_mode)
    finally:
        trail.close()


@click.command(name="log")
@click.option("--realm", "realm_id", help="company realm id (optional with one company)")
@click.option("--entity", "entity_name", help="only this entity")
@click.option("--id", "entity_id", help="only this object (the history of one object)")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help="the newest N changes")
@click.option("--json", "as_json", is_flag=True, help="every column, including run id and row hash, as JSON")
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
    table = change_table()
    for r in rows:
        table.add_row(
            str(r[0]), f"{r[1]:%Y-%m-%d %H:%M:%S}", r[2], r[3], r[4], token_text(r[4], r[5], r[6]),
            fields_text(r[4], r[7]), r[8],
        )  # fmt: skip
    console = Console()
    console.print(table)
    console.print(LOG_LEGEND)


# How a change-log row reads on a terminal: every cell wraps (fold) instead of being cut to "…", and
# the token and fields columns say what an empty value means for that op.
LOG_LEGEND = (
    "token: QBO SyncToken before → after; a create has none before ('new'), a delete none after "
    "('deleted'), and a delete the mirror never saw as a live object has neither ('unseen'). "
    "fields: what an update changed; creates and deletes carry the whole object (smartsync log --json, "
    "or the before_json/after_json columns in `smartsync sql`)."
)


def change_table(title: str | None = None) -> Table:
    """The columns `smartsync log` and the demo show for change-log rows (cells wrap, never cut)."""
    table = Table(title=title)
    for name in ("id", "recorded", "entity", "object", "op", "token", "fields", "trigger"):
        table.add_column(name, overflow="fold")
    return table


def token_text(op: str, before: str | None, after: str | None) -> str:
    if op == "create":
        return f"new → {after or '?'}"
    if op == "delete":
        return f"{before or 'unseen'} → deleted"
    return f"{before or '?'} → {after or '?'}"


def fields_text(op: str, fields: list[str] | None) -> str:
    if op == "create":
        return "(new object)"
    if op == "delete":
        return "(deleted)"
    return ", ".join(fields) if fields else "(only SyncToken/MetaData)"


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
    """Recompute each company's hash chain and compare its head with what was recorded outside it (the
    company's anchor file and Parquet archive, Dagster's event log when DAGSTER_HOME is set); with
    --snapshot, check the published snapshots instead. Exit 1 and name every disagreement (a broken
    link, a cut or rewritten tail, a modified snapshot)."""
    from smartsync_pipeline.mirror.upgrade import ensure_upgraded

    home = Home.from_env()
    ensure_upgraded(home)  # a single-file mirror of an older release becomes per-company shards first
    realms = [home.realm(realm_id).realm_id] if realm_id else home.realm_ids()
    if not realms:
        raise click.ClickException(f"no company has a mirror under {home.realms_dir} yet; run `smartsync sync` first")
    dagster = _DagsterHeads()
    broken = False
    try:
        for realm in realms:
            prefix = f"company {realm}: " if len(realms) > 1 or realm_id else ""
            checked = _verify_snapshots(home, realm) if snapshot else _verify_mirror(home, realm, dagster)
            result, problems, notes = checked
            if result is not None and not result.ok:
                problems.insert(0, f"change {result.first_broken}: {result.reason}")
            if result is not None and not problems:
                click.echo(
                    f"{prefix}change log intact: {result.rows_checked} changes, head {result.head.change_id} "
                    f"{result.head.row_hash}" + (" (snapshots as published, equal to the mirror)" if snapshot else "")
                )
                for note in notes:
                    click.echo(f"  {note}")
                continue
            broken = True
            first = f" at change {result.first_broken}" if result is not None and not result.ok else ""
            click.echo(f"{prefix}change log BROKEN{first}: {problems[0]}", err=True)
            for problem in problems[1:]:
                click.echo(f"  also: {problem}", err=True)
    finally:
        dagster.close()
    if broken:
        raise SystemExit(1)


def _verify_snapshots(home: Home, realm: str) -> tuple[change_log.ChainVerification | None, list[str], list[str]]:
    """The company's published snapshots: as sealed, chain intact, equal to the mirror, and a head
    some sync anchored."""
    from smartsync_pipeline.mirror.snapshot_audit import audit_snapshots

    audit = audit_snapshots(home, realm)
    problems = list(audit.problems)
    if audit.chain is not None:
        problems += AnchorStore(home, realm).check_published(audit.chain.head)
    return audit.chain, problems, []


def _verify_mirror(
    home: Home, realm: str, dagster: _DagsterHeads
) -> tuple[change_log.ChainVerification, list[str], list[str]]:
    """The company's mirror file: its chain, then its head against the anchor file, the archive and
    Dagster's recorded heads."""
    notes: list[str] = []
    with MirrorDatabase(home, realm).inspect() as con:
        result = change_log.verify(con)
        head = change_log.head(con)
        row_hash_at = change_log.row_hash_reader(con)
        anchor = AnchorStore(home, realm).check(head, row_hash_at)
        problems = [] if anchor.ok else [anchor.reason]
        notes.append(f"anchor: {anchor.reason}")
        archived, archive_problems = verify_archive(con, home.realm(realm).archive_dir)
        problems += archive_problems
        notes.append(f"archive: {archived} archived changes checked")
        started = con.execute("SELECT min(recorded_at) FROM change_log WHERE change_id = 1").fetchone()
        recorded, dagster_note = dagster.heads(realm, since=started[0] if started else None)
        problems += check_points(head, row_hash_at, recorded)
        notes.append(dagster_note)
    return result, problems, notes


class _DagsterHeads:
    """The chain heads in Dagster's event log, when an instance is configured (opened once)."""

    def __init__(self) -> None:
        self.instance: Any = None
        self.unavailable = ""
        if not os.environ.get("DAGSTER_HOME"):
            self.unavailable = "Dagster: no instance configured (DAGSTER_HOME unset), not compared"
            return
        import dagster as dg

        try:
            self.instance = dg.DagsterInstance.get()
        except Exception as exc:  # an unreachable instance is reported, not fatal: the other checks stand
            self.unavailable = f"Dagster: could not read the instance ({type(exc).__name__}), not compared"

    def heads(self, realm: str, since: datetime | None) -> tuple[list[tuple[str, change_log.ChainHead]], str]:
        if self.instance is None:
            return [], self.unavailable
        from smartsync_pipeline.defs.assets.change_log import recorded_heads

        try:
            heads = recorded_heads(self.instance, realm, since=since)
        except Exception as exc:
            return [], f"Dagster: could not read the instance ({type(exc).__name__}), not compared"
        return heads, f"Dagster: {len(heads)} recorded head(s) compared"

    def close(self) -> None:
        if self.instance is not None:
            self.instance.dispose()


@click.command()
@click.option("--realm", "realm_id", help="company realm id (optional with one company)")
@click.option("--entity", "entities", multiple=True, help="entity to compare (repeatable); default: all")
@click.option(
    "--reports",
    is_flag=True,
    help="compare the mirror's figures with QBO's own reports instead (AP/AR aging, cash, net income by month)",
)
@click.option(
    "--months",
    type=click.IntRange(0, 24),
    default=DEFAULT_MONTHS,
    show_default=True,
    help="with --reports: closed months whose net income and documents are compared (plus the current month)",
)
@click.option("--json", "as_json", is_flag=True, help="with --reports: print the comparisons as JSON")
@click.option("--counts-only", is_flag=True, help="compare COUNT(*) only (one call per entity)")
@click.option(
    "--deep",
    is_flag=True,
    help="first re-read everything from QBO and repair mirror rows whose content differs at the same SyncToken",
)
@friendly_errors
def reconcile(
    realm_id: str | None,
    entities: tuple[str, ...],
    reports: bool,
    months: int,
    as_json: bool,
    counts_only: bool,
    deep: bool,
) -> None:
    """Compare the mirror with QBO; exit 0 when equal, 1 with a table of differences when not.

    --reports fetches QBO's AgedPayables, AgedReceivables, BalanceSheet and monthly ProfitAndLoss
    and TransactionList now and compares them to the cent with the figures the mirror gives (see the README's
    "Reconciliation with QBO's reports"); each difference names the documents that explain it.

    --deep first runs a full sync that also compares every row's content (raw JSON and typed columns)
    with QBO's: a row edited in the mirror file keeps its SyncToken, so only this finds it. Such rows
    are rewritten from QBO through the sync engine and logged (op `repair`, trigger `reconcile`), and
    the exit code is 1 so the tampering is not missed."""
    if counts_only and deep:
        raise click.UsageError("--deep compares every row; it cannot be combined with --counts-only")
    if reports and (entities or counts_only or deep):
        raise click.UsageError("--reports compares report figures; it cannot be combined with --entity, "
                               "--counts-only or --deep")  # fmt: skip
    if as_json and not reports:
        raise click.UsageError("--json goes with --reports")
    home = Home.from_env()
    realm = resolve_realm(home, realm_id)
    if reports:
        _reconcile_reports(home, realm, months, as_json)
        return
    names = _entities(entities) or None  # checked before the engine creates anything
    engine = SyncEngine(home)
    repairs: list[tuple[str, str, list[str]]] = []
    if deep:
        deep_sync = engine.sync(realm, names, mode="full", verify_content=True, trigger="reconcile")
        _record_in_dagster(deep_sync, "full")
        if deep_sync.total("repaired"):
            repairs = _repairs(home, realm, deep_sync.sync_id)
    with engine.client(realm) as client:
        report = run_reconcile(client, SnapshotReader(home), realm, names, compare_ids=not counts_only)
    repaired = {name: sum(1 for e, _, _ in repairs if e == name) for name in report.entities}
    table = Table("entity", "QBO", "mirror", "status")
    for e in report.entities.values():
        status = "equal" if e.equal else e.describe()
        if repaired[e.entity]:
            status = f"repaired {repaired[e.entity]} row(s) edited outside smartsync; now {status}"
        table.add_row(e.entity, str(e.qbo_count), str(e.mirror_count), status)
    Console().print(table)
    for name, qbo_id, fields in repairs:
        click.echo(f"  {name} {qbo_id}: {', '.join(fields) or 'content'} differed from QBO at the same SyncToken")
    if not report.equal or repairs:
        raise SystemExit(1)


def _reconcile_reports(home: Home, realm: str, months: int, as_json: bool) -> None:
    figures = reconcile_reports(home, realm, months=months)
    ok = all(f.result.ok for f in figures)
    if as_json:
        click.echo(json.dumps({"realm_id": realm, "ok": ok, "comparisons": [f.as_json() for f in figures]}, indent=2))
    else:
        table = Table("comparison", "QBO report", "period", "mirror", "QBO", "status")
        for f in figures:
            r = f.result
            status = "equal to the cent" if r.ok else f"{len(r.differences)} difference(s)"
            table.add_row(f.comparison.title, f.comparison.report, f.period_key, str(r.mirror_total),
                          str(r.report_total), status)  # fmt: skip
        Console().print(table)
        for f in figures:
            if not f.result.ok:
                click.echo(f.result.describe())
    if not ok:
        raise SystemExit(1)


def _repairs(home: Home, realm: str, sync_id: str) -> list[tuple[str, str, list[str]]]:
    """(entity, id, fields) of the repair rows one sync of ``realm`` logged."""
    with SnapshotReader(home).cursor(realm_id=realm) as (cur, _):
        rows = cur.execute(
            "SELECT entity, entity_id, changed_fields FROM change_log WHERE sync_id = ? AND op = 'repair' "
            "ORDER BY change_id",
            [sync_id],
        ).fetchall()
    return [(e, i, list(f or [])) for e, i, f in rows]
