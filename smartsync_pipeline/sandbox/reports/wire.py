"""Building report documents in QBO's wire format: Header (with Option NoReportData), Columns (ColTitle,
ColType, MetaData ColKey / StartDate / EndDate), Rows of Data rows and Sections (Header, Rows, Summary,
group), amounts as strings with two decimals; and QBO's size limit (a notice row instead of the rest)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

TRUNCATION_TEXT = "Unable to display more data. Please reduce the date range."
DEFAULT_CELL_LIMIT = 400_000  # QBO's documented limit per report response


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{part:02d}"


@dataclass(frozen=True)
class Column:
    title: str
    col_type: str
    key: str | None = None
    start: date | None = None
    end: date | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ColTitle": self.title, "ColType": self.col_type}
        meta = []
        if self.key:
            meta.append({"Name": "ColKey", "Value": self.key})
        if self.start and self.end:
            meta += [{"Name": "StartDate", "Value": self.start.isoformat()},
                     {"Name": "EndDate", "Value": self.end.isoformat()}]  # fmt: skip
        if meta:
            out["MetaData"] = meta
        return out


def cell(value: str, ident: str | None = None) -> dict[str, str]:
    return {"value": value, "id": ident} if ident else {"value": value}


def data_row(values: Sequence[dict[str, str]]) -> dict[str, Any]:
    return {"ColData": list(values), "type": "Data"}


def section(
    title: str | None, rows: list[dict[str, Any]] | None, summary: Sequence[dict[str, str]] | None,
    group: str | None, width: int, title_id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {}
    if title is not None:
        out["Header"] = {"ColData": [cell(title, title_id)] + [cell("") for _ in range(width - 1)]}
    if rows:
        out["Rows"] = {"Row": rows}
    if summary is not None:
        out["Summary"] = {"ColData": list(summary)}
    out["type"] = "Section"
    if group:
        out["group"] = group
    return out


def document(
    name: str, columns: Sequence[Column], rows: list[dict[str, Any]], *, start: date, end: date, time: str,
    basis: str | None = "Accrual", summarize_by: str | None = None, date_macro: str | None = None,
    options: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:  # fmt: skip
    header: dict[str, Any] = {"Time": time, "ReportName": name}
    if date_macro:
        header["DateMacro"] = date_macro
    if basis:
        header["ReportBasis"] = basis
    header.update({"StartPeriod": start.isoformat(), "EndPeriod": end.isoformat()})
    if summarize_by:
        header["SummarizeColumnsBy"] = summarize_by
    header["Currency"] = "USD"
    header["Option"] = [{"Name": k, "Value": v} for k, v in options] + [
        {"Name": "NoReportData", "Value": "false" if rows else "true"}
    ]
    return {"Header": header, "Columns": {"Column": [c.wire() for c in columns]}, "Rows": {"Row": rows} if rows else {}}


def cap_cells(doc: dict[str, Any], limit: int) -> dict[str, Any]:
    """QBO's behaviour past its cell limit: the rows that fit, then a notice row, and no summaries of
    the sections that were cut (their Summary never arrives). Returns ``doc`` unchanged when it fits."""
    width = max(1, len(doc["Columns"]["Column"]))
    budget = max(0, limit // width - 1)  # rows that fit, keeping one for the notice
    rows = doc.get("Rows", {}).get("Row") or []
    if _count_rows(rows) <= limit // width:
        return doc
    kept, _, _ = _take(rows, budget)
    kept.append(data_row([cell(TRUNCATION_TEXT)] + [cell("") for _ in range(width - 1)]))
    return {**doc, "Rows": {"Row": kept}}


def _count_rows(rows: list[dict[str, Any]]) -> int:
    total = 0
    for row in rows:
        if row.get("type") == "Section":
            total += ("Header" in row) + ("Summary" in row) + _count_rows(row.get("Rows", {}).get("Row") or [])
        else:
            total += 1
    return total


def _take(rows: list[dict[str, Any]], budget: int) -> tuple[list[dict[str, Any]], int, bool]:
    """The first rows within ``budget`` printed rows, the budget left, and whether all of ``rows``
    fit; a section cut in the middle loses its Summary."""
    out: list[dict[str, Any]] = []
    for row in rows:
        if budget <= 0:
            return out, budget, False
        if row.get("type") != "Section":
            out.append(row)
            budget -= 1
            continue
        part = {k: v for k, v in row.items() if k not in ("Rows", "Summary")}
        budget -= "Header" in row
        kept, budget, complete = _take(row.get("Rows", {}).get("Row") or [], budget)
        if kept:
            part["Rows"] = {"Row": kept}
        if complete and "Summary" in row:
            complete = budget > 0
            if complete:
                part["Summary"] = row["Summary"]
                budget -= 1
        out.append(part)
        if not complete:
            return out, budget, False
    return out, budget, True
