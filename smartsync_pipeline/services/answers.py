"""What domain services return: a business value plus the provenance of the data behind it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation
from typing import Any

import pandas as pd

from smartsync_pipeline.smart.sync_service import Provenance, check_days

CENT = Decimal("0.01")
_EXACT = Context(prec=38, traps=[Inexact, InvalidOperation])


def money(value: Any) -> Decimal:
    """An amount of money as a 2-place Decimal, exactly: the mirror's DECIMAL(18,2) values and their
    sums already are whole cents, so nothing is rounded here. A binary float, or an amount with a
    fraction of a cent, is a bug upstream and raises instead of being rounded into place."""
    if value is None or value is pd.NA:
        return Decimal("0.00")
    if hasattr(value, "item") and not isinstance(value, Decimal):
        value = value.item()  # a numpy integer from a pandas count
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"money must be exact (Decimal or int), got {type(value).__name__} {value!r}")
    try:
        return Decimal(value).quantize(CENT, context=_EXACT)
    except (Inexact, InvalidOperation):
        raise ValueError(f"not a whole number of cents: {value!r}") from None


def per(amount: Decimal, numerator: int, denominator: int) -> Decimal:
    """``amount * numerator / denominator`` to the cent (half up): a derived rate such as a weekly
    average, the one place a division makes rounding unavoidable."""
    return (money(amount) * numerator / denominator).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Documents:
    """A set of bills or invoices with their totals. Subsets and due totals are taken from these rows,
    so one read answers every question about them (same snapshot, same provenance)."""

    rows: pd.DataFrame  # one row per document, with days_until_due and is_overdue
    total_balance: Decimal
    overdue_balance: Decimal
    provenance: Provenance

    @classmethod
    def of(cls, rows: pd.DataFrame, provenance: Provenance) -> Documents:
        """``rows`` with their totals (rows as ``with_due_status`` returns them)."""
        return cls(rows, balance(rows), balance(rows, rows["is_overdue"]), provenance)

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def overdue_count(self) -> int:
        return int(self.rows["is_overdue"].sum()) if len(self.rows) else 0

    def where(self, mask: pd.Series) -> Documents:
        """The documents ``mask`` selects, with their own totals."""
        return Documents.of(self.rows[mask] if len(self.rows) else self.rows, self.provenance)

    def overdue(self) -> Documents:
        return self.where(self.rows["is_overdue"])

    def balance_due(self, after_days: int | None, through_days: int) -> Decimal:
        """Open balance due after today+``after_days`` (None: overdue included) up to today+``through_days``."""
        if not len(self.rows):
            return money(0)
        days = self.rows["days_until_due"]
        mask = days <= through_days if after_days is None else (days > after_days) & (days <= through_days)
        return balance(self.rows, mask)

    def due_totals(self, horizons: Sequence[int]) -> dict[int, Decimal]:
        """Open balance due on or before today+h for each horizon h, overdue included."""
        return {h: self.balance_due(None, check_days(h, "horizon")) for h in horizons}

    def records(self) -> list[dict[str, Any]]:
        """Rows as plain Python values: money as exact Decimals, dates as ``date``, missing as None
        (``smartsync_pipeline.api.money.to_json`` writes them as JSON)."""
        return [{k: _plain(k, v) for k, v in rec.items()} for rec in self.rows.to_dict("records")]


def balance(rows: pd.DataFrame, mask: pd.Series | None = None) -> Decimal:
    """The open balance of ``rows`` (those ``mask`` selects), in exact cents."""
    if not len(rows):
        return money(0)
    return money((rows["balance"] if mask is None else rows.loc[mask, "balance"]).sum())


def _plain(key: str, value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return None
    if key in ("total_amt", "balance"):
        return money(value)
    if isinstance(value, pd.Timestamp):
        return value.date() if key.endswith("date") else value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def with_due_status(rows: pd.DataFrame, today: date) -> pd.DataFrame:
    """Add days_until_due (negative when overdue) and is_overdue to bill or invoice rows."""
    rows = rows.copy()
    due = pd.to_datetime(rows["due_date"])
    rows["days_until_due"] = (due - pd.Timestamp(today)).dt.days
    rows["is_overdue"] = (rows["days_until_due"] < 0).fillna(False).astype(bool)
    return rows
