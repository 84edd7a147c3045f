"""QBO report documents (``GET /reports/{name}``) parsed into tidy cells with exact amounts.

A report is ``{"Header", "Columns", "Rows"}``. ``Rows.Row`` holds data rows (``ColData``: one
``{"value", "id"?}`` per column, amounts as strings) and sections (``Header.ColData``, nested
``Rows.Row``, ``Summary.ColData``, a ``group`` such as ``Income`` or ``GrandTotal``), nested to any
depth. Columns carry ``ColTitle``, ``ColType`` (``Account``, ``Money``, ``tx_date``, …) and
``MetaData`` (``ColKey``; ``StartDate``/``EndDate`` when ``summarize_column_by`` makes one column per
period).

Parsing flattens that into one ``ReportCell`` per (row, column) with the section path, the row's
label and id, its kind (data, section header, section summary, grand total) and the amount as a
``Decimal``. It also says whether the document is complete: QBO answers ``NoReportData`` for an empty
report, and when a report passes its cell limit it answers HTTP 200 with a fake data row "Unable to
display more data. Please reduce the date range." A truncated document is never returned as if it were
whole: ``ReportDocument.truncated`` is set and the client splits the range (``qbo/reports.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from smartsync_pipeline.qbo.errors import QBOError

DATA = "data"
SECTION_HEADER = "section_header"
SECTION_SUMMARY = "section_summary"
GRAND_TOTAL = "grand_total"
ROW_TYPES = (DATA, SECTION_HEADER, SECTION_SUMMARY, GRAND_TOTAL)

# What QBO writes into a report that passed its size limit (400,000 cells) instead of failing.
TRUNCATION_NOTICE = "unable to display more data"
# Money columns of detail reports are typed by their key, not always ``ColType: Money``.
MONEY_KEYS = frozenset({
    "subt_nat_amount", "subt_nat_home_amount", "rbal_nat_amount", "rbal_nat_home_amount", "nat_amount",
    "home_amount", "amount", "debt_amt", "credit_amt", "debt_home_amt", "credit_home_amt", "nat_open_bal",
    "open_bal", "balance", "tax_amount", "foreign_amount",
})  # fmt: skip
# A first column of these types names the row (account, party) instead of holding a value.
LABEL_TYPES = frozenset({"account", "vendor", "customer", "employee", "item", "class", "department",
                         "productsandservices", "name"})  # fmt: skip


class ReportFormatError(QBOError):
    """The answer is not a report document we can read completely; nothing of it is used."""


class ReportTruncatedError(QBOError):
    """QBO cut a report short and the range cannot be split further (or the report has no range)."""


@dataclass(frozen=True)
class ReportColumn:
    index: int
    key: str  # unique within the document: ColKey, else the ColType of detail columns, else the title
    title: str
    col_type: str
    start_date: date | None = None  # one column per period (summarize_column_by)
    end_date: date | None = None

    @property
    def is_money(self) -> bool:
        return self.col_type.lower() == "money" or self.key in MONEY_KEYS


@dataclass(frozen=True)
class ReportCell:
    """One value of a report: the tidy row the mirror stores."""

    row_number: int  # position of the row in the document, 1-based (order of the printed report)
    row_type: str  # DATA, SECTION_HEADER, SECTION_SUMMARY or GRAND_TOTAL
    section_path: tuple[str, ...]  # enclosing sections (a summary's path includes its own section)
    group: str | None  # the nearest QBO section group (Income, BankAccounts, GrandTotal, …)
    label: str  # the row's first value: account, party, "Total Income", a date in detail reports
    row_id: str | None  # the first id on the row: account / party id, or the transaction's id
    column: ReportColumn
    value: str  # as QBO wrote it
    amount: Decimal | None  # exact, for money columns
    value_id: str | None  # this cell's own id (transaction, party, split account)


@dataclass
class ReportDocument:
    """A parsed report: its header, columns, cells, and whether it is complete."""

    name: str
    start_period: date | None
    end_period: date | None
    basis: str | None
    currency: str | None
    summarize_by: str | None
    time: str | None
    date_macro: str | None
    options: dict[str, str]
    columns: tuple[ReportColumn, ...]
    cells: list[ReportCell] = field(default_factory=list)
    rows: int = 0
    truncated: bool = False
    truncation_reason: str = ""

    @property
    def no_data(self) -> bool:
        """QBO says there is nothing to report (a valid, empty answer)."""
        return self.options.get("noreportdata", "").lower() == "true"

    @property
    def cell_count(self) -> int:
        """Rows times columns, the measure of QBO's size limit."""
        return self.rows * len(self.columns)

    def money_columns(self) -> list[ReportColumn]:
        return [c for c in self.columns if c.is_money]

    def grand_totals(self) -> dict[str, dict[str, Decimal]]:
        """``{group: {column key: amount}}`` of the grand-total rows."""
        out: dict[str, dict[str, Decimal]] = {}
        for cell in self.cells:
            if cell.row_type == GRAND_TOTAL and cell.amount is not None:
                out.setdefault(cell.group or "", {})[cell.column.key] = cell.amount
        return out

    def sum_of(self, row_type: str = DATA, *, section: str | None = None) -> dict[str, Decimal]:
        """Σ amounts per money column over rows of ``row_type`` (optionally inside one top section)."""
        totals: dict[str, Decimal] = {}
        for cell in self.cells:
            if cell.row_type != row_type or cell.amount is None:
                continue
            if section is not None and (not cell.section_path or cell.section_path[0] != section):
                continue
            totals[cell.column.key] = totals.get(cell.column.key, Decimal(0)) + cell.amount
        return totals


def _get(obj: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in obj:
            return obj[name]
    return None


def _date(text: Any) -> date | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _pairs(items: Any) -> dict[str, str]:
    """QBO's ``[{"Name", "Value"}]`` lists (Header.Option, Column.MetaData) as a dict, names lower-cased."""
    out: dict[str, str] = {}
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                name, value = _get(item, "Name", "name"), _get(item, "Value", "value")
                if isinstance(name, str):
                    out[name.lower()] = "" if value is None else str(value)
    return out


def _columns(doc: Mapping[str, Any]) -> tuple[ReportColumn, ...]:
    raw = _get(doc.get("Columns") or {}, "Column") or []
    if not isinstance(raw, list):
        raise ReportFormatError("the report's Columns.Column is not a list")
    columns: list[ReportColumn] = []
    seen: set[str] = set()
    for index, col in enumerate(raw):
        if not isinstance(col, dict):
            raise ReportFormatError(f"report column {index} is not an object")
        title = str(col.get("ColTitle") or "")
        col_type = str(col.get("ColType") or "")
        meta = _pairs(col.get("MetaData"))
        generic = col_type.lower() in {"money", "string", "date", ""}
        label = col_type.lower() if col_type.lower() in LABEL_TYPES else ""
        key = meta.get("colkey") or label or (col_type if not generic else "") or title or f"col{index}"
        if key in seen:
            key = f"{key}#{index}"
        seen.add(key)
        columns.append(
            ReportColumn(index, key, title, col_type, _date(meta.get("startdate")), _date(meta.get("enddate")))
        )
    return tuple(columns)


def _amount(text: str, column: ReportColumn, where: str) -> Decimal | None:
    if text == "":
        return None
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        raise ReportFormatError(f"{where}: {column.title or column.key!r} holds {text!r}, not an amount") from None
    if not value.is_finite():
        raise ReportFormatError(f"{where}: {column.title or column.key!r} holds {text!r}, not an amount")
    return value


@dataclass
class _Walk:
    columns: tuple[ReportColumn, ...]
    grand_total_groups: frozenset[str]
    label_column: bool
    cells: list[ReportCell] = field(default_factory=list)
    rows: int = 0
    notice: str = ""

    def emit(self, col_data: Any, row_type: str, path: tuple[str, ...], group: str | None, where: str) -> None:
        if not isinstance(col_data, list):
            raise ReportFormatError(f"{where}: ColData is not a list")
        if len(col_data) > len(self.columns):
            raise ReportFormatError(f"{where}: {len(col_data)} values for {len(self.columns)} columns")
        self.rows += 1
        values: list[tuple[str, str | None]] = []
        for item in col_data:
            if not isinstance(item, dict):
                raise ReportFormatError(f"{where}: a ColData entry is not an object")
            value, ident = item.get("value"), item.get("id")
            text = "" if value is None else str(value)
            if TRUNCATION_NOTICE in text.lower():
                self.notice = self.notice or text
                return  # the notice row is not report data
            values.append((text, str(ident) if ident not in (None, "") else None))
        if not values:
            return
        label = values[0][0]
        row_id = next((ident for _, ident in values if ident), None)
        # Section headers and summaries always name themselves in the first column.
        first = 1 if self.label_column or row_type != DATA else 0
        for column, (text, ident) in zip(self.columns[first:], values[first:], strict=False):
            if text == "" and ident is None:
                continue
            amount = _amount(text, column, where) if column.is_money else None
            self.cells.append(ReportCell(self.rows, row_type, path, group, label, row_id, column, text, amount, ident))

    def walk(self, rows: Any, path: tuple[str, ...], group: str | None, depth: int) -> None:
        if rows is None:
            return
        if not isinstance(rows, list):
            raise ReportFormatError(f"Rows.Row under {'/'.join(path) or 'the report'} is not a list")
        for n, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ReportFormatError(f"row {n} under {'/'.join(path) or 'the report'} is not an object")
            where = f"row {n} of {'/'.join(path) or 'the report'}"
            kind = str(row.get("type") or "").lower()
            is_section = kind == "section" or any(k in row for k in ("Rows", "Summary", "Header"))
            if not is_section:
                self.emit(row.get("ColData", []), DATA, path, group, where)
                continue
            own_group = row.get("group")
            own_group = str(own_group) if own_group else None
            header = (row.get("Header") or {}).get("ColData")
            title = ""
            if isinstance(header, list) and header and isinstance(header[0], dict):
                title = str(header[0].get("value") or "")
            inner_path = (*path, title or own_group or "")
            inner_group = own_group or group
            if header is not None and _has_values(header):
                self.emit(header, SECTION_HEADER, inner_path, inner_group, where)
            elif header is not None:
                self.rows += 1
            self.walk(_get(row.get("Rows") or {}, "Row"), inner_path, inner_group, depth + 1)
            summary = (row.get("Summary") or {}).get("ColData")
            if summary is not None:
                grand = depth == 0 and own_group is not None and own_group in self.grand_total_groups
                self.emit(summary, GRAND_TOTAL if grand else SECTION_SUMMARY, inner_path, inner_group, where)


def _has_values(col_data: list[Any]) -> bool:
    return any(isinstance(c, dict) and c.get("value") not in (None, "") for c in col_data[1:])


def parse_report(
    doc: Any, *, expected_name: str | None = None, grand_total_groups: Iterable[str] = ()
) -> ReportDocument:
    """Parse a report document; raises ``ReportFormatError`` when it is not one (nothing half-read).

    ``grand_total_groups`` names the top-level section groups whose summary is the report's bottom
    line (``GrandTotal`` always is)."""
    if not isinstance(doc, dict):
        raise ReportFormatError("the report answer is not a JSON object")
    header = doc.get("Header")
    if not isinstance(header, dict):
        raise ReportFormatError("the report answer has no Header")
    name = str(header.get("ReportName") or "")
    if expected_name and name and name.lower() != expected_name.lower():
        raise ReportFormatError(f"asked for report {expected_name!r}, QBO answered {name!r}")
    options = _pairs(header.get("Option"))
    columns = _columns(doc)
    label_column = bool(columns) and (
        columns[0].col_type.lower() in LABEL_TYPES or (columns[0].title == "" and not columns[0].is_money)
    )
    walk = _Walk(columns, frozenset({"GrandTotal", *grand_total_groups}), label_column)
    rows = doc.get("Rows")
    if rows is not None and not isinstance(rows, dict):
        raise ReportFormatError("the report's Rows is not an object")
    if columns or (rows or {}).get("Row"):
        if not columns:
            raise ReportFormatError("the report has rows but no columns")
        walk.walk((rows or {}).get("Row"), (), None, 0)
    truncated_option = options.get("truncated", "").lower() == "true"
    reason = walk.notice or ("QBO marked the report Truncated" if truncated_option else "")
    return ReportDocument(
        name=name or (expected_name or ""),
        start_period=_date(header.get("StartPeriod")),
        end_period=_date(header.get("EndPeriod")),
        basis=header.get("ReportBasis"),
        currency=header.get("Currency"),
        summarize_by=header.get("SummarizeColumnsBy"),
        time=header.get("Time"),
        date_macro=header.get("DateMacro"),
        options=options,
        columns=columns,
        cells=walk.cells,
        rows=walk.rows,
        truncated=bool(reason),
        truncation_reason=reason,
    )


def iter_rows(cells: Iterable[ReportCell]) -> Iterator[list[ReportCell]]:
    """Cells grouped by row, in document order."""
    current: list[ReportCell] = []
    for cell in cells:
        if current and cell.row_number != current[0].row_number:
            yield current
            current = []
        current.append(cell)
    if current:
        yield current


__all__ = [
    "DATA",
    "GRAND_TOTAL",
    "ROW_TYPES",
    "SECTION_HEADER",
    "SECTION_SUMMARY",
    "TRUNCATION_NOTICE",
    "ReportCell",
    "ReportColumn",
    "ReportDocument",
    "ReportFormatError",
    "ReportTruncatedError",
    "iter_rows",
    "parse_report",
]
