"""The rest of the books at rest: small lists as stored bodies, transactions as numpy columns.

Name lists and singletons here are small (tens to hundreds of rows), so each row keeps its QBO body
and ``render`` only adds the header. Transactions (credit memos, deposits, transfers, journal entries,
...) can number tens of thousands on ``large``: they are numpy columns like bills and invoices, with
lines derived from the row hash by the same formulas whose vector form gave their totals. How each of
them posts to the ledger is in ``sandbox/reports/ledger_view.py``; how writes move balances is in
``write_rules.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from smartsync_pipeline.sandbox.base_tables import (
    USD,
    BaseTable,
    CompanyContext,
    _const_str,
    _ids,
    _money_column,
    expense_line_objects,
    money,
    sales_line_objects,
)
from smartsync_pipeline.sandbox.qbo_time import day_text
from smartsync_pipeline.sandbox.row_hash import pick

S_BOOK_DOC, S_BOOK_NOTE = 60, 61


class RecordTable(BaseTable):
    """A small list whose rows keep their QBO body (everything but the header)."""

    def __init__(self, entity: str, ctx: CompanyContext, lut, created, sync, bodies: list[dict[str, Any]]) -> None:
        self.entity = entity
        super().__init__(ctx, lut, created, sync)
        self.bodies = bodies

    def render(self, i: int) -> dict[str, Any]:
        return {**self.bodies[i], **self.header(i)}


class BookDocumentTable(BaseTable):
    """A transaction row: a party, two accounts, a total and open balance, a date and a second date.

    What ``party``, ``account``, ``other_account`` and ``due_days`` mean is up to the entity (see each
    subclass); unused ones are zeros."""

    party_ref = ""  # VendorRef | CustomerRef | EmployeeRef | ""
    doc_base = 0  # DocNumber = doc_base + row

    def __init__(self, ctx, lut, created, sync, parties, accounts, other_accounts, totals, balances, txn_days,
                 due_days) -> None:  # fmt: skip
        super().__init__(ctx, lut, created, sync)
        self.parties = np.asarray(parties).astype(np.int32)
        self.accounts = np.asarray(accounts).astype(np.int32)
        self.other_accounts = np.asarray(other_accounts).astype(np.int32)
        self.totals = np.asarray(totals).astype(np.int64)
        self.balances = np.asarray(balances).astype(np.int64)
        self.txn_days = np.asarray(txn_days).astype(np.int32)
        self.due_days = np.asarray(due_days).astype(np.int32)

    def doc_number(self, i: int) -> str:
        return str(self.doc_base + i)

    def party(self, i: int) -> dict[str, str]:
        index = self.parties.item(i)
        if self.party_ref == "VendorRef":
            return self.ctx.vendor_ref(index)
        return self.ctx.customer_ref(index)

    def common(self, i: int) -> dict[str, Any]:
        return {**self.header(i), "TxnDate": day_text(self.txn_days.item(i)), "CurrencyRef": dict(USD)}

    def fast_columns(self):
        out = {
            "TxnDate": lambda: self.txn_days.astype(np.float64),
            "TotalAmt": _money_column(self.totals),
            "CurrencyRef.value": _const_str(self.n, "USD"),
        }
        if self.party_ref:
            out[f"{self.party_ref}.value"] = _ids(self.parties)
        return out


class CreditMemoTable(BookDocumentTable):
    """Credits to customers (item lines, like an invoice); ``balances`` is the credit not yet applied."""

    entity = "CreditMemo"
    party_ref = "CustomerRef"
    doc_base = 5000

    def render(self, i: int) -> dict[str, Any]:
        total = self.totals.item(i)
        return {
            **self.common(i),
            "DocNumber": self.doc_number(i),
            "Line": sales_line_objects(self.key, i, self.ctx, total),
            "CustomerRef": self.party(i),
            "ARAccountRef": self.ctx.account_ref(self.ctx.ar_id),
            "TotalAmt": money(total),
            "Balance": money(self.balances.item(i)),
            "RemainingCredit": money(self.balances.item(i)),
            "PrintStatus": "NotSet",
            "EmailStatus": "NotSet",
        }

    def fast_columns(self):
        return {**super().fast_columns(), "Balance": _money_column(self.balances)}


class VendorCreditTable(BookDocumentTable):
    """Credits from vendors (expense lines, like a bill); ``balances`` is the credit not yet applied."""

    entity = "VendorCredit"
    party_ref = "VendorRef"
    doc_base = 60_000

    def render(self, i: int) -> dict[str, Any]:
        return {
            **self.common(i),
            "DocNumber": self.doc_number(i),
            "Line": expense_line_objects(self.key, i, self.ctx),
            "VendorRef": self.party(i),
            "APAccountRef": self.ctx.account_ref(self.ctx.ap_id),
            "TotalAmt": money(self.totals.item(i)),
            "Balance": money(self.balances.item(i)),
        }

    def fast_columns(self):
        return {**super().fast_columns(), "Balance": _money_column(self.balances)}


class SalesReceiptTable(BookDocumentTable):
    """Sales paid at once into ``accounts`` (a bank account)."""

    entity = "SalesReceipt"
    party_ref = "CustomerRef"
    doc_base = 3000

    def render(self, i: int) -> dict[str, Any]:
        total = self.totals.item(i)
        return {
            **self.common(i),
            "DocNumber": self.doc_number(i),
            "Line": sales_line_objects(self.key, i, self.ctx, total),
            "CustomerRef": self.party(i),
            "DepositToAccountRef": self.ctx.account_ref(self.accounts.item(i)),
            "PaymentMethodRef": {"value": str(self.other_accounts.item(i))},
            "TotalAmt": money(total),
            "Balance": 0,
            "PrintStatus": "NotSet",
            "EmailStatus": "NotSet",
        }

    def fast_columns(self):
        return {**super().fast_columns(), "DepositToAccountRef.value": _ids(self.accounts, 0)}


class RefundReceiptTable(SalesReceiptTable):
    """Refunds paid out of ``accounts`` (a bank account)."""

    entity = "RefundReceipt"
    doc_base = 8000


class DepositTable(BookDocumentTable):
    """Money into ``accounts`` (a bank account) from ``other_accounts`` (other income)."""

    entity = "Deposit"

    def render(self, i: int) -> dict[str, Any]:
        total = self.totals.item(i)
        return {
            **self.common(i),
            "DepositToAccountRef": self.ctx.account_ref(self.accounts.item(i)),
            "TotalAmt": money(total),
            "Line": [
                {
                    "Id": "1",
                    "LineNum": 1,
                    "Amount": money(total),
                    "DetailType": "DepositLineDetail",
                    "DepositLineDetail": {"AccountRef": self.ctx.account_ref(self.other_accounts.item(i))},
                }
            ],
        }

    def fast_columns(self):
        return {**super().fast_columns(), "DepositToAccountRef.value": _ids(self.accounts, 0)}


class TransferTable(BookDocumentTable):
    """``Amount`` from ``accounts`` to ``other_accounts``."""

    entity = "Transfer"

    def render(self, i: int) -> dict[str, Any]:
        return {
            **self.common(i),
            "FromAccountRef": self.ctx.account_ref(self.accounts.item(i)),
            "ToAccountRef": self.ctx.account_ref(self.other_accounts.item(i)),
            "Amount": money(self.totals.item(i)),
        }

    def fast_columns(self):
        return {
            "TxnDate": lambda: self.txn_days.astype(np.float64),
            "Amount": _money_column(self.totals),
            "FromAccountRef.value": _ids(self.accounts, 0),
            "ToAccountRef.value": _ids(self.other_accounts, 0),
            "CurrencyRef.value": _const_str(self.n, "USD"),
        }


JOURNAL_MEMOS = ("Monthly depreciation", "Accrued interest", "Prepaid insurance amortisation")


class JournalEntryTable(BookDocumentTable):
    """A debit to ``accounts`` and a credit to ``other_accounts`` of the same amount."""

    entity = "JournalEntry"
    doc_base = 100

    def render(self, i: int) -> dict[str, Any]:
        amount = money(self.totals.item(i))
        memo = JOURNAL_MEMOS[pick(self.key, i, S_BOOK_NOTE, len(JOURNAL_MEMOS))]

        def line(number: int, posting: str, account: int) -> dict[str, Any]:
            return {
                "Id": str(number - 1),
                "LineNum": number,
                "Description": memo,
                "Amount": amount,
                "DetailType": "JournalEntryLineDetail",
                "JournalEntryLineDetail": {"PostingType": posting, "AccountRef": self.ctx.account_ref(account)},
            }

        return {
            **self.common(i),
            "DocNumber": f"JE{self.doc_number(i)}",
            "Adjustment": False,
            "PrivateNote": memo,
            "TotalAmt": amount,
            "Line": [line(1, "Debit", self.accounts.item(i)), line(2, "Credit", self.other_accounts.item(i))],
        }


class EstimateTable(BookDocumentTable):
    """Quotes: item lines, an expiration date (``due_days``), a status; no posting."""

    entity = "Estimate"
    party_ref = "CustomerRef"
    doc_base = 1500
    statuses = ("Pending", "Accepted", "Closed", "Rejected")

    def render(self, i: int) -> dict[str, Any]:
        total = self.totals.item(i)
        return {
            **self.common(i),
            "DocNumber": self.doc_number(i),
            "ExpirationDate": day_text(self.due_days.item(i)),
            "TxnStatus": self.statuses[self.accounts.item(i) % len(self.statuses)],
            "Line": sales_line_objects(self.key, i, self.ctx, total),
            "CustomerRef": self.party(i),
            "TotalAmt": money(total),
            "PrintStatus": "NotSet",
            "EmailStatus": "NotSet",
        }


class PurchaseOrderTable(BookDocumentTable):
    """Orders to vendors: expense lines, a due date, Open or Closed; no posting."""

    entity = "PurchaseOrder"
    party_ref = "VendorRef"
    doc_base = 4000

    def render(self, i: int) -> dict[str, Any]:
        return {
            **self.common(i),
            "DocNumber": self.doc_number(i),
            "DueDate": day_text(self.due_days.item(i)),
            "POStatus": "Closed" if self.accounts.item(i) else "Open",
            "Line": expense_line_objects(self.key, i, self.ctx),
            "VendorRef": self.party(i),
            "APAccountRef": self.ctx.account_ref(self.ctx.ap_id),
            "TotalAmt": money(self.totals.item(i)),
        }


class TimeActivityTable(BookDocumentTable):
    """Hours of employee ``parties`` for customer ``accounts`` (index) on item ``other_accounts``;
    ``totals`` holds minutes worked, ``balances`` the hourly rate in cents."""

    entity = "TimeActivity"

    def __init__(self, *args: Any, employee_names: list[str]) -> None:
        super().__init__(*args)
        self.employee_names = employee_names

    def render(self, i: int) -> dict[str, Any]:
        minutes = self.totals.item(i)
        employee = self.parties.item(i)
        item = self.other_accounts.item(i)
        return {
            **self.header(i),
            "TxnDate": day_text(self.txn_days.item(i)),
            "NameOf": "Employee",
            "EmployeeRef": {"value": str(employee + 1), "name": self.employee_names[employee]},
            "CustomerRef": self.ctx.customer_ref(self.accounts.item(i)),
            "ItemRef": self.ctx.item_ref(item),
            "BillableStatus": "Billable" if self.balances.item(i) else "NotBillable",
            "Taxable": False,
            "HourlyRate": money(self.balances.item(i)),
            "Hours": minutes // 60,
            "Minutes": minutes % 60,
            "Description": self.ctx.item_names(item),
        }

    def fast_columns(self):
        return {"TxnDate": lambda: self.txn_days.astype(np.float64), "EmployeeRef.value": _ids(self.parties)}
