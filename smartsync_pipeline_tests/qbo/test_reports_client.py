"""The Reports API client: parameter validation before sending, periods, every registered report
against a real sandbox process, and truncated answers split by period (never stored as whole)."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest

from smartsync_pipeline.entities.reports import REPORTS, report
from smartsync_pipeline.qbo.errors import QueryError
from smartsync_pipeline.qbo.report_document import DATA, SECTION_SUMMARY, ReportTruncatedError
from smartsync_pipeline.qbo.reports import ReportRunner, narrower, report_parameters, split_periods


def test_split_periods_cut_at_calendar_boundaries() -> None:
    assert split_periods(date(2025, 1, 15), date(2025, 4, 2), max_units=1) == [
        (date(2025, 1, 15), date(2025, 1, 31)),
        (date(2025, 2, 1), date(2025, 2, 28)),
        (date(2025, 3, 1), date(2025, 3, 31)),
        (date(2025, 4, 1), date(2025, 4, 2)),
    ]
    assert split_periods(date(2024, 11, 1), date(2026, 1, 31), max_units=6) == [
        (date(2024, 11, 1), date(2025, 4, 30)),
        (date(2025, 5, 1), date(2025, 10, 31)),
        (date(2025, 11, 1), date(2026, 1, 31)),
    ]
    assert split_periods(date(2025, 2, 10), date(2025, 8, 1), unit="quarter", max_units=1) == [
        (date(2025, 2, 10), date(2025, 3, 31)),
        (date(2025, 4, 1), date(2025, 6, 30)),
        (date(2025, 7, 1), date(2025, 8, 1)),
    ]


def test_a_truncated_period_narrows_to_months_then_halves_then_stops() -> None:
    assert narrower((date(2025, 1, 10), date(2025, 2, 20))) == [
        (date(2025, 1, 10), date(2025, 1, 31)),
        (date(2025, 2, 1), date(2025, 2, 20)),
    ]
    assert narrower((date(2025, 2, 1), date(2025, 2, 28))) == [
        (date(2025, 2, 1), date(2025, 2, 14)),
        (date(2025, 2, 15), date(2025, 2, 28)),
    ]
    assert narrower((date(2025, 2, 1), date(2025, 2, 2))) == [
        (date(2025, 2, 1), date(2025, 2, 1)),
        (date(2025, 2, 2), date(2025, 2, 2)),
    ]
    assert narrower((date(2025, 2, 1), date(2025, 2, 1))) == []


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("ProfitAndLoss", {"report_date": "2025-01-01"}, "takes no parameter 'report_date'"),
        ("ProfitAndLoss", {"summarize_column_by": "Fortnight"}, "summarize_column_by must be one of"),
        ("ProfitAndLoss", {"accounting_method": "Vibes"}, "accounting_method must be one of"),
        ("ProfitAndLoss", {"start_date": "2025-02-01", "end_date": "2025-01-01"}, "is after end_date"),
        ("ProfitAndLoss", {"start_date": "01/02/2025"}, "must be a date"),
        ("ProfitAndLoss", {"date_macro": "Last Month", "start_date": "2025-01-01"}, "either date_macro"),
        ("AgedPayables", {"aging_period": "0"}, "positive whole number"),
        ("AgedPayables", {"date_macro": "Someday"}, "date_macro must be one of"),
    ],
)
def test_bad_parameters_are_refused_before_sending(name: str, params: dict[str, str], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        report_parameters(report(name), params)


def test_case_is_normalised_and_defaults_are_sent() -> None:
    asked = {"summarize_column_by": "month", "start_date": date(2025, 1, 1)}
    params = report_parameters(report("profit_and_loss"), asked)
    assert params == {"accounting_method": "Accrual", "summarize_column_by": "Month", "start_date": "2025-01-01"}
    assert report_parameters(report("AgedPayables"), {})["num_periods"] == "4"


def _data_sums(doc) -> dict[str, Decimal]:
    return doc.sum_of(DATA)


@pytest.mark.parametrize("spec", REPORTS, ids=[r.name for r in REPORTS])
def test_every_registered_report_runs_complete_against_the_sandbox(spec, sandbox, client_for) -> None:
    client = client_for(sandbox)
    runner = ReportRunner(client)
    before = client.stats.api_calls
    result = runner.run(spec.name)  # QBO's defaults: this fiscal year to date / as of today
    assert result.requests == client.stats.api_calls - before >= 1
    assert result.parts and not any(p.document.truncated for p in result.parts)
    doc = result.parts[0].document
    assert doc.name == spec.name and result.cell_count > 0
    totals = doc.grand_totals()
    if spec.grand_total_groups and spec.name in ("AgedPayables", "AgedReceivables"):
        # Aging: the GrandTotal row is the sum of the party rows, per bucket, to the cent.
        # A bucket no party fills has no data cells at all (its total is 0.00).
        sums = _data_sums(doc)
        assert set(sums) - {"Total"} <= set(totals["GrandTotal"])
        assert totals["GrandTotal"] == {k: sums.get(k, Decimal(0)) for k in totals["GrandTotal"]}
    elif spec.name == "BalanceSheet":
        assert totals["TotalAssets"] == totals["TotalLiabilitiesAndEquity"]
    elif spec.name == "GeneralLedger":
        # Each account's "Total for" equals its postings.
        by_section: Counter[tuple[str, ...]] = Counter()
        for cell in doc.cells:
            if cell.row_type == DATA and cell.column.key == "subt_nat_amount":
                by_section[cell.section_path] += cell.amount
        summaries = {c.section_path: c.amount for c in doc.cells if c.row_type == SECTION_SUMMARY}
        assert len(summaries) > 3
        assert all(amount == by_section.get(path, Decimal(0)) for path, amount in summaries.items())
    assert result.content_hash() == runner.run(spec.name).content_hash()  # the same books, the same hash


def test_a_long_range_is_asked_in_periods_that_add_up(sandbox, client_for) -> None:
    runner = ReportRunner(client_for(sandbox))
    today = runner.run("AgedPayables").parts[0].document.end_period
    start = date(today.year - 1, 1, 1)
    split = runner.run("ProfitAndLoss", start=start, end=today)
    assert len(split.parts) == len(split_periods(start, today, max_units=6)) >= 3
    whole = runner.fetch(report("ProfitAndLoss"), {"start_date": start.isoformat(), "end_date": today.isoformat(),
                                                   "accounting_method": "Accrual"})  # fmt: skip
    net = sum((p.document.grand_totals().get("NetIncome", {}).get("total", Decimal(0)) for p in split.parts),
              Decimal(0))  # fmt: skip
    assert net == whole.grand_totals()["NetIncome"]["total"]


def _postings(result) -> Counter[tuple[str, str]]:
    """(account, transaction id) → Σ amount over every part of a general ledger run."""
    out: Counter[tuple[str, str]] = Counter()
    for _, cell in result.cells():
        if cell.row_type == DATA and cell.column.key == "subt_nat_amount" and cell.row_id:
            out[(cell.section_path[0], cell.row_id)] += cell.amount
    return out


def test_truncated_answers_are_split_until_complete(sandbox_factory, client_for) -> None:
    sandbox = sandbox_factory()
    runner = ReportRunner(client_for(sandbox))
    end = runner.run("AgedPayables").parts[0].document.end_period
    start = date(end.year, end.month, 1) if end.day > 20 else date(end.year, end.month - 1 or 12, 1)
    start = min(start, end)
    whole = runner.run("GeneralLedger", start=start, end=end)
    assert whole.splits == 0 and len(whole.parts) >= 1
    # A limit every single day fits under but the whole range does not: the runner must split, and can.
    size = sum(p.document.cell_count for p in whole.parts)
    days = [start + timedelta(days=k) for k in range((end - start).days + 1)]
    spec = report("GeneralLedger")
    per_day = [runner.fetch(spec, {**dict(spec.defaults), "start_date": d.isoformat(), "end_date": d.isoformat()})
               for d in days]  # fmt: skip
    limit = max(doc.cell_count for doc in per_day) + 20
    assert size > limit
    sandbox.control("faults", {"report_cell_limit": limit})
    split = runner.run("GeneralLedger", start=start, end=end)
    assert split.splits >= 1 and len(split.parts) > len(whole.parts)
    assert not any(p.document.truncated for p in split.parts)
    # Nothing lost, nothing doubled: the same postings, to the cent.
    assert _postings(split) == _postings(whole) and sum(_postings(whole).values()) != 0
    # Parts cover the range exactly once, in order.
    periods = [p.period for p in split.parts]
    assert periods[0][0] == start and periods[-1][1] == end
    assert all((b[0] - a[1]).days == 1 for a, b in itertools.pairwise(periods))


def test_reports_that_cannot_be_split_further_fail_loudly(sandbox_factory, client_for) -> None:
    sandbox = sandbox_factory()
    runner = ReportRunner(client_for(sandbox))
    end = runner.run("AgedPayables").parts[0].document.end_period
    sandbox.control("faults", {"report_cell_limit": 30})
    with pytest.raises(ReportTruncatedError, match="AgedPayables"):
        runner.run("AgedPayables")  # an as-of report has no range to split
    with pytest.raises(ReportTruncatedError, match="cannot be split further"):
        runner.run("GeneralLedger", start=end.replace(day=1), end=end)
