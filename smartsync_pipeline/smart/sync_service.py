"""QBOSyncService: the single facade domain services use for QBO data (names from the original
smart-sync pattern). Every method goes through the SmartReader, so every answer is "mirror if fresh,
else QBO first" and carries provenance. ``AsyncView`` gives the awaitable form the pattern uses.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from smartsync_pipeline.entities import find_entity
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.qbo.errors import QBOError
from smartsync_pipeline.smart.errors import DataUnavailableError, SmartReadError, UnknownCompanyError
from smartsync_pipeline.smart.provenance import Provenance
from smartsync_pipeline.smart.reader import ReadResult, SmartReader

# What domain services may use from the data layer: this module is their only door into it.
__all__ = [
    "AsyncView",
    "DataUnavailableError",
    "Provenance",
    "QBOSyncService",
    "ReadResult",
    "SmartReadError",
    "SmartReader",
    "UnknownCompanyError",
    "check_days",
]

MAX_DAYS = 3650
_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$")
_ALIAS = re.compile(r"^[a-z][a-z0-9_]*$")


def _json_path(path: str) -> str:
    """A dotted QBO field path as a DuckDB JSON path (only names: nothing a caller could inject)."""
    if not _PATH.match(path):
        raise ValueError(f"not a QBO field path: {path!r}")
    return "$." + path


def _alias(alias: str) -> str:
    if not _ALIAS.match(alias):
        raise ValueError(f"not a column alias: {alias!r}")
    return alias


def check_days(days: Any, name: str = "days") -> int:
    """Business windows are whole days between 0 and 10 years; anything else is a caller's mistake."""
    if isinstance(days, bool) or not isinstance(days, int):
        raise ValueError(f"{name} must be a whole number of days, got {days!r}")
    if not 0 <= days <= MAX_DAYS:
        raise ValueError(f"{name} must be between 0 and {MAX_DAYS}, got {days}")
    return days


class AsyncView:
    """The same service with every public method awaitable (run in a worker thread), so code written
    in the pattern's style works unchanged: ``await AsyncView(bill_service).get_bills_due_in_days(30)``.
    One wrapper serves QBOSyncService, the domain services and the orchestrator."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if name.startswith("_") or not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(attr, *args, **kwargs)

        call.__name__ = name
        call.__doc__ = attr.__doc__
        return call


_BILL_COLUMNS = (
    "id, doc_number, vendor_id, vendor_name, txn_date, due_date, total_amt, balance, currency_id, last_updated_time"
)
_INVOICE_COLUMNS = (
    "id, doc_number, customer_id, customer_name, txn_date, due_date, total_amt, balance, currency_id, last_updated_time"
)


class QBOSyncService:
    """Data access for one company (realm). ``today`` is injectable for reports "as of" a date."""

    def __init__(self, reader: SmartReader, realm_id: str, *, today: Callable[[], date] | None = None) -> None:
        if not isinstance(realm_id, str) or not realm_id:
            raise ValueError("realm_id (the business id) must be a non-empty string")
        self.reader = reader
        self.realm_id = realm_id
        self._today = today or date.today

    def today(self) -> date:
        return self._today()

    # -- accounts payable ------------------------------------------------------------------------

    def get_bills_by_due_days(self, days: int = 30, *, max_age: float | None = None) -> ReadResult:
        """Unpaid bills due within ``days`` from today, overdue ones included."""
        horizon = self.today() + timedelta(days=check_days(days))
        return self.reader.read(
            "Bill", self.realm_id, where="balance > 0 AND due_date <= ?", params=[horizon],
            columns=_BILL_COLUMNS, order_by="due_date, id", max_age=max_age,
        )  # fmt: skip

    def get_open_bills(self, *, max_age: float | None = None) -> ReadResult:
        return self.reader.read(
            "Bill", self.realm_id, where="balance > 0", columns=_BILL_COLUMNS, order_by="due_date, id",
            max_age=max_age,
        )  # fmt: skip

    def get_bill_payments(self, since_days: int = 90, *, max_age: float | None = None) -> ReadResult:
        since = self.today() - timedelta(days=check_days(since_days, "since_days"))
        return self.reader.read(
            "BillPayment", self.realm_id, where="txn_date >= ?", params=[since],
            columns="id, txn_date, total_amt, vendor_id, vendor_name, pay_type", order_by="txn_date, id",
            max_age=max_age,
        )  # fmt: skip

    def get_purchases(self, since_days: int = 90, *, max_age: float | None = None) -> ReadResult:
        since = self.today() - timedelta(days=check_days(since_days, "since_days"))
        return self.reader.read(
            "Purchase", self.realm_id, where="txn_date >= ?", params=[since],
            columns="id, txn_date, total_amt, payment_type, account_id, payee_id, payee_name", order_by="txn_date, id",
            max_age=max_age,
        )  # fmt: skip

    # -- accounts receivable ---------------------------------------------------------------------

    def get_invoices_by_due_days(self, days: int = 30, *, max_age: float | None = None) -> ReadResult:
        """Open invoices due within ``days`` from today, overdue ones included."""
        horizon = self.today() + timedelta(days=check_days(days))
        return self.reader.read(
            "Invoice", self.realm_id, where="balance > 0 AND due_date <= ?", params=[horizon],
            columns=_INVOICE_COLUMNS, order_by="due_date, id", max_age=max_age,
        )  # fmt: skip

    def get_open_invoices(self, *, max_age: float | None = None) -> ReadResult:
        return self.reader.read(
            "Invoice", self.realm_id, where="balance > 0", columns=_INVOICE_COLUMNS, order_by="due_date, id",
            max_age=max_age,
        )  # fmt: skip

    def get_payments(self, since_days: int = 90, *, max_age: float | None = None) -> ReadResult:
        """Customer payments received in the last ``since_days``."""
        since = self.today() - timedelta(days=check_days(since_days, "since_days"))
        return self.reader.read(
            "Payment", self.realm_id, where="txn_date >= ?", params=[since],
            columns="id, txn_date, total_amt, unapplied_amt, customer_id, customer_name", order_by="txn_date, id",
            max_age=max_age,
        )  # fmt: skip

    # -- name lists ------------------------------------------------------------------------------

    def get_vendors(self, *, active_only: bool = True, max_age: float | None = None) -> ReadResult:
        return self.reader.read(
            "Vendor", self.realm_id, where="active" if active_only else "",
            columns="id, display_name, company_name, email, balance, active", order_by="display_name",
            max_age=max_age,
        )  # fmt: skip

    def get_customers(self, *, active_only: bool = True, max_age: float | None = None) -> ReadResult:
        return self.reader.read(
            "Customer", self.realm_id, where="active" if active_only else "",
            columns="id, display_name, company_name, email, balance, active", order_by="display_name",
            max_age=max_age,
        )  # fmt: skip

    def get_accounts(self, *, account_type: str | None = None, max_age: float | None = None) -> ReadResult:
        return self.reader.read(
            "Account", self.realm_id,
            where="account_type = ?" if account_type else "", params=[account_type] if account_type else [],
            columns="id, name, account_type, account_sub_type, classification, current_balance, active",
            order_by="name", max_age=max_age,
        )  # fmt: skip

    # -- the whole books, as raw QBO objects ------------------------------------------------------

    def mirrors(self, entity_name: str) -> bool:
        """Whether this build mirrors ``entity_name`` (entities join the registry over time; services
        that use every entity they can ask this instead of importing the registry)."""
        return find_entity(entity_name) is not None

    def get_fields_since(
        self, entity_name: str, since_days: int, fields: dict[str, str], *, max_age: float | None = None
    ) -> ReadResult:
        """Live objects of a transaction entity dated (``TxnDate``) on or after today - ``since_days``, as
        rows of ``id, txn_date`` and one text column per ``fields`` entry (alias -> dotted JSON path into
        the raw QBO object; an object or array comes back as its JSON text). For rules that read nested
        fields (account refs, lines) of any entity, whatever typed columns it has."""
        since = self.today() - timedelta(days=check_days(since_days, "since_days"))
        picked = ", ".join(
            f"json_extract_string(raw, '{_json_path(path)}') AS {_alias(alias)}" for alias, path in fields.items()
        )
        day = "TRY_CAST(json_extract_string(raw, '$.TxnDate') AS DATE)"
        return self.reader.read(
            entity_name, self.realm_id, where=f"{day} >= ?", params=[since],
            columns=f"id, {day} AS txn_date" + (f", {picked}" if picked else ""), order_by="txn_date, id",
            max_age=max_age,
        )  # fmt: skip

    def get_objects(self, entity_name: str, *, max_age: float | None = None) -> ReadResult:
        """Every live object of ``entity_name`` as rows of ``id, raw`` (the full QBO JSON)."""
        return self.reader.read(
            entity_name, self.realm_id, columns="id, CAST(raw AS VARCHAR) AS raw", order_by="id", max_age=max_age
        )

    def get_unapplied_payments(self, *, max_age: float | None = None) -> ReadResult:
        """Customer payments with money not yet applied to an invoice (a credit the customer holds)."""
        return self.reader.read(
            "Payment", self.realm_id, where="unapplied_amt > 0",
            columns="id, txn_date, total_amt, unapplied_amt, customer_id, customer_name", order_by="txn_date, id",
            max_age=max_age,
        )  # fmt: skip

    def connection_name(self) -> str:
        """The company name stored with the connection ('' when none was given or it cannot be read)."""
        try:
            return CompanyStore(self.reader.home).load(self.realm_id).name
        except (QBOError, OSError, ValueError):
            return ""
