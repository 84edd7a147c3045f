"""What bills (AP) and invoices (AR) have in common: open balances, due dates, overdue, aging.

BillService and InvoiceService are this logic applied to their own reads; the business rules live
once, here and in ``Documents``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pandas as pd

from smartsync_pipeline.services.answers import Documents, balance, with_due_status
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

    def _documents(self, result: ReadResult) -> Documents:
        return Documents.of(with_due_status(result.rows, self.qbo_sync.today()), result.provenance)

    def open_documents(self, *, max_age: float | None = None) -> Documents:
        """Every document with an open balance, whatever its due date."""
        return self._documents(self._read_open(max_age))

    def due_within(self, days: int, *, max_age: float | None = None) -> Documents:
        """Open documents due within ``days`` from today, overdue ones included and marked."""
        return self._documents(self._read_due(check_days(days), max_age))

    def overdue(self, *, max_age: float | None = None) -> Documents:
        return self.open_documents(max_age=max_age).overdue()

    def due_totals(
        self, horizons: Sequence[int] = (7, 30, 60), *, max_age: float | None = None
    ) -> tuple[dict[int, Decimal], Documents]:
        """Open balance due on or before today+h for each horizon h (overdue included), from one read."""
        docs = self.open_documents(max_age=max_age)
        return docs.due_totals(horizons), docs

    def aging_buckets(self, *, max_age: float | None = None) -> tuple[dict[str, Decimal], Documents]:
        """Open balance by days past due: current, 1-30, 31-60, 61-90, 90+."""
        docs = self.open_documents(max_age=max_age)
        late = -docs.rows["days_until_due"]
        buckets = {}
        for name, low, high in AGING_BUCKETS:
            mask = pd.Series(True, index=docs.rows.index)
            if low is not None:
                mask &= late >= low
            if high is not None:
                mask &= late <= high
            buckets[name] = balance(docs.rows, mask)
        return buckets, docs
