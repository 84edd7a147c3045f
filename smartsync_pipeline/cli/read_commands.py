"""``smartsync bills-due`` and ``smartsync digest``: business answers with their provenance."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from smartsync_pipeline.api.money import to_json
from smartsync_pipeline.cli.error_reporting import friendly_errors
from smartsync_pipeline.home import Home
from smartsync_pipeline.orchestrators.digest import DigestDataOrchestrator
from smartsync_pipeline.orchestrators.digest_report import FIGURES, figure_text, fmt_money, title, to_html
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
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1), help="rows to show, earliest due first")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0), help="rows to skip: the next page")
@click.option("--all", "show_all", is_flag=True, help="show every row (ignores --limit and --offset)")
@click.option("--json", "as_json", is_flag=True, help="print every bill and the totals as JSON")
@friendly_errors
def bills_due(
    days: int, max_age: float | None, realm_id: str | None, limit: int, offset: int, show_all: bool, as_json: bool
) -> None:
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
            "total_balance": docs.total_balance,
            "overdue_balance": docs.overdue_balance,
            "bills": docs.records(),
            "provenance": docs.provenance.public(),
        }
        click.echo(to_json(out, indent=1))
        return
    console = Console()
    records = docs.records()
    page = BillsPage.of(records, offset=0 if show_all else offset, limit=None if show_all else limit)
    table = Table("bill", "vendor", "due", "days", "balance", title=f"{docs.count} bills due within {days} days")
    for r in page.rows:
        days_left = r["days_until_due"]
        label = f"[red]{-days_left} late[/red]" if r["is_overdue"] else str(days_left)
        due = r["due_date"].isoformat() if r["due_date"] else ""
        table.add_row(r["doc_number"] or r["id"], r["vendor_name"] or "", due, label, fmt_money(r["balance"]))
    console.print(table)
    if page.hidden_text():
        console.print(page.hidden_text())
    console.print(
        f"total {fmt_money(docs.total_balance)}, overdue {fmt_money(docs.overdue_balance)} ({docs.overdue_count} bills)"
    )
    console.print(_provenance_line(docs.provenance.public()))


@dataclass(frozen=True)
class BillsPage:
    """The rows one screen shows, and what it leaves out (overdue and not yet due counted apart)."""

    rows: list[dict[str, Any]]
    offset: int
    total: int
    hidden_overdue: int
    hidden_not_due: int

    @classmethod
    def of(cls, records: list[dict[str, Any]], *, offset: int, limit: int | None) -> BillsPage:
        end = len(records) if limit is None else offset + limit
        shown = records[offset:end]
        hidden = records[:offset] + records[end:]
        overdue = sum(1 for r in hidden if r["is_overdue"])
        return cls(shown, offset, len(records), overdue, len(hidden) - overdue)

    def hidden_text(self) -> str:
        """One line saying which rows are shown and how to see the rest; empty when all are shown."""
        hidden = self.hidden_overdue + self.hidden_not_due
        if not hidden:
            return ""
        first, last = self.offset + 1, self.offset + len(self.rows)
        span = f"rows {first}-{last} of {self.total}" if self.rows else f"no rows at offset {self.offset}"
        after = self.offset + len(self.rows)
        more = f"--offset {after} for the next page, " if after < self.total else ""
        return (
            f"showing {span} (earliest due first); {hidden} hidden: {self.hidden_overdue} overdue, "
            f"{self.hidden_not_due} not yet due. Use {more}--all for every row, or --json"
        )


@click.command()
@click.option("--realm", "realm_id", help="company realm id (optional with one company)")
@click.option("--max-age", type=click.FloatRange(0, 315_360_000), help="seconds; 0 = live (refresh first)")
@click.option("--json", "as_json", is_flag=True, help="print the digest's figures as JSON")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="also write the digest as an HTML page with its charts (projection, trailing burn, runway over time)",
)
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
        click.echo(to_json(data, indent=1))
        return
    console = Console()
    table = Table("figure", "value", title=f"{title(data)}, as of {data['as_of_date']}")
    for key, label in FIGURES:
        table.add_row(label, figure_text(key, data.get(key)))
    console.print(table)
    console.print(f"[bold]Runway[/bold]: {data['runway_method']}")
    console.print(f"[bold]Projection[/bold]: {data['projection_method']}")
    console.print(_provenance_line(data["provenance_summary"]))
    if html_path:
        console.print(f"HTML report with its charts: {html_path}")
