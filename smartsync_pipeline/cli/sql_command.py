"""``smartsync sql``: query the analyst database (the newest published snapshot) from a shell."""

from __future__ import annotations

import sys

import click

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home


@click.command()
@click.argument("query", required=False)
@click.option("--csv", "as_csv", is_flag=True, help="print CSV instead of a table")
@friendly_errors
def sql(query: str | None, as_csv: bool) -> None:
    """Run QUERY (or one query per line from stdin) read-only on the analyst database.

    Views: bills_due, ap_aging, ar_aging, cash_position; tables: one per entity, change_log, sync_state.
    Holding this (or any) read-only session open never blocks a sync."""
    import duckdb

    path = Home.from_env().analyst_path
    if not path.exists():
        raise click.ClickException(f"no analyst database at {path} yet; run `smartsync sync` first")
    con = duckdb.connect(str(path), read_only=True)
    try:
        queries = [query] if query else [line for line in sys.stdin if line.strip()]
        for q in queries:
            rel = con.sql(q)
            if rel is None:
                continue
            if as_csv:
                df = rel.df()
                click.echo(df.to_csv(index=False), nl=False)
            else:
                click.echo(str(rel))
    finally:
        con.close()
