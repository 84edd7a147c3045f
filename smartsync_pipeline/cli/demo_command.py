"""``smartsync demo`` (the main job on embedded defaults) and ``smartsync ui`` (the Dagster UI on it).

The demo starts the local QBO sandbox, connects its company, backfills the mirror with a progress
bar, prints the runway digest, simulates a burst of business activity, shows a live read turning
into a refresh and a normal read served from the mirror, runs the audit assets as a real Dagster run,
and says how to open the UI. The sandbox keeps its state in SMARTSYNC_HOME, so ``smartsync ui``
brings the same company back for Dagster to keep fresh.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home

DEMO_FILE = "sandbox/demo.json"


def _sandbox_settings(home: Home) -> dict[str, Any] | None:
    path = home.root / DEMO_FILE
    return json.loads(path.read_text()) if path.exists() else None


def start_demo_sandbox(home: Home, *, scale: str, seed: int, port: int) -> Any:
    """Start (or resume, same state and port) the demo's sandbox company."""
    from smartsync_pipeline.sandbox.process import SandboxProcess

    settings = _sandbox_settings(home) or {
        "scale": scale,
        "seed": seed,
        "port": port,
        "state_file": str(home.root / "sandbox" / "state.jsonl"),
    }
    (home.root / "sandbox").mkdir(parents=True, exist_ok=True)
    proc = SandboxProcess.start(
        scale=settings["scale"], seed=settings["seed"], port=settings["port"], state_file=settings["state_file"],
        startup_timeout=300,
    )  # fmt: skip
    (home.root / DEMO_FILE).write_text(json.dumps(settings, indent=1))
    return proc


def _record_backfill(report: Any) -> int:
    """Show the CLI backfill in Dagster as materializations of each mirror partition."""
    if not os.environ.get("DAGSTER_HOME"):
        return 0
    import dagster as dg

    from smartsync_pipeline.entities import entity
    from smartsync_pipeline.smart.materialization import materialization_metadata

    with dg.DagsterInstance.get() as instance:
        for name in report.entities:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=dg.AssetKey(["qbo", entity(name).table]),
                    partition=report.realm_id,
                    metadata=materialization_metadata(report, name, "full"),
                    tags={"smartsync/trigger": "backfill"},
                )
            )
    return len(report.entities)


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
@click.option("--scale", type=click.Choice(["small", "medium", "large"]), default="small", show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--port", default=8765, show_default=True, help="sandbox port (kept for `smartsync ui`)")
@click.option("--operations", default=200, show_default=True, type=click.IntRange(1, 100_000))
@friendly_errors
def demo(scale: str, seed: int, port: int, operations: int) -> None:
    """Run the end-to-end demo on the embedded defaults (sandbox QBO, DuckDB, SQLite Dagster)."""
    from smartsync_pipeline.cli.company_commands import connect_company
    from smartsync_pipeline.cli.sync_commands import ProgressBars, print_report
    from smartsync_pipeline.orchestrators.digest import DigestDataOrchestrator
    from smartsync_pipeline.orchestrators.digest_report import FIGURES, figure_text, fmt_money
    from smartsync_pipeline.services import for_business
    from smartsync_pipeline.smart.reader import SmartReader
    from smartsync_pipeline.sync.engine import SyncEngine

    console = Console()
    home = Home.from_env().ensure()
    console.rule("[bold]smartsync demo")
    console.print(f"state in {home.root}   Dagster instance in {os.environ.get('DAGSTER_HOME', '(none)')}")

    console.print(f"\n[bold]1. Starting the local QBO sandbox[/bold] ({scale} company, port {port})")
    sandbox = start_demo_sandbox(home, scale=scale, seed=seed, port=port)
    try:
        info = sandbox.info
        summary = connect_company(
            home, realm_id=info["realm_id"], api_base=info["api_base"], token_url=info["token_url"],
            client_id=info["client_id"], client_secret=info["client_secret"], refresh_token=info["refresh_token"],
            webhook_verifier=info.get("webhook_verifier"), name="Sandbox Co.",
        )  # fmt: skip
        realm = summary["realm_id"]
        console.print(
            f"   connected company {realm} at {summary['api_base']} "
            f"({summary['accounts']} accounts; Dagster partition registered: {summary['dagster_partition']})"
        )

        console.print("\n[bold]2. Backfilling the mirror[/bold] (one full sync, one DuckDB transaction)")
        engine = SyncEngine(home)
        bars = ProgressBars(console)
        with bars.progress:
            report = engine.sync(realm, mode="auto", trigger="backfill", progress=bars)
        print_report(console, report)
        if _record_backfill(report):
            console.print("   recorded as materializations of the qbo/* mirror partitions in Dagster")

        reader = SmartReader(smartsync_home=str(home.root))
        console.print("\n[bold]3. The runway digest[/bold] (served from the mirror: it is fresh)")
        digest = DigestDataOrchestrator(reader).get_digest_data(realm)
        table = Table("figure", "value")
        for key, label in FIGURES:
            table.add_row(label, figure_text(key, digest.get(key)))
        console.print(table)
        p = digest["provenance_summary"]
        console.print(f"   provenance: source {p['source']}, oldest data {p['age_seconds']} s old, stale: {p['stale']}")

        console.print(
            f"\n[bold]4. Business happens[/bold]: {operations} operations in QBO (bills, payments, edits, deletes)"
        )
        changes = sandbox.control("simulate", {"realm_id": realm, "operations": operations, "seed": int(time.time())})
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
    finally:
        sandbox.stop()

    console.rule("[bold]next")
    console.print(
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
            "SELECT change_id, entity, entity_id, op, sync_token_before, sync_token_after, changed_fields "
            "FROM change_log WHERE sync_id = ? ORDER BY change_id LIMIT 8",
            [sync_id],
        ).fetchall()
    table = Table("change", "entity", "id", "op", "token", "fields", title="what that refresh logged (first 8)")
    for cid, ent, oid, op, before, after, fields in rows:
        table.add_row(str(cid), ent, oid, op, f"{before or '-'}→{after or '-'}", ",".join(fields or []))
    console.print(table)


@click.command()
@click.option("--port", default=3000, show_default=True, help="Dagster webserver port")
@friendly_errors
def ui(port: int) -> None:
    """Start the demo's sandbox company again (if there is one) and the Dagster UI with its daemon."""
    home = Home.from_env().ensure()
    sandbox = start_demo_sandbox(home, scale="small", seed=7, port=8765) if _sandbox_settings(home) else None
    if sandbox:
        click.echo(f"sandbox company back up at {sandbox.info['api_base']}")
    try:
        cmd = [str(Path(sys.executable).with_name("dagster")), "dev", "-m", "smartsync_pipeline.definitions",
               "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
        click.echo(f"Dagster UI on http://127.0.0.1:{port} (Ctrl-C stops it and the sandbox)")
        subprocess.run(cmd, check=False)
    finally:
        if sandbox:
            sandbox.stop()
