"""What bills (AP) and invoices (AR) have in common: open balances, due dates, overdue, aging.

BillService and InvoiceService are this logic applied to their own reads; the business rules live
once, here.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pandas as pd

from smartsync_pipeline.services.answers import Documents, money, with_due_status
from smartsync_pipeline.smart.sync_service import QBOSyncService, ReadResult, check_days

AGING_BUCKETS = (("current", None, 0), ("1-30", 1, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("90+", 91, None))


class DueDocumentService:
    """Base for services over documents with a ``due_date`` and an open ``balance``."""

    def __init__(self, qbo_sync: QBOSyncService) -> None:
        self.qbo_sync = qbo_sync

    # Subclasses say how to read their documents.
    def _read_due(self, days: int, max_age: float | None) -> ReadResult:
        raise NotImplementedError

    def _read_open(self, max_age: float | None) -> ReadResult:
        raise NotImplementedError

    def _documents(self, result: ReadResult, mask: Sequence[bool] | None = None) -> Documents:
        rows = with_due_status(result.rows, self.qbo_sync.today())
        if mask is not None:
            rows = rows[list(mask)] if len(rows) else rows
        return Documents(rows, _sum(rows, None), _sum(rows, rows["is_overdue"]), result.provenance)

    def open_documents(self, *, max_age: float | None = None) -> Documents:
        """Every document with an open balance, whatever its due date."""
        return self._documents(self._read_open(max_age))

    def due_within(self, days: int, *, max_age: float | None = None) -> Documents:
        """Open documents due within ``days`` from today, overdue ones included and marked."""
        return self._documents(self._read_due(check_days(days), max_age))

    def overdue(self, *, max_age: float | None = None) -> Documents:
        result = self._read_open(max_age)
        return self._documents(result, with_due_status(result.rows, self.qbo_sync.today())["is_overdue"])

    def due_totals(
        self, horizons: Sequence[int] = (7, 30, 60), *, max_age: float | None = None
    ) -> tuple[dict[int, Decimal], Documents]:
        """Open balance due on or before today+h for each horizon h (overdue included), from one read."""
        docs = self._documents(self._read_open(max_age))
        days = docs.rows["days_until_due"]
        return {h: _sum(docs.rows, days <= check_days(h, "horizon")) for h in horizons}, docs

    def aging_buckets(self, *, max_age: float | None = None) -> tuple[dict[str, Decimal], Documents]:
        """Open balance by days past due: current, 1-30, 31-60, 61-90, 90+."""
        docs = self._documents(self._read_open(max_age))
        late = -docs.rows["days_until_due"]
        buckets = {}
        for name, low, high in AGING_BUCKETS:
            mask = pd.Series(True, index=docs.rows.index)
            if low is not None:
                mask &= late >= low
            if high is not None:
                mask &= late <= high
            buckets[name] = _sum(docs.rows, mask)
        return buckets, docs


def _sum(rows: pd.DataFrame, mask: pd.Series | None) -> Decimal:
    if not len(rows):
        return money(0)
    return money((rows["balance"] if mask is None else rows.loc[mask, "balance"]).sum())
