"""``smartsync sql``: query the analyst entry point (every company's newest snapshot) from a shell."""

from __future__ import annotations

import sys

import click

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror.sql_door import explain_refusal


@click.command()
@click.argument("query", required=False)
@click.option("--csv", "as_csv", is_flag=True, help="print CSV instead of a table")
@friendly_errors
def sql(query: str | None, as_csv: bool) -> None:
    """Run QUERY (or one query per line from stdin) read-only across every connected company.

    Views: bills_due, ap_aging, ar_aging, cash_position and the report views (report_runs,
    profit_and_loss, …); tables: one per entity, change_log, sync_state, report_run, report_cell (each
    with realm_id). Holding this (or any) read-only session open never blocks a sync. The session is
    sealed: no files, extensions, ATTACH or SET (see ARCHITECTURE.md, "The SQL door")."""
    import duckdb

    from smartsync_pipeline.mirror import analyst

    home = Home.from_env()
    con = analyst.connect(home)  # every company's newest snapshot, read-only, then sealed
    if not analyst.attached_realms(con):
        con.close()
        raise click.ClickException(f"no company has a published snapshot under {home.root} yet; run `smartsync sync`")
    try:
        queries = [query] if query else [line for line in sys.stdin if line.strip()]
        for q in queries:
            try:
                rel = con.sql(q)
                if rel is None:
                    continue
                text = rel.df().to_csv(index=False) if as_csv else str(rel)
            except duckdb.Error as exc:
                raise (explain_refusal(exc) or exc) from None
            click.echo(text, nl=not as_csv)
    finally:
        con.close()
