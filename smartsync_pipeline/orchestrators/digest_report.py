"""The runway digest as people read it: Markdown (Dagster UI metadata), the CLI's table and an HTML
page with three pictures (inline SVG, ``digest_chart``): the cash projection, the bank balance with
each week's net cash flow over the trailing 13 weeks, and runway over time. The method of each
headline number is printed beside it, not in a footnote."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from smartsync_pipeline.orchestrators.digest_chart import BLUE, GREEN, RED, Bars, Chart, Line, render

# The headline cards, in reading order (the CLI, the demo and the HTML page show these).
FIGURES = (
    ("cash_on_hand", "Cash in bank accounts"),
    ("weekly_net_burn", "Average weekly net burn (last 13 weeks)"),
    ("runway_weeks", "Runway"),
    ("projection_low", "Lowest projected cash (next 9 weeks)"),
    ("ap_net", "Owed to vendors (net of vendor credits)"),
    ("ar_net", "Owed by customers (net of credits)"),
    ("overdue_ap", "Overdue bills"),
    ("overdue_ar", "Overdue invoices"),
    ("net_30d", "Invoices due minus bills due, next 30 days"),
)

# How each headline figure is made, printed inside its card (the full sentences follow the cards).
HOW = {
    "cash_on_hand": "sum of today's balances of the Bank accounts",
    "weekly_net_burn": "(money out of the bank accounts - money in) ÷ 13 weeks",
    "runway_weeks": "cash in bank accounts ÷ average weekly net burn",
    "projection_low": "today's cash, bills paid and invoices collected when due",
}

# Payables and receivables in detail: (label, payable key, receivable key).
BALANCES = (
    ("Open documents", "ap_open", "ar_open"),
    ("Vendor credits / credit memos", "vendor_credits", "credit_memos"),
    ("Unapplied customer payments", None, "unapplied_payments"),
    ("Net", "ap_net", "ar_net"),
    ("Due within 7 days (overdue included)", "ap_due_7d", "ar_due_7d"),
    ("Due within 30 days (overdue included)", "ap_due_30d", "ar_due_30d"),
    ("Due within 60 days (overdue included)", "ap_due_60d", "ar_due_60d"),
    ("Overdue", "overdue_ap", "overdue_ar"),
)


def fmt_money(value: Any) -> str:
    if value is None:
        return "n/a"
    d = Decimal(str(value))
    sign = "-" if d < 0 else ""
    return f"{sign}${abs(d):,.2f}"


def figure_text(key: str, value: Any) -> str:
    if key == "runway_weeks":
        return "not burning cash" if value is None else f"{value} weeks"
    if key == "projection_low":
        return "n/a" if not value else f"{fmt_money(value['cash'])} (week ending {value['week_ending']})"
    return fmt_money(value)


def title(digest: dict[str, Any]) -> str:
    return f"Runway digest — {digest['company_name']}"


def to_markdown(digest: dict[str, Any]) -> str:
    lines = [
        f"### {title(digest)}, as of {digest['as_of_date']}",
        "",
        "| figure | value |",
        "|---|---:|",
        *(f"| {label} | {figure_text(key, digest.get(key))} |" for key, label in FIGURES),
        "",
        f"**Runway.** {digest['runway_method']}",
        "",
        f"**Projection.** {digest['projection_method']}",
        "",
        "| week ending | in | out | cash at end |",
        "|---|---:|---:|---:|",
        *(
            f"| {p['week_ending']} | {fmt_money(p['inflow'])} | {fmt_money(p['outflow'])} | {fmt_money(p['cash'])} |"
            for p in digest["cash_projection"]
        ),
        "",
        "**Top vendors owed**",
        "",
        "| vendor | owed | open bills | overdue |",
        "|---|---:|---:|---:|",
        *(
            f"| {v['vendor_name']} | {fmt_money(v['owed'])} | {v['open_bills']} | {v['overdue_bills']} |"
            for v in digest["top_vendors_owed"]
        ),
        "",
        "**Customers most overdue**",
        "",
        "| customer | overdue | invoices | max days late |",
        "|---|---:|---:|---:|",
        *(
            f"| {c['customer_name']} | {fmt_money(c['overdue'])} | {c['overdue_invoices']} | {c['days_overdue_max']} |"
            for c in digest["customers_most_overdue"]
        ),
        "",
        "**Provenance**",
        "",
        "| part | source | as of | age (s) | stale |",
        "|---|---|---|---:|---|",
        *(
            f"| {part} | {p['source']} | {p['as_of']} | {p['age_seconds']} | {'yes' if p['stale'] else 'no'} |"
            for part, p in digest["provenance"].items()
        ),
    ]
    return "\n".join(lines)


def _short_day(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.day} {d:%b}"


def projection_chart(digest: dict[str, Any]) -> Chart:
    points = digest["cash_projection"]
    return Chart(
        title=f"{digest['company_name']} — projected cash, next {len(points) - 1} weeks",
        aria_label="Projected cash by week",
        x_labels=[("today" if p["week"] == 0 else f"wk {p['week']}", _short_day(p["week_ending"])) for p in points],
        lines=[Line("cash", [Decimal(p["cash"]) for p in points], BLUE, "cash at end of week")],
        bars=[
            Bars(
                "inflow",
                [None if p["week"] == 0 else Decimal(p["inflow"]) for p in points],
                GREEN,
                "invoices collected",
            ),
            Bars("outflow", [None if p["week"] == 0 else -Decimal(p["outflow"]) for p in points], RED, "bills paid"),
        ],
        note="weeks end on the date shown; overdue items spread over the first weeks (method beside the chart)",
    )


def trailing_chart(digest: dict[str, Any]) -> Chart:
    weeks = digest["runway_history"]
    return Chart(
        title=f"{digest['company_name']} — bank balance and net cash flow, last {len(weeks)} weeks",
        aria_label="Trailing burn by week",
        x_labels=[
            (f"wk {i - len(weeks) + 1}" if i < len(weeks) - 1 else "this wk", _short_day(w["week_ending"]))
            for i, w in enumerate(weeks)
        ],
        lines=[Line("cash", [Decimal(w["cash"]) for w in weeks], BLUE, "bank balance at end of week")],
        bars=[
            Bars(
                "net",
                [-Decimal(w["net_burn"]) for w in weeks],
                GREEN,
                "week gained cash (in - out)",
                RED,
                "week burned cash",
            ),
        ],
        note="bars: money in minus money out of the bank accounts that week; balance: today's less the later movements",
    )


def runway_chart(digest: dict[str, Any]) -> Chart:
    weeks = digest["runway_history"]
    return Chart(
        title=f"{digest['company_name']} — runway over time (13-week trailing burn)",
        aria_label="Runway by week",
        x_labels=[
            (f"wk {i - len(weeks) + 1}" if i < len(weeks) - 1 else "this wk", _short_day(w["week_ending"]))
            for i, w in enumerate(weeks)
        ],
        lines=[
            Line(
                "runway",
                [None if w["runway_weeks"] is None else Decimal(w["runway_weeks"]) for w in weeks],
                BLUE,
                "runway in weeks",
            ),
        ],
        y_unit="weeks",
        note="a gap: the company was not burning cash over the 13 weeks to that date",
        height=260,
    )


def to_html(digest: dict[str, Any]) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["money"] = fmt_money
    template = env.from_string(
        resources.files("smartsync_pipeline.orchestrators").joinpath("templates/digest.html.j2").read_text()
    )
    figures = [(key, label, figure_text(key, digest.get(key))) for key, label in FIGURES]
    charts = {
        "projection": Markup(render(projection_chart(digest))),  # noqa: S704 - escaped in digest_chart
        "trailing": Markup(render(trailing_chart(digest))),  # noqa: S704
        "runway": Markup(render(runway_chart(digest))),  # noqa: S704
    }
    return template.render(d=digest, title=title(digest), figures=figures, how=HOW, balances=BALANCES, charts=charts)
