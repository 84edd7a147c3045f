"""``smartsync demo``: the main job on embedded defaults, as a guided tour.

The demo starts the local QBO sandbox as a background service (``smartsync sandbox start``), connects
its company, syncs the mirror with a progress bar (a full backfill the first time, an incremental sync
on a re-run), prints the runway digest, simulates a burst of business activity, shows a live read
turning into a refresh and a normal read served from the mirror, runs the audit assets as a real
Dagster run, and says how to go on. The sandbox keeps running afterwards, with its state in
SMARTSYNC_HOME, so the connected company keeps answering live (`smartsync sync`, `bills-due --max-age 0`)
and ``smartsync ui`` finds it; ``smartsync sandbox stop`` ends it.
"""

from __future__ import annotations

import os
import time
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home
from smartsync_pipeline.sandbox.company import DEFAULT_PROFILE, PROFILES


def describe_sync(report: Any) -> str:
    """What kind of sync the demo just ran, in words (a re-run is incremental, not a backfill)."""
    modes = [e.mode for e in report.entities.values()]
    full = modes.count("full")
    if full == len(modes):
        return "a full sync (the backfill), one DuckDB transaction"
    if not full:
        return (
            "an incremental (CDC) sync, one DuckDB transaction: the mirror already held this company, "
            "so only what changed since the last sync was fetched"
        )
    return f"{len(modes) - full} entities incrementally (CDC) and {full} in full, one DuckDB transaction"


def _record_backfill(report: Any) -> int:
    """Show the CLI backfill in Dagster as materializations of each mirror partition."""
    from smartsync_pipeline.smart.materialization import DagsterTrail

    trail = DagsterTrail()
    try:
        return trail.record(report, requested_mode="auto")
    finally:
        trail.close()


def _audit_run(realm_id: str) -> tuple[bool, str]:
    """The change-log and runway-digest assets as one real, in-process Dagster run."""
    if not os.environ.get("DAGSTER_HOME"):
        return False, "DAGSTER_HOME is not set: skipped the Dagster run"
    import dagster as dg

    from smartsync_pipeline.definitions import defs

    with dg.DagsterInstance.get() as instance:
        job = defs.resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey(["qbo", "change_log"]), dg.AssetKey(["reports", "runway_digest"])],
            partition_key=realm_id,
            tags={"smartsync/trigger": "manual"},
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        return result.success, result.run_id


@click.command()
@click.option(
    "--scale",
    type=click.Choice(["small", "medium", "large"]),
    default="small",
    show_default=True,
    help="size of the sandbox company (small ≈ 1k objects, medium ≈ 100k, large ≈ 1M)",
)
@click.option("--seed", default=7, show_default=True, help="seed of the sandbox company's generated data")
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    default=DEFAULT_PROFILE,
    show_default=True,
    help="healthy books (most documents paid on time, a few overdue) or struggling ones (overdue payables above cash)",
)
@click.option("--port", default=8765, show_default=True, help="sandbox port (kept for `smartsync ui`)")
@click.option(
    "--operations",
    default=200,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="business operations to simulate in QBO",
)
@friendly_errors
def demo(scale: str, seed: int, profile: str, port: int, operations: int) -> None:
    """Run the end-to-end demo on the embedded defaults (sandbox QBO, DuckDB, SQLite Dagster)."""
    from smartsync_pipeline.cli.sandbox_commands import connect_service_company
    from smartsync_pipeline.cli.sync_commands import ProgressBars, print_report
    from smartsync_pipeline.orchestrators.digest import DigestDataOrchestrator
    from smartsync_pipeline.orchestrators.digest_report import FIGURES, figure_text, fmt_money
    from smartsync_pipeline.sandbox.service import SandboxService
    from smartsync_pipeline.services import for_business
    from smartsync_pipeline.smart.reader import SmartReader
    from smartsync_pipeline.sync.engine import SyncEngine

    console = Console()
    home = Home.from_env().ensure()
    console.rule("[bold]smartsync demo")
    console.print(f"state in {home.root}   Dagster instance in {os.environ.get('DAGSTER_HOME', '(none)')}")

    service = SandboxService(home.root / "sandbox")
    saved = service.saved_settings()
    if saved is not None:
        scale, seed, port, profile = saved.scale, saved.seed, saved.port, saved.profile
    console.print(
        f"\n[bold]1. The local QBO sandbox[/bold] ({scale} {profile} company, port {port}, in the background)"
    )
    status = service.start(scale=scale, seed=seed, port=port, profile=profile)
    console.print(f"   {status.describe()}")
    console.print(f"   {connect_service_company(home, service)}")
    realm = service.info()["realm_id"]

    engine = SyncEngine(home)
    bars = ProgressBars(console)
    console.print("\n[bold]2. Syncing the mirror[/bold]")
    with bars.progress:
        report = engine.sync(realm, mode="auto", trigger="backfill", progress=bars)
    console.print(f"   {describe_sync(report)}")
    print_report(console, report)
    if _record_backfill(report):
        from smartsync_pipeline.defs.company_status import record_freshness_checks

        checks = record_freshness_checks(home)
        console.print(
            f"   recorded as materializations of the qbo/* mirror partitions in Dagster, and {checks} freshness "
            "checks evaluated (per company, in each check's description)"
        )

    reader = SmartReader(smartsync_home=str(home.root))
    console.print("\n[bold]3. The runway digest[/bold] (served from the mirror: it is fresh)")
    digest = DigestDataOrchestrator(reader).get_digest_data(realm)
    table = Table("figure", "value", title=digest["company_name"])
    for key, label in FIGURES:
        table.add_row(label, figure_text(key, digest.get(key)))
    console.print(table)
    console.print(f"   runway: {digest['runway_method']}")
    p = digest["provenance_summary"]
    console.print(f"   provenance: source {p['source']}, oldest data {p['age_seconds']} s old, stale: {p['stale']}")

    console.print(
        f"\n[bold]4. Business happens[/bold]: {operations} operations in QBO (bills, payments, edits, deletes)"
    )
    changes = service.control("simulate", {"realm_id": realm, "operations": operations, "seed": int(time.time())})
    console.print(f"   the sandbox changed {len(changes['changes'])} objects; the mirror does not know yet")

    bills = for_business(reader, realm).bills
    console.print("\n[bold]5. A live read[/bold]: bills due in 30 days with max_age=0 (must refresh first)")
    t0 = time.perf_counter()
    live = bills.get_bills_due_in_days(30, max_age=0)
    live_ms = (time.perf_counter() - t0) * 1000
    lp = live.provenance
    console.print(
        f"   {live.count} bills, {fmt_money(live.total_balance)} due ({fmt_money(live.overdue_balance)} overdue) — "
        f"source [bold]{lp.source}[/bold], refreshed in {live_ms:.0f} ms, {lp.changes} bill changes logged"
    )
    t0 = time.perf_counter()
    fresh = bills.get_bills_due_in_days(30)
    fresh_ms = (time.perf_counter() - t0) * 1000
    fp = fresh.provenance
    console.print(
        f"\n[bold]6. The same question again[/bold] (default max age {fp.max_age_seconds / 60:.0f} min): "
        f"source [bold]{fp.source}[/bold], {fresh_ms:.1f} ms, data {fp.age_seconds:.1f} s old"
    )
    _show_changes(console, home, realm, lp.sync_id)

    console.print("\n[bold]7. The audit trail[/bold] as a Dagster run (change_log + runway_digest assets)")
    ok, run = _audit_run(realm)
    console.print(f"   run {run}: {'success' if ok else 'FAILED'}")
    from smartsync_pipeline.mirror import change_log
    from smartsync_pipeline.mirror.database import MirrorDatabase

    with MirrorDatabase(home, realm).inspect() as con:
        check = change_log.verify(con)
    console.print(f"   hash chain: {'intact' if check.ok else 'BROKEN'} over {check.rows_checked} changes")

    console.rule("[bold]next")
    console.print(
        f"The sandbox company keeps running in the background ({service.status().api_base}), so it answers live:\n"
        "  .venv/bin/smartsync sync  ·  .venv/bin/smartsync bills-due --max-age 0  ·  .venv/bin/smartsync reconcile\n"
        "  .venv/bin/smartsync sandbox status | stop | start   (its data and tokens stay in "
        f"{service.folder} between starts)\n"
        "Open the Dagster UI (asset graph, freshness, runs):  [bold]make ui[/bold]  → http://127.0.0.1:3000\n"
        "Query the mirror as an analyst:  [bold].venv/bin/smartsync sql 'SELECT * FROM ap_aging LIMIT 5'[/bold]\n"
        f"  or from Python: duckdb.connect('{home.analyst_path}', read_only=True)  "
        "(views: bills_due, ap_aging, ar_aging, cash_position)\n"
        "Ask questions:  .venv/bin/smartsync bills-due --days 30   ·   .venv/bin/smartsync digest --html digest.html"
    )
    if not ok:
        raise SystemExit(1)


def _show_changes(console: Console, home: Home, realm: str, sync_id: str | None) -> None:
    if not sync_id:
        return
    from smartsync_pipeline.mirror.snapshots import SnapshotReader

    with SnapshotReader(home).cursor(realm_id=realm) as (cur, _):
        rows = cur.execute(
            "SELECT change_id, recorded_at, entity, entity_id, op, sync_token_before, sync_token_after, "
            "changed_fields, trigger FROM change_log WHERE sync_id = ? ORDER BY change_id LIMIT 8",
            [sync_id],
        ).fetchall()
    from smartsync_pipeline.cli.sync_commands import LOG_LEGEND, change_table, fields_text, token_text

    table = change_table(title="what that refresh logged (first 8)")
    for cid, when, ent, oid, op, before, after, fields, trigger in rows:
        table.add_row(
            str(cid), f"{when:%H:%M:%S}", ent, oid, op, token_text(op, before, after), fields_text(op, fields), trigger
        )
    console.print(table)
    console.print(LOG_LEGEND)
