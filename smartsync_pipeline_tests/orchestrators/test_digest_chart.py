"""The digest's pictures read like finance charts: round ticks without cents, a zero line, the
projection's line starting at today's cash, weeks along x, the company in the title."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from smartsync_pipeline.orchestrators.digest import project, spread
from smartsync_pipeline.orchestrators.digest_chart import Bars, Chart, Line, nice_ticks, render
from smartsync_pipeline.services.answers import Documents, with_due_status
from smartsync_pipeline.smart.provenance import Provenance

D = Decimal


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([104_644.78, -93_355.31], [-100_000, -50_000, 0, 50_000, 100_000, 150_000]),
        ([0.37, 0.02], [0, 1]),
        ([], [0, 1]),
        ([12.5, 77.4], [0, 20, 40, 60, 80]),
        ([-3_210.0], [-4_000, -3_000, -2_000, -1_000, 0]),
    ],
)
def test_ticks_are_round_whole_numbers_including_zero(values, expected):
    assert nice_ticks(values) == expected


def test_a_chart_has_a_zero_line_round_money_ticks_and_exact_points():
    svg = render(Chart(
        "Harbor Street Bakery — projected cash", "Projected cash by week", [("today", "1 Mar"), ("wk 1", "8 Mar")],
        lines=[Line("cash", [D("1234.56"), D("-250.10")], "#00f", "cash")],
        bars=[Bars("outflow", [None, D("-1484.66")], "#f00", "bills paid")],
    ))  # fmt: skip
    assert "Harbor Street Bakery — projected cash" in svg
    ticks = re.findall(r"class='y-tick' data-value='(-?\d+)' x='[\d.]+' y='([\d.]+)'[^>]*>([^<]*)<", svg)
    assert [t[2] for t in ticks] == ["-$2,000", "-$1,000", "$0", "$1,000", "$2,000"]
    zero = re.search(r"class='zero-line' x1='[\d.]+' x2='[\d.]+' y1='([\d.]+)'", svg)
    assert zero and float(zero.group(1)) == pytest.approx(float(ticks[2][1]) - 4, abs=0.1)
    assert re.findall(r"class='point cash' data-index='(\d)' data-value='([^']+)'", svg) == [
        ("0", "1234.56"), ("1", "-250.10"),
    ]  # fmt: skip
    assert svg.count("class='bar outflow'") == 1  # no bar for today


def _docs(today: date, rows: list[tuple[int, str]]) -> Documents:
    frame = pd.DataFrame(
        [{"id": str(i), "due_date": today + timedelta(days=days), "balance": Decimal(b)} for i, (days, b) in
         enumerate(rows)]
    )  # fmt: skip
    prov = Provenance("mirror", "1", "Bill", None, None, 0.0, False)
    return Documents.of(with_due_status(frame, today), prov)


def test_the_projection_spreads_overdue_and_leaves_out_doubtful_invoices():
    today = date(2026, 3, 2)
    bills = _docs(today, [(-40, "100.03"), (0, "10.00"), (7, "5.00"), (8, "1.00")])
    invoices = _docs(today, [(-10, "40.00"), (-91, "900.00"), (3, "2.00")])
    p = project(today, D("1000.00"), bills, invoices, weeks=5)
    assert p.points[0] == {"week": 0, "week_ending": "2026-03-02", "inflow": D("0.00"),
                           "outflow": D("0.00"), "cash": D("1000.00")}  # fmt: skip
    assert [x["outflow"] for x in p.points[1:]] == [D(v) for v in ("40.01", "26.01", "25.01", "25.00", "0.00")]
    assert [x["inflow"] for x in p.points[1:]] == [D(v) for v in ("12.00", "10.00", "10.00", "10.00", "0.00")]
    assert p.doubtful_ar == D("900.00") and p.overdue_ap == D("100.03") and p.overdue_ar == D("40.00")
    assert p.points[-1]["cash"] == D("925.97")  # 1000 + 42 - 116.03, the doubtful 900 left out
    assert spread(D("0.02"), 4) == [D("0.01"), D("0.01"), D("0.00"), D("0.00")]


def test_runway_method_when_not_burning_and_when_nothing_moved():
    from smartsync_pipeline.orchestrators.digest import burn_over, runway_method, runway_weeks
    from smartsync_pipeline.services.bank_flows import BankFlows, Movement

    today = date(2026, 3, 31)
    moves = [
        Movement(date(2026, 3, 1), "Deposit", "1", D("500.00")),
        Movement(date(2026, 3, 2), "Purchase", "2", D("-200")),
    ]
    growing = BankFlows(today, 182, moves, ["Deposit", "Purchase"], [])
    burn = burn_over(growing, today)
    assert (burn.inflow, burn.outflow, burn.weekly) == (D("500.00"), D("200.00"), D("-23.08"))
    assert runway_weeks(D("1000.00"), burn.weekly) is None
    text = runway_method(D("1000.00"), burn, None, growing)
    assert text.startswith("Not burning cash") and "grew by $300.00" in text
    still = BankFlows(today, 182, [], [], [])
    assert runway_method(D("0.00"), burn_over(still, today), None, still).startswith("No money moved")
    burning = BankFlows(today, 182, [Movement(date(2026, 3, 30), "Purchase", "3", D("-1300.00"))], [], [])
    b = burn_over(burning, today)
    assert b.weekly == D("100.00") and runway_weeks(D("1234.00"), b.weekly) == D("12.3")
    assert runway_weeks(D("-50.00"), b.weekly) == D("0.0")
    assert "$1,234.00 in the bank accounts ÷ $100.00 average weekly net burn = 12.3 weeks" in runway_method(
        D("1234.00"), b, D("12.3"), burning
    )


def test_the_projection_method_names_its_rules_and_the_unscheduled_credits():
    from smartsync_pipeline.orchestrators.digest import projection_method
    from smartsync_pipeline.services import Credits

    today = date(2026, 3, 2)
    p = project(today, D("10.00"), _docs(today, [(-3, "50.00")]), _docs(today, [(-200, "7.00")]), weeks=5)
    text = projection_method(p, Credits({"vendor credits": D("12.50")}, {"credit memos": D("3.00")}, []))
    assert "Overdue bills ($50.00)" in text and "over the first 4 weeks" in text
    assert "more than 90 days late ($7.00) are left out as doubtful" in text
    assert "$12.50 from vendors, $3.00 to customers" in text
    assert f"falls below zero in the week ending {p.below_zero}" in text and p.below_zero == "2026-03-09"
    assert "Open credits" not in projection_method(p, Credits({}, {"unapplied payments": D("0.00")}, []))


def test_bars_below_zero_take_their_own_colour_and_legend():
    svg = render(Chart(
        "Co — net cash flow", "Trailing burn by week", [("wk -1", "1 Mar"), ("this wk", "8 Mar")],
        bars=[Bars("net", [D("120.00"), D("-80.00")], "#0a0", "week gained cash", "#a00", "week burned cash")],
    ))  # fmt: skip
    fills = re.findall(r"class='bar net' data-index='\d' data-value='[^']+'[^>]*fill='(#[0-9a-f]+)'", svg)
    assert fills == ["#0a0", "#a00"]
    assert re.findall(r"class='legend'[^>]*>([^<]*)<", svg) == ["week gained cash", "week burned cash"]
