"""InvoiceService: accounts receivable (what customers owe us, when, how late)."""

from __future__ import annotations

from decimal import Decimal

from smartsync_pipeline.services.answers import Documents
from smartsync_pipeline.services.documents import DueDocumentService
from smartsync_pipeline.smart.sync_service import ReadResult


class InvoiceService(DueDocumentService):
    def _read_due(self, days: int, max_age: float | None) -> ReadResult:
        return self.qbo_sync.get_invoices_by_due_days(days, max_age=max_age)

    def _read_open(self, max_age: float | None) -> ReadResult:
        return self.qbo_sync.get_open_invoices(max_age=max_age)

    def get_ar_due_in_days(self, days: int = 30, *, max_age: float | None = None) -> Documents:
        """Open invoices due within ``days`` (overdue included and marked)."""
        return self.due_within(days, max_age=max_age)

    def get_overdue_invoices(self, *, max_age: float | None = None) -> Documents:
        return self.overdue(max_age=max_age)

    def get_aging_buckets(self, *, max_age: float | None = None) -> tuple[dict[str, Decimal], Documents]:
        return self.aging_buckets(max_age=max_age)
