"""VendorService and CustomerService: who we owe most, who owes us longest."""

from __future__ import annotations

from dataclasses import dataclass

from smartsync_pipeline.services.answers import Documents, money
from smartsync_pipeline.services.bills import BillService
from smartsync_pipeline.services.invoices import InvoiceService
from smartsync_pipeline.smart.sync_service import Provenance, QBOSyncService


@dataclass(frozen=True)
class Ranking:
    items: list[dict]  # amounts (owed, overdue) as exact Decimals
    provenance: Provenance


def _check_top(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1000:
        raise ValueError(f"top must be a whole number between 1 and 1000, got {n!r}")
    return n


class VendorService:
    def __init__(self, qbo_sync: QBOSyncService) -> None:
        self.bills = BillService(qbo_sync)

    def top_vendors_owed(self, top: int = 5, *, max_age: float | None = None) -> Ranking:
        """Vendors with the largest unpaid balance across their open bills."""
        return self.rank_owed(self.bills.open_documents(max_age=max_age), top)

    @staticmethod
    def rank_owed(docs: Documents, top: int = 5) -> Ranking:
        """``top_vendors_owed`` over open bills already read."""
        if not len(docs.rows):
            return Ranking([], docs.provenance)
        grouped = (
            docs.rows.groupby(["vendor_id", "vendor_name"], dropna=False)
            .agg(owed=("balance", "sum"), bills=("id", "count"), overdue=("is_overdue", "sum"))
            .reset_index()
            .sort_values(["owed", "vendor_id"], ascending=[False, True])
            .head(_check_top(top))
        )
        items = [
            {"vendor_id": r.vendor_id, "vendor_name": r.vendor_name, "owed": money(r.owed),
             "open_bills": int(r.bills), "overdue_bills": int(r.overdue)}
            for r in grouped.itertuples()
        ]  # fmt: skip
        return Ranking(items, docs.provenance)


class CustomerService:
    def __init__(self, qbo_sync: QBOSyncService) -> None:
        self.invoices = InvoiceService(qbo_sync)

    def most_overdue_customers(self, top: int = 5, *, max_age: float | None = None) -> Ranking:
        """Customers with the largest overdue balance (ties: the oldest overdue invoice first)."""
        return self.rank_overdue(self.invoices.overdue(max_age=max_age), top)

    @staticmethod
    def rank_overdue(docs: Documents, top: int = 5) -> Ranking:
        """``most_overdue_customers`` over overdue invoices already read."""
        if not len(docs.rows):
            return Ranking([], docs.provenance)
        grouped = (
            docs.rows.groupby(["customer_id", "customer_name"], dropna=False)
            .agg(overdue=("balance", "sum"), invoices=("id", "count"), worst=("days_until_due", "min"))
            .reset_index()
            .sort_values(["overdue", "worst", "customer_id"], ascending=[False, True, True])
            .head(_check_top(top))
        )
        items = [
            {"customer_id": r.customer_id, "customer_name": r.customer_name, "overdue": money(r.overdue),
             "overdue_invoices": int(r.invoices), "days_overdue_max": int(-r.worst)}
            for r in grouped.itertuples()
        ]  # fmt: skip
        return Ranking(items, docs.provenance)
