"""BillService: accounts payable in business terms (what we owe, when, to whom)."""

from __future__ import annotations

from smartsync_pipeline.services.answers import Documents
from smartsync_pipeline.services.documents import DueDocumentService
from smartsync_pipeline.smart.sync_service import ReadResult


class BillService(DueDocumentService):
    def _read_due(self, days: int, max_age: float | None) -> ReadResult:
        return self.qbo_sync.get_bills_by_due_days(days, max_age=max_age)

    def _read_open(self, max_age: float | None) -> ReadResult:
        return self.qbo_sync.get_open_bills(max_age=max_age)

    def get_bills_due_in_days(self, days: int = 30, *, max_age: float | None = None) -> Documents:
        """Unpaid bills due within ``days`` (overdue ones included and marked ``is_overdue``)."""
        return self.due_within(days, max_age=max_age)

    def get_overdue_bills(self, *, max_age: float | None = None) -> Documents:
        return self.overdue(max_age=max_age)

    def get_bills_by_vendor(self, vendor: str, *, max_age: float | None = None) -> Documents:
        """Open bills of one vendor, by vendor id or exact display name."""
        if not isinstance(vendor, str) or not vendor.strip():
            raise ValueError("vendor must be a vendor id or display name")
        docs = self.open_documents(max_age=max_age)
        return docs.where((docs.rows["vendor_id"] == vendor) | (docs.rows["vendor_name"] == vendor))
