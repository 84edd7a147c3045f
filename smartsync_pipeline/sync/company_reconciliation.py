"""One company's mirror against QBO's reports, from the command line: fetch the reports now, then run
every comparison of ``COMPARISONS`` on the published snapshot and explain what differs.

What ``smartsync reconcile --reports`` runs. The reports fetched are stored like the report assets'
runs (``ReportSync``: the trail shows them): the aging reports and the BalanceSheet as of today, and
the ProfitAndLoss and TransactionList of each of the last ``months`` closed months and of the current
month. The mirror
is not synced first: the point is to see whether it agrees with QBO as it stands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from smartsync_pipeline.home import Home
from smartsync_pipeline.mirror.snapshots import SnapshotReader
from smartsync_pipeline.sync.errors import SyncError
from smartsync_pipeline.sync.report_explanation import reconcile_with_report
from smartsync_pipeline.sync.report_reconciliation import COMPARISONS, Comparison, Reconciliation
from smartsync_pipeline.sync.report_sync import CURRENT_KEY, ReportSync, month_key

DEFAULT_MONTHS = 3


@dataclass(frozen=True)
class ComparedFigure:
    """One comparison for one period, with the stored report run it used."""

    comparison: Comparison
    period_key: str
    result: Reconciliation
    content_hash: str

    def as_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "comparison": self.comparison.name,
            "report": self.comparison.report,
            "period": self.period_key,
            "as_of": r.as_of.isoformat() if r.as_of else None,
            "ok": r.ok,
            "mirror_total": str(r.mirror_total),
            "report_total": str(r.report_total),
            "figures_compared": r.compared,
            "report_content_hash": self.content_hash,
            "differences": [
                {
                    "key": d.key,
                    "label": d.label,
                    "column": d.column,
                    "mirror": str(d.mirror),
                    "report": str(d.report),
                    "difference": str(d.delta),
                    "documents": list(d.documents),
                    "cause": d.cause,
                }
                for d in r.differences
            ],
            "explanation": r.note,
        }


def _months(today: date, closed: int) -> list[tuple[date, date]]:
    """The last ``closed`` calendar months and the current one, oldest first."""
    first = today.replace(day=1)
    out = []
    for _ in range(closed):
        first = (first - timedelta(days=1)).replace(day=1)
        out.append(first)
    out.reverse()
    out.append(today.replace(day=1))
    return [(f, (f.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)) for f in out]


def reconcile_reports(
    home: Home, realm_id: str, *, months: int = DEFAULT_MONTHS, client_factory: Callable[[str], Any] | None = None
) -> list[ComparedFigure]:
    """Fetch and store the reports of ``realm_id``, then compare each with the mirror (see module doc)."""
    if months < 0:
        raise ValueError(f"months must be 0 or more, not {months}")
    reader = SnapshotReader(home)
    if reader.current(realm_id) is None:  # before asking QBO for anything
        raise SyncError(f"company {realm_id} has no mirror to compare yet; run `smartsync sync` first")
    sync = ReportSync(home, client_factory=client_factory)
    periods: dict[str, list[tuple[str, str]]] = {}  # report -> [(period_key, content hash)]
    today: date | None = None
    for comparison in COMPARISONS:
        if not comparison.per_month:
            outcome = sync.run(realm_id, comparison.report, trigger="reconcile")
            periods[comparison.report] = [(CURRENT_KEY, outcome.run.content_hash)]
            today = today or outcome.run.period_end
    for comparison in COMPARISONS:
        if comparison.per_month:
            for period in _months(today or date.today(), months):
                outcome = sync.run(realm_id, comparison.report, period=period, trigger="reconcile")
                periods.setdefault(comparison.report, []).append((month_key(period[0]), outcome.run.content_hash))
    client = sync.client(realm_id)
    figures: list[ComparedFigure] = []
    try:
        with reader.cursor(realm_id=realm_id) as (con, _):
            for comparison in COMPARISONS:
                for key, content_hash in periods[comparison.report]:
                    period = None if comparison.report != "BalanceSheet" and key == CURRENT_KEY else key
                    result = reconcile_with_report(con, realm_id, comparison, period, client=client)
                    figures.append(ComparedFigure(comparison, key, result, content_hash))
    finally:
        if client_factory is None:
            client.close()
        reader.close()
    return figures


__all__ = ["DEFAULT_MONTHS", "ComparedFigure", "reconcile_reports"]
