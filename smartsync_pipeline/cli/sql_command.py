"""``smartsync sql``: query the analyst database (the newest published snapshot) from a shell."""

from __future__ import annotations

import sys

import click

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror.sql_door import explain_refusal, open_sealed


@click.command()
@click.argument("query", required=False)
@click.option("--csv", "as_csv", is_flag=True, help="print CSV instead of a table")
@friendly_errors
def sql(query: str | None, as_csv: bool) -> None:
    """Run QUERY (or one query per line from stdin) read-only on the analyst database.

    Views: bills_due, ap_aging, ar_aging, cash_position; tables: one per entity, change_log, sync_state.
    Holding this (or any) read-only session open never blocks a sync. The session is sealed: no
    files, extensions, ATTACH or SET (see ARCHITECTURE.md, "The SQL door")."""
    import duckdb

    path = Home.from_env().analyst_path
    if not path.exists():
        raise click.ClickException(f"no analyst database at {path} yet; run `smartsync sync` first")
    con = open_sealed(path)
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
