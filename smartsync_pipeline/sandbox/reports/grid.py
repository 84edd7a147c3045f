"""Summary reports as a tree of sections over account lines, rendered to QBO's nested rows.

A ``Section`` sums its lines and subsections per column (or carries a computed value, like Gross
Profit); empty sections are dropped unless they are computed. Amounts are integer cents until they
are written as strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smartsync_pipeline.sandbox.reports.wire import cell, data_row, money, section


@dataclass
class Line:
    label: str
    ident: str | None
    values: list[int | None]  # None: nothing posted in that column (printed blank)


@dataclass
class Section:
    title: str | None  # header text; None for summary-only sections
    group: str | None
    summary: str  # summary label ("Total Income", "Gross Profit")
    children: list[Line | Section] = field(default_factory=list)
    computed: list[int] | None = None  # summary-only sections carry their own value
    keep_empty: bool = False  # print header and blank summary even without lines (QBO's Expenses)

    def totals(self, width: int) -> list[int]:
        if self.computed is not None:
            return list(self.computed)
        out = [0] * width
        for child in self.children:
            values = child.totals(width) if isinstance(child, Section) else [v or 0 for v in child.values]
            out = [a + b for a, b in zip(out, values, strict=True)]
        return out

    def is_empty(self) -> bool:
        if self.computed is not None:
            return False
        return not any(isinstance(c, Line) or not c.is_empty() for c in self.children)


def render(sections: list[Section], width: int) -> list[dict[str, Any]]:
    """Wire rows of the top-level sections; ``width`` money columns follow the label column."""
    return [row for s in sections if (row := _render(s, width)) is not None]


def _render(node: Section, width: int) -> dict[str, Any] | None:
    if node.is_empty() and not node.keep_empty:
        return None
    rows: list[dict[str, Any]] = []
    for child in node.children:
        if isinstance(child, Line):
            values = ["" if v is None else money(v) for v in child.values]
            rows.append(data_row([cell(child.label, child.ident)] + [cell(v) for v in values]))
        else:
            rendered = _render(child, width)
            if rendered is not None:
                rows.append(rendered)
    empty = node.computed is None and not rows
    summary_values = [""] * width if empty else [money(v) for v in node.totals(width)]
    summary = [cell(node.summary)] + [cell(v) for v in summary_values]
    return section(node.title, rows, summary, node.group, width + 1)
