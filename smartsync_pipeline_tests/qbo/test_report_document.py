"""The report parser on documents in QBO's wire format: nested sections, one column per month, aging
reports with a GrandTotal, detail reports, empty (NoReportData) and truncated answers, and bad input."""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal

import pytest

from smartsync_pipeline.qbo.report_document import (
    DATA,
    GRAND_TOTAL,
    SECTION_SUMMARY,
    ReportFormatError,
    iter_rows,
    parse_report,
)
from smartsync_pipeline_tests.qbo import report_wire as wire


def test_nested_sections_keep_their_path_group_and_ids() -> None:
    doc = parse_report(wire.balance_sheet(), expected_name="BalanceSheet",
                       grand_total_groups=("TotalAssets", "TotalLiabilitiesAndEquity"))  # fmt: skip
    assert not doc.truncated and not doc.no_data
    assert (doc.start_period, doc.end_period, doc.basis) == (date(2026, 1, 1), date(2026, 2, 28), "Accrual")
    checking = next(c for c in doc.cells if c.label == "Checking")
    assert checking.row_type == DATA
    assert checking.section_path == ("ASSETS", "Current Assets", "Bank Accounts")
    assert checking.group == "BankAccounts"
    assert (checking.row_id, checking.column.key, checking.amount) == ("35", "total", Decimal("1201.00"))
    # A sub-account section without a group inherits the nearest one.
    original = next(c for c in doc.cells if c.label == "Original Cost")
    assert original.section_path == ("ASSETS", "Fixed Assets", "Truck") and original.group == "FixedAssets"
    # Every section summary equals the sum of the data rows beneath it, to the cent.
    for summary in (c for c in doc.cells if c.row_type in (SECTION_SUMMARY, GRAND_TOTAL)):
        path = summary.section_path
        beneath = [c.amount for c in doc.cells if c.row_type == DATA and c.section_path[: len(path)] == path]
        assert sum(beneath, Decimal(0)) == summary.amount, summary.label
    assert doc.grand_totals() == {
        "TotalAssets": {"total": Decimal("20777.52")},
        "TotalLiabilitiesAndEquity": {"total": Decimal("20777.52")},
    }
    # "Net Income" inside Equity has no id: the parser does not invent one.
    assert next(c for c in doc.cells if c.label == "Net Income").row_id is None


def test_one_column_per_month_is_tidy_with_each_period() -> None:
    doc = parse_report(wire.profit_and_loss_by_month(), grand_total_groups=("NetIncome",))
    assert doc.summarize_by == "Month"
    months = [c for c in doc.columns if c.start_date]
    assert [(c.key, c.start_date, c.end_date) for c in months] == [
        ("Jan 2026", date(2026, 1, 1), date(2026, 1, 31)),
        ("Feb 2026", date(2026, 2, 1), date(2026, 2, 28)),
        ("Mar 2026", date(2026, 3, 1), date(2026, 3, 31)),
    ]
    gardening = {c.column.key: c.amount for c in doc.cells if c.label == "Gardening"}
    # Blank cells are not zeros that were never sent: they are absent.
    assert gardening == {"Jan 2026": Decimal("100.00"), "Mar 2026": Decimal("300.00"), "total": Decimal("400.00")}
    assert doc.grand_totals() == {
        "NetIncome": {"Jan 2026": Decimal("50.00"), "Feb 2026": Decimal("25.25"), "Mar 2026": Decimal("300.00"),
                      "total": Decimal("375.25")},
    }  # fmt: skip
    # Per month, income data minus COGS data equals net income (the report is internally consistent).
    income, cogs = doc.sum_of(DATA, section="Income"), doc.sum_of(DATA, section="Cost of Goods Sold")
    for key, net in doc.grand_totals()["NetIncome"].items():
        assert income.get(key, Decimal(0)) - cogs.get(key, Decimal(0)) == net
    # Summary-only sections are summaries, named by their group; the empty Expenses section yields nothing.
    gross = [c for c in doc.cells if c.group == "GrossProfit"]
    assert {c.row_type for c in gross} == {SECTION_SUMMARY} and gross[0].section_path == ("GrossProfit",)
    assert not [c for c in doc.cells if c.group == "Expenses"]
    assert all(len(row) >= 1 for row in iter_rows(doc.cells))


def test_aging_report_rows_without_type_and_grand_total() -> None:
    doc = parse_report(wire.aged_payables(), expected_name="AgedPayables")
    assert doc.options["report_date"] == "2026-03-08"
    assert [c.key for c in doc.columns][1:] == ["Current", "1 - 30", "31 - 60", "61 - 90", "91 and over", "Total"]
    vendors = {c.row_id for c in doc.cells if c.row_type == DATA}
    assert vendors == {"56", "31", "36", "46", "48"}
    totals = doc.grand_totals()["GrandTotal"]
    assert totals["Total"] == Decimal("1241.67") and totals["31 - 60"] == Decimal("-46.00")
    data_sums = doc.sum_of(DATA)
    for key, amount in totals.items():
        assert data_sums.get(key, Decimal(0)) == amount, key


def test_detail_report_keeps_transaction_and_party_ids() -> None:
    doc = parse_report(wire.general_ledger(), expected_name="GeneralLedger")
    assert not doc.truncated
    rows = list(iter_rows(c for c in doc.cells if c.row_type == DATA))
    assert len(rows) == 3
    payment = {c.column.key: c for c in rows[1]}
    assert payment["txn_type"].value_id == "151" and payment["txn_type"].value == "Bill Payment (Check)"
    assert payment["name"].value_id == "46" and payment["subt_nat_amount"].amount == Decimal("-205.00")
    assert payment["tx_date"].value == "2026-01-05"  # the first column is a value, not a label, here
    assert rows[1][0].row_id == "151" and rows[1][0].section_path == ("Checking",)
    summary = [c for c in doc.cells if c.row_type == SECTION_SUMMARY]
    assert [(c.column.key, c.amount) for c in summary] == [("subt_nat_amount", Decimal("-157.40"))]
    postings = sum(c.amount for c in doc.cells if c.row_type == DATA and c.column.key == "subt_nat_amount")
    assert postings == summary[0].amount


def test_no_report_data_is_an_empty_valid_answer() -> None:
    doc = parse_report(wire.report("ProfitAndLoss", [wire.col("", "Account"), wire.col("Total", "Money")], None,
                                   no_data=True))  # fmt: skip
    assert doc.no_data and not doc.truncated and doc.cells == []


def test_truncated_answers_are_flagged_never_passed_as_complete() -> None:
    doc = parse_report(wire.general_ledger(truncated=True))
    assert doc.truncated and "Unable to display more data" in doc.truncation_reason
    assert not any("Unable" in c.value for c in doc.cells)  # the notice row is not data
    flagged = wire.report("ProfitAndLoss", [wire.col("", "Account"), wire.col("Total", "Money")], [],
                          options=[{"Name": "Truncated", "Value": "true"}])  # fmt: skip
    assert parse_report(flagged).truncated


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("Header"), "no Header"),
        (lambda d: d["Rows"]["Row"][0]["Rows"]["Row"][0]["Rows"]["Row"][0]["Rows"]["Row"][0]["ColData"][1].update(
            value="12x"),
         "not an amount"),
        (lambda d: d["Rows"]["Row"].append({"ColData": [{"value": "a"}, {"value": "1"}, {"value": "2"}]}),
         "3 values for 2 columns"),
        (lambda d: d["Columns"].update(Column="x"), "not a list"),
        (lambda d: d["Header"].update(ReportName="ProfitAndLoss"), "QBO answered 'ProfitAndLoss'"),
    ],
)  # fmt: skip
def test_documents_we_cannot_read_completely_are_refused(mutate, message) -> None:
    doc = copy.deepcopy(wire.balance_sheet())
    mutate(doc)
    with pytest.raises(ReportFormatError, match=message):
        parse_report(doc, expected_name="BalanceSheet")
    with pytest.raises(ReportFormatError):
        parse_report(["not", "a", "report"])


# -- Issue 12 §3: the shapes the reconciliation relies on (empty, truncated, multi-column) -------------

_TWO = [wire.col("", "Account", "account"), wire.col("Total", "Money", "total")]


@pytest.mark.parametrize(
    "doc",
    [
        {"Header": {"ReportName": "AgedPayables", "Option": [{"Name": "NoReportData", "Value": "true"}]}},
        wire.report("AgedPayables", _TWO, None),  # "Rows": {} without the NoReportData flag
        wire.report("ProfitAndLoss", _TWO, [wire.section("Income", [], ("Total Income", ""), "Income"),
                                            wire.section(None, None, ("Net Income", ""), "NetIncome")]),
        {"Header": {"ReportName": "BalanceSheet"}, "Columns": {}, "Rows": {}},
    ],
    ids=["no-data-flag-only", "empty-rows", "empty-sections", "no-columns"],
)  # fmt: skip
def test_every_empty_shape_is_an_empty_complete_answer(doc) -> None:
    parsed = parse_report(doc, grand_total_groups=("NetIncome",))
    assert parsed.cells == [] and parsed.grand_totals() == {} and parsed.sum_of(DATA) == {}
    assert not parsed.truncated and parsed.truncation_reason == ""


def test_a_truncation_notice_deep_in_a_multi_column_report_flags_it() -> None:
    doc = wire.profit_and_loss_by_month()
    landscaping = doc["Rows"]["Row"][0]["Rows"]["Row"][0]["Rows"]["Row"]
    landscaping.append(wire.data("UNABLE TO DISPLAY MORE DATA. Please reduce the date range.", "", "", "", ""))
    parsed = parse_report(doc, grand_total_groups=("NetIncome",))
    assert parsed.truncated and parsed.truncation_reason.startswith("UNABLE TO DISPLAY")
    assert not any("unable" in c.value.lower() or "unable" in c.label.lower() for c in parsed.cells)
    # What was read before the notice is still there, but the document is never complete.
    assert {c.column.key for c in parsed.cells if c.label == "Gardening"} == {"Jan 2026", "Mar 2026", "total"}


def test_one_column_per_party_keeps_same_named_parties_apart() -> None:
    """summarize_column_by=Customers: columns carry no dates, and two customers may share a name."""
    columns = [wire.col("", "Account", "account"), wire.col("Smith", "Money"), wire.col("Smith", "Money"),
               wire.col("Jones", "Money"), wire.col("Total", "Money", "total")]  # fmt: skip
    income = wire.section("Income", [wire.data(("Gardening", "52"), "10.00", "20.00", "", "30.00"),
                                     wire.data(("Trimming", "53"), "1.25", "", "4.00", "5.25")],
                          ("Total Income", "11.25", "20.00", "4.00", "35.25"), "Income", width=5)  # fmt: skip
    net = wire.section(None, None, ("Net Income", "11.25", "20.00", "4.00", "35.25"), "NetIncome")
    parsed = parse_report(wire.report("ProfitAndLoss", columns, [income, net], SummarizeColumnsBy="Customers"),
                          grand_total_groups=("NetIncome",))  # fmt: skip
    keys = [c.key for c in parsed.columns]
    assert len(set(keys)) == len(keys) == 5 and all(c.start_date is None for c in parsed.columns)
    smith, smith_too = keys[1], keys[2]
    assert smith != smith_too and {parsed.columns[1].title, parsed.columns[2].title} == {"Smith"}
    totals = parsed.grand_totals()["NetIncome"]
    assert totals == {smith: Decimal("11.25"), smith_too: Decimal("20.00"), "Jones": Decimal("4.00"),
                      "total": Decimal("35.25")}  # fmt: skip
    # Per column, the data rows add up to the bottom line; the parties' columns add up to the total.
    assert parsed.sum_of(DATA) == totals
    assert sum((v for k, v in totals.items() if k != "total"), Decimal(0)) == totals["total"]
