"""The digest's pictures as inline SVG, drawn the way finance charts are read: a title naming the
company, a y axis with round tick values (whole dollars or weeks) and a marked zero line, weeks along
x, bars for money moving and a line for the balance. Every mark carries its exact value in
``data-value`` (and a tooltip), so a test can check the picture against the digest's figures.

No plotting dependency: the charts are a few dozen rectangles and one polyline each.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape

GREEN, RED, BLUE, GREY, INK = "#2f855a", "#c53030", "#2b6cb0", "#a0aec0", "#2d3748"


@dataclass(frozen=True)
class Bars:
    """One bar per x position (None: no bar), drawn up from zero for positive values, down for negative."""

    name: str
    values: Sequence[Decimal | None]
    color: str
    label: str
    negative_color: str | None = None  # bars below zero in another colour (weeks that burned cash)
    negative_label: str = ""  # the legend's name for those


@dataclass(frozen=True)
class Line:
    """A polyline through the x positions (None breaks the line), with a dot per value."""

    name: str
    values: Sequence[Decimal | None]
    color: str
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    aria_label: str
    x_labels: Sequence[tuple[str, str]]  # two lines under each x position: ("wk 1", "7 Dec")
    bars: Sequence[Bars] = ()
    lines: Sequence[Line] = ()
    y_unit: str = "money"  # "money" (whole dollars) or "weeks"
    note: str = ""
    width: int = 760
    height: int = 340
    css_class: str = field(default="chart")


def nice_step(span: float, intervals: int = 5) -> int:
    """A round whole-number step (1, 2, 5 x 10^k) giving about ``intervals`` intervals over ``span``."""
    if span <= 0:
        return 1
    raw = span / intervals
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        step = factor * magnitude
        if step >= raw:
            return max(1, round(step))
    return max(1, round(10 * magnitude))  # pragma: no cover - the loop always returns


def nice_ticks(values: Sequence[float], intervals: int = 5) -> list[int]:
    """Round tick values covering ``values`` and zero: whole multiples of one round step."""
    lo, hi = min([0.0, *values]), max([0.0, *values])
    step = nice_step(hi - lo, intervals)
    first, last = math.floor(lo / step) * step, math.ceil(hi / step) * step
    if first == last:
        last = first + step
    return list(range(int(first), int(last) + step, step))


def money_tick(value: int) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,}"


def weeks_tick(value: int) -> str:
    return f"{value} wk"


def money_exact(value: Decimal) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def render(chart: Chart) -> str:
    """The chart as one ``<svg>`` element."""
    n = len(chart.x_labels)
    plotted = [float(v) for s in (*chart.bars, *chart.lines) for v in s.values if v is not None]
    ticks = nice_ticks(plotted)
    lo, hi = ticks[0], ticks[-1]
    tick_text: Callable[[int], str] = money_tick if chart.y_unit == "money" else weeks_tick
    exact: Callable[[Decimal], str] = money_exact if chart.y_unit == "money" else (lambda v: f"{v} weeks")
    pad_l, pad_r, pad_t, pad_b = 92, 24, 58, 52
    w, h = chart.width, chart.height
    plot_w, plot_h = w - pad_l - pad_r, h - pad_t - pad_b
    step = plot_w / max(n, 1)

    def x(i: int) -> float:
        return pad_l + step * (i + 0.5)

    def y(v: float) -> float:
        return pad_t + (hi - v) / (hi - lo) * plot_h

    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='{chart.css_class}' width='{w}' height='{h}' "
        f"viewBox='0 0 {w} {h}' role='img' aria-label='{escape(chart.aria_label, quote=True)}' "
        f"font-family='system-ui, sans-serif'>",
        f"<text class='chart-title' x='{pad_l}' y='22' font-size='15' font-weight='600' fill='{INK}'>"
        f"{escape(chart.title)}</text>",
    ]
    legend_x = pad_l
    swatches = [(s.color, s.label) for s in (*chart.lines, *chart.bars)]
    swatches += [(s.negative_color, s.negative_label) for s in chart.bars if s.negative_color and s.negative_label]
    for color, label in swatches:
        out.append(
            f"<rect x='{legend_x}' y='33' width='11' height='11' fill='{color}'/>"
            f"<text class='legend' x='{legend_x + 15}' y='43' font-size='11' fill='{INK}'>{escape(label)}</text>"
        )
        legend_x += 22 + 6.5 * len(label)
    for t in ticks:
        zero = t == 0
        out.append(
            f"<line class='{'zero-line' if zero else 'grid'}' x1='{pad_l}' x2='{w - pad_r}' y1='{y(t):.1f}' "
            f"y2='{y(t):.1f}' stroke='{INK if zero else '#e2e8f0'}' stroke-width='{1.5 if zero else 1}'/>"
            f"<text class='y-tick' data-value='{t}' x='{pad_l - 8}' y='{y(t) + 4:.1f}' font-size='11' "
            f"text-anchor='end' fill='{INK}'>{tick_text(t)}</text>"
        )
    groups = max(len(chart.bars), 1)
    bar_w = step * 0.7 / groups
    for g, s in enumerate(chart.bars):
        for i, v in enumerate(s.values):
            if v is None:
                continue
            top, bottom = (y(float(v)), y(0)) if v >= 0 else (y(0), y(float(v)))
            left = x(i) - step * 0.35 + g * bar_w
            out.append(
                f"<rect class='bar {s.name}' data-index='{i}' data-value='{v}' x='{left:.1f}' y='{top:.1f}' "
                f"width='{bar_w * 0.92:.1f}' height='{max(bottom - top, 0.0):.1f}' "
                f"fill='{s.negative_color if v < 0 and s.negative_color else s.color}' opacity='0.85'>"
                f"<title>{escape(s.label)}: {exact(v)}</title></rect>"
            )
    for s in chart.lines:
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
                continue
            runs[-1].append(f"{x(i):.1f},{y(float(v)):.1f}")
        for run in runs:
            if len(run) > 1:
                out.append(
                    f"<polyline class='line {s.name}' points='{' '.join(run)}' fill='none' stroke='{s.color}' "
                    f"stroke-width='2.5'/>"
                )
        for i, v in enumerate(s.values):
            if v is not None:
                out.append(
                    f"<circle class='point {s.name}' data-index='{i}' data-value='{v}' cx='{x(i):.1f}' "
                    f"cy='{y(float(v)):.1f}' r='3.5' fill='{s.color}'><title>{escape(s.label)}: {exact(v)}</title>"
                    "</circle>"
                )
    for i, (first, second) in enumerate(chart.x_labels):
        out.append(
            f"<text class='x-label' x='{x(i):.1f}' y='{h - pad_b + 17}' font-size='11' text-anchor='middle' "
            f"fill='{INK}'>{escape(first)}</text>"
            f"<text x='{x(i):.1f}' y='{h - pad_b + 31}' font-size='10' text-anchor='middle' fill='#718096'>"
            f"{escape(second)}</text>"
        )
    if chart.note:
        out.append(f"<text x='{pad_l}' y='{h - 6}' font-size='10' fill='#718096'>{escape(chart.note)}</text>")
    out.append("</svg>")
    return "".join(out)
