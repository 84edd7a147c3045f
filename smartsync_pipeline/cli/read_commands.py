"""``smartsync bills-due`` and ``smartsync digest``: business answers with their provenance."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home
from smartsync_pipeline.orchestrators.digest import DigestDataOrchestrator
from smartsync_pipeline.orchestrators.digest_report import FIGURES, figure_text, fmt_money, to_html
from smartsync_pipeline.services import for_business
from smartsync_pipeline.smart.reader import SmartReader
from smartsync_pipeline.sync.engine import resolve_realm


def _reader(home: Home) -> SmartReader:
    return SmartReader(smartsync_home=str(home.root))


def _provenance_line(p: dict) -> str:
    state = "STALE" if p["stale"] else "fresh"
    return f"source: {p['source']}, as of {p['as_of']}, age {p['age_seconds']} s, {state}"


def _check_writable(path: Path) -> None:
    """Refuse an output file that could not be written, before any work is done."""
    folder = path.resolve().parent
    if not folder.is_dir():
        raise click.BadParameter(f"folder {folder} does not exist", param_hint="--html")
    if not os.access(folder, os.W_OK):
        raise click.BadParameter(f"folder {folder} is not writable", param_hint="--html")


@click.command(name="bills-due")
@click.option("--days", default=30, show_default=True, type=click.IntRange(0, 3650), help="due within this many days")
@click.option("--max-age", type=click.FloatRange(0, 315_360_000), help="seconds; 0 = live (refresh first)")
@click.option("--realm", "realm_id", help="company realm id (optional with one company)")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def bills_due(days: int, max_age: float | None, realm_id: str | None, as_json: bool) -> None:
    """Unpaid bills due within --days (overdue included), from the mirror when fresh, else from QBO."""
    home = Home.from_env()
    realm = resolve_realm(home, realm_id)
    docs = for_business(_reader(home), realm).bills.get_bills_due_in_days(days, max_age=max_age)
    if as_json:
        out = {
            "realm_id": realm,
            "days": days,
            "count": docs.count,
            "overdue_count": docs.overdue_count,
            "total_balance": str(docs.total_balance),
            "overdue_balance": str(docs.overdue_balance),
            "bills": docs.records(),
            "provenance": docs.provenance.public(),
        }
        click.echo(json.dumps(out, indent=1))
        return
    console = Console()
    table = Table("bill", "vendor", "due", "days", "balance", title=f"{docs.count} bills due within {days} days")
    for r in docs.records()[:50]:
        days_left = r["days_until_due"]
        label = f"[red]{-days_left} late[/red]" if r["is_overdue"] else str(days_left)
        table.add_row(r["doc_number"] or r["id"], r["vendor_name"] or "", r["due_date"], label, fmt_money(r["balance"]))
    console.print(table)
    if docs.count > 50:
        console.print(f"… and {docs.count - 50} more (use --json for all)")
    console.print(
        f"total {fmt_money(docs.total_balance)}, overdue {fmt_money(docs.overdue_balance)} ({docs.overdue_count} bills)"
    )
    console.print(_provenance_line(docs.provenance.public()))


@click.command()
@click.option("--realm", "realm_id", help="company realm id (optional with one company)")
@click.option("--max-age", type=click.FloatRange(0, 315_360_000), help="seconds; 0 = live (refresh first)")
@click.option("--json", "as_json", is_flag=True)
@click.option("--html", "html_path", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@friendly_errors
def digest(realm_id: str | None, max_age: float | None, as_json: bool, html_path: Path | None) -> None:
    """The runway digest: cash, AP/AR due, overdue, net flow, runway, top vendors and late customers."""
    home = Home.from_env()
    realm = resolve_realm(home, realm_id)
    if html_path is not None:
        _check_writable(html_path)  # before the reads, which may refresh (write) the mirror
    data = DigestDataOrchestrator(_reader(home)).get_digest_data(realm, max_age=max_age)
    if html_path:
        html_path.write_text(to_html(data))
    if as_json:
        click.echo(json.dumps(data, indent=1))
        return
    console = Console()
    table = Table("figure", "value", title=f"Runway digest — company {realm}, as of {data['as_of_date']}")
    for key, label in FIGURES:
        table.add_row(label, figure_text(key, data.get(key)))
    console.print(table)
    console.print(_provenance_line(data["provenance_summary"]))
    if html_path:
        console.print(f"HTML report with the cash projection chart: {html_path}")
