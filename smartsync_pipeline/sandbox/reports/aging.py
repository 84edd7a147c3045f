"""AgedPayables and AgedReceivables: open items per party in aging buckets as of a date.

Days past due = report date - due date; "Current" is not yet due. With ``aging_period`` 30 and
``num_periods`` 4 the columns are Current, 1 - 30, 31 - 60, 61 - 90, 91 and over, Total, as QBO
prints them; the last row is the ``GrandTotal`` section."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from smartsync_pipeline.sandbox.reports.ledger_view import Ledger, OpenItem
from smartsync_pipeline.sandbox.reports.params import ReportParams
from smartsync_pipeline.sandbox.reports.wire import Column, cell, data_row, money, section


def bucket_titles(period: int, count: int) -> list[str]:
    """Current, then ``count`` past-due columns, the last open-ended (QBO: 4 x 30 → 91 and over)."""
    titles = ["Current"]
    titles += [f"{k * period + 1} - {(k + 1) * period}" for k in range(count - 1)]
    titles.append(f"{(count - 1) * period + 1} and over")
    return titles


def bucket_of(item: OpenItem, as_of: date, period: int, count: int) -> int:
    """0 for current, 1..count for the past-due columns (the last one open-ended)."""
    late = (as_of - item.due_date).days
    if late <= 0:
        return 0
    return min(count, (late - 1) // period + 1)


def aging(ledger: Ledger, p: ReportParams, side: str, party_type: str) -> tuple[list[Column], list[dict[str, Any]]]:
    as_of = p.end
    titles = bucket_titles(p.aging_period, p.num_periods)
    columns = [Column("", party_type)] + [Column(t, "Money") for t in titles] + [Column("Total", "Money")]
    width = len(titles) + 1
    parties: dict[str, list[int]] = defaultdict(lambda: [0] * width)
    names: dict[str, str] = {}
    for item in ledger.open_items(side, as_of):
        row = parties[item.party_id]
        row[bucket_of(item, as_of, p.aging_period, p.num_periods)] += item.open_amount
        row[-1] += item.open_amount
        names[item.party_id] = item.party_name or names.get(item.party_id, "")
    rows: list[dict[str, Any]] = []
    totals = [0] * width
    for party_id in sorted(parties, key=lambda k: (names[k].lower(), k)):
        values = parties[party_id]
        if not any(values):
            continue
        rows.append(data_row([cell(names[party_id], party_id)] + [cell(money(v) if v else "") for v in values]))
        totals = [a + b for a, b in zip(totals, values, strict=True)]
    if rows:
        rows.append(section(None, None, [cell("TOTAL")] + [cell(money(v)) for v in totals], "GrandTotal", width + 1))
    return columns, rows
