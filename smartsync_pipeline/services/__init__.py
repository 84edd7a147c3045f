"""Domain services: business rules over QBO data. They reach data only through QBOSyncService
(an import-contract test enforces it): no DuckDB, no HTTP, no QBO client here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from smartsync_pipeline.services.accounts import AccountService, CashPosition
from smartsync_pipeline.services.answers import Documents
from smartsync_pipeline.services.bank_flows import BankFlows, BankFlowService
from smartsync_pipeline.services.bills import BillService
from smartsync_pipeline.services.company import CompanyName, CompanyService
from smartsync_pipeline.services.credits import Credits, CreditService
from smartsync_pipeline.services.invoices import InvoiceService
from smartsync_pipeline.services.parties import CustomerService, Ranking, VendorService
from smartsync_pipeline.services.payments import CashFlowHistory, PaymentService
from smartsync_pipeline.smart.sync_service import AsyncView, QBOSyncService


@dataclass(frozen=True)
class DomainServices:
    """Every domain service of one business (QBO company), sharing one QBOSyncService."""

    business_id: str
    bills: BillService
    invoices: InvoiceService
    accounts: AccountService
    vendors: VendorService
    customers: CustomerService
    payments: PaymentService
    bank_flows: BankFlowService
    credits: CreditService
    company: CompanyService


def for_business(reader: Any, business_id: str, *, today: date | None = None) -> DomainServices:
    """Build the services of one business on a SmartReader (``today`` fixes the report date)."""
    qbo_sync = QBOSyncService(reader, business_id, today=(lambda: today) if today else None)
    return DomainServices(
        business_id,
        BillService(qbo_sync),
        InvoiceService(qbo_sync),
        AccountService(qbo_sync),
        VendorService(qbo_sync),
        CustomerService(qbo_sync),
        PaymentService(qbo_sync),
        BankFlowService(qbo_sync),
        CreditService(qbo_sync),
        CompanyService(qbo_sync),
    )


__all__ = [
    "AccountService",
    "AsyncView",
    "BankFlowService",
    "BankFlows",
    "BillService",
    "CashFlowHistory",
    "CashPosition",
    "CompanyName",
    "CompanyService",
    "CreditService",
    "Credits",
    "CustomerService",
    "Documents",
    "DomainServices",
    "InvoiceService",
    "PaymentService",
    "Ranking",
    "VendorService",
    "for_business",
]
