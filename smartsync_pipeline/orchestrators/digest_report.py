"""The runway digest as people read it: Markdown (Dagster UI metadata) and an HTML page with a cash
projection chart (inline SVG, no plotting dependency)."""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

FIGURES = (
    ("cash_on_hand", "Cash on hand"),
    ("ap_due_7d", "AP due in 7 days"),
    ("ap_due_30d", "AP due in 30 days"),
    ("ap_due_60d", "AP due in 60 days"),
    ("ar_due_7d", "AR due in 7 days"),
    ("ar_due_30d", "AR due in 30 days"),
    ("ar_due_60d", "AR due in 60 days"),
    ("overdue_ap", "Overdue AP"),
    ("overdue_ar", "Overdue AR"),
    ("net_30d", "Net cash flow, next 30 days"),
    ("weekly_net_burn", "Average weekly net burn (13 weeks)"),
    ("runway_weeks", "Runway (weeks)"),
)


def fmt_money(value: Any) -> str:
    if value is None:
        return "n/a"
    d = Decimal(str(value))
    sign = "-" if d < 0 else ""
    return f"{sign}${abs(d):,.2f}"


def figure_text(key: str, value: Any) -> str:
    if key == "runway_weeks":
        return "not burning" if value is None else f"{value} weeks"
    return fmt_money(value)


def to_markdown(digest: dict[str, Any]) -> str:
    lines = [
        f"### Runway digest — company {digest['business_id']}, as of {digest['as_of_date']}",
        "",
        "| figure | value |",
        "|---|---:|",
        *(f"| {label} | {figure_text(key, digest.get(key))} |" for key, label in FIGURES),
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


def projection_svg(points: list[dict[str, Any]], width: int = 720, height: int = 300) -> str:
    """Bars for weekly inflow (green) and outflow (red), a line for projected cash (blue)."""
    if not points:
        return "<svg xmlns='http://www.w3.org/2000/svg'/>"
    pad_l, pad_r, pad_t, pad_b = 90, 20, 20, 50
    cash = [float(p["cash"]) for p in points]
    flows = [float(p["inflow"]) for p in points] + [-float(p["outflow"]) for p in points]
    lo = min([0.0, *cash, *flows])
    hi = max([0.0, *cash, *flows]) or 1.0
    span = (hi - lo) or 1.0
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    step = plot_w / len(points)

    def y(v: float) -> float:
        return pad_t + (hi - v) / span * plot_h

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
        f"aria-label='Projected cash by week'>",
        f"<line x1='{pad_l}' y1='{y(0):.1f}' x2='{width - pad_r}' y2='{y(0):.1f}' stroke='#888' stroke-width='1'/>",
    ]
    for tick in (hi, (hi + lo) / 2, lo):
        parts.append(
            f"<text x='{pad_l - 8}' y='{y(tick) + 4:.1f}' font-size='11' text-anchor='end' fill='#444'>"
            f"{fmt_money(round(tick, 2))}</text>"
        )
    line = []
    for i, p in enumerate(points):
        x0 = pad_l + i * step
        inflow, outflow = float(p["inflow"]), float(p["outflow"])
        bw = step * 0.3
        parts.append(
            f"<rect x='{x0 + step * 0.15:.1f}' y='{y(inflow):.1f}' width='{bw:.1f}' "
            f"height='{max(0.0, y(0) - y(inflow)):.1f}' fill='#3a9d5d'><title>in {fmt_money(inflow)}</title></rect>"
        )
        parts.append(
            f"<rect x='{x0 + step * 0.5:.1f}' y='{y(0):.1f}' width='{bw:.1f}' "
            f"height='{max(0.0, y(-outflow) - y(0)):.1f}' fill='#d2553f'><title>out {fmt_money(outflow)}</title></rect>"
        )
        cx = x0 + step / 2
        line.append(f"{cx:.1f},{y(float(p['cash'])):.1f}")
        parts.append(
            f"<text x='{cx:.1f}' y='{height - pad_b + 16}' font-size='10' text-anchor='middle' fill='#444'>"
            f"{p['week_ending'][5:]}</text>"
        )
    parts.append(f"<polyline points='{' '.join(line)}' fill='none' stroke='#2b6cb0' stroke-width='2.5'/>")
    for pt in line:
        cx, cy = pt.split(",")
        parts.append(f"<circle cx='{cx}' cy='{cy}' r='3.5' fill='#2b6cb0'/>")
    parts.append("</svg>")
    return "".join(parts)


def to_html(digest: dict[str, Any]) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["money"] = fmt_money
    template = env.from_string(
        resources.files("smartsync_pipeline.orchestrators").joinpath("templates/digest.html.j2").read_text()
    )
    figures = [(label, figure_text(key, digest.get(key))) for key, label in FIGURES]
    chart = Markup(projection_svg(digest["cash_projection"]))  # noqa: S704 - numbers and dates only
    return template.render(d=digest, figures=figures, chart=chart)
