"""The seeded company at rest: one compact table of numpy columns per entity.

A base object is never stored as a dict. ``render(i)`` builds the QBO JSON of row ``i`` when it is
served, and ``column(path)`` gives a whole field as one comparable array so filters run vectorised.
Details that do not need a column (line splits, notes, document numbers) are derived again from the
row hash (``row_hash``); the builder uses the vector form of the same formulas for the totals.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from smartsync_pipeline.sandbox import chart
from smartsync_pipeline.sandbox.field_values import comparable, read_path
from smartsync_pipeline.sandbox.qbo_time import day_text, iso
from smartsync_pipeline.sandbox.row_hash import mix, pick, pick_array

USD = {"value": "USD", "name": "United States Dollar"}
MAX_LINES = 3

# Salts of the per-row hash: one per derived detail.
S_LINE_COUNT, S_LINE_AMOUNT, S_LINE_ACCOUNT, S_LINE_ITEM, S_LINE_QTY = 1, 10, 20, 30, 40
S_DOC, S_NOTE, S_PHONE, S_STREET, S_DESC = 50, 51, 52, 53, 54


def money(cents: int) -> float:
    """Cents → a JSON amount with two decimals (int / 100 is the correctly rounded double, so its
    repr has at most two decimals)."""
    return int(cents) / 100


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", ".", text.lower()).strip(".")


@dataclass
class CompanyContext:
    """What every table needs to render references: names of accounts, terms, parties and items."""

    key: int
    realm_id: str
    account_names: list[str]
    account_types: list[str]
    term_names: list[str]
    term_days: list[int]
    vendor_names: Callable[[int], str]
    customer_names: Callable[[int], tuple[str, str, str]]  # display, given, family
    item_names: Callable[[int], str]
    expense_account_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    item_prices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ap_id: int = 0
    ar_id: int = 0

    def account_ref(self, account_id: int) -> dict[str, str]:
        return {"value": str(account_id), "name": self.account_names[account_id - 1]}

    def term_ref(self, term_index: int) -> dict[str, str]:
        return {"value": str(term_index + 1), "name": self.term_names[term_index]}

    def vendor_ref(self, vendor_index: int) -> dict[str, str]:
        return {"value": str(vendor_index + 1), "name": self.vendor_names(vendor_index)}

    def customer_ref(self, customer_index: int) -> dict[str, str]:
        return {"value": str(customer_index + 1), "name": self.customer_names(customer_index)[0]}

    def item_ref(self, item_index: int) -> dict[str, str]:
        return {"value": str(item_index + 1), "name": self.item_names(item_index)}


# --- line formulas: the scalar form renders, the vector form totals (they must agree) -------------


def expense_line_count(key: int, row: int) -> int:
    return 1 + pick(key, row, S_LINE_COUNT, MAX_LINES)


def expense_line(key: int, row: int, j: int, ctx: CompanyContext) -> tuple[int, int]:
    """(amount in cents, expense account id) of line ``j``."""
    amount = 2500 + pick(key, row, S_LINE_AMOUNT + j, 250_000)
    account = ctx.expense_account_ids.item(pick(key, row, S_LINE_ACCOUNT + j, len(ctx.expense_account_ids)))
    return amount, account


def expense_totals(key: int, n: int) -> np.ndarray:
    """Σ line amounts (cents) of rows ``0..n-1``: the vector form of ``expense_line``."""
    rows = np.arange(n, dtype=np.int64)
    count = 1 + pick_array(key, rows, S_LINE_COUNT, MAX_LINES)
    total = np.zeros(n, dtype=np.int64)
    for j in range(MAX_LINES):
        amount = 2500 + pick_array(key, rows, S_LINE_AMOUNT + j, 250_000)
        total += np.where(j < count, amount, 0)
    return total


def expense_line_objects(key: int, row: int, ctx: CompanyContext) -> list[dict[str, Any]]:
    """The rendered ``Line`` of a bill or purchase row."""
    lines = []
    for j in range(expense_line_count(key, row)):
        amount, account = expense_line(key, row, j, ctx)
        lines.append(
            {
                "Id": str(j + 1),
                "LineNum": j + 1,
                "Amount": money(amount),
                "DetailType": "AccountBasedExpenseLineDetail",
                "AccountBasedExpenseLineDetail": {
                    "AccountRef": ctx.account_ref(account),
                    "BillableStatus": "NotBillable",
                    "TaxCodeRef": {"value": "NON"},
                },
            }
        )
    return lines


def sales_line(key: int, row: int, j: int, ctx: CompanyContext) -> tuple[int, int, int]:
    """(item index, quantity, unit price in cents) of invoice line ``j``."""
    item = pick(key, row, S_LINE_ITEM + j, len(ctx.item_prices))
    qty = 1 + pick(key, row, S_LINE_QTY + j, 5)
    return item, qty, ctx.item_prices.item(item)


def sales_totals(key: int, n: int, item_prices: np.ndarray) -> np.ndarray:
    rows = np.arange(n, dtype=np.int64)
    count = 1 + pick_array(key, rows, S_LINE_COUNT, MAX_LINES)
    total = np.zeros(n, dtype=np.int64)
    for j in range(MAX_LINES):
        item = pick_array(key, rows, S_LINE_ITEM + j, len(item_prices))
        qty = 1 + pick_array(key, rows, S_LINE_QTY + j, 5)
        total += np.where(j < count, qty * item_prices[item], 0)
    return total


def sales_line_objects(key: int, row: int, ctx: CompanyContext, total: int) -> list[dict[str, Any]]:
    """The rendered ``Line`` of an invoice-like row (invoice, sales receipt, credit memo, ...): item
    lines and QBO's SubTotalLineDetail line carrying ``total``."""
    lines: list[dict[str, Any]] = []
    for j in range(expense_line_count(key, row)):
        item, qty, price = sales_line(key, row, j, ctx)
        lines.append(
            {
                "Id": str(j + 1),
                "LineNum": j + 1,
                "Description": ctx.item_names(item),
                "Amount": money(qty * price),
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": ctx.item_ref(item),
                    "UnitPrice": money(price),
                    "Qty": qty,
                    "TaxCodeRef": {"value": "NON"},
                },
            }
        )
    lines.append({"Amount": money(total), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    return lines


# --- tables ----------------------------------------------------------------------------------------


def table_key(company_key: int, entity: str) -> int:
    """The hash key of one entity's table in one company."""
    return mix(company_key, sum(map(ord, entity)), 7) & ((1 << 62) - 1)


class BaseTable:
    """Rows ``0..n-1`` of one entity, Id = row + 1, LastUpdatedTime non-decreasing in Id."""

    entity = ""

    def __init__(self, ctx: CompanyContext, lut: np.ndarray, created: np.ndarray, sync: np.ndarray) -> None:
        self.ctx = ctx
        self.key = table_key(ctx.key, self.entity)
        self.lut = lut.astype(np.int64)
        self.created = created.astype(np.int64)
        self.sync = sync.astype(np.int32)
        self._columns: dict[str, np.ndarray] = {}
        self._columns_lock = threading.Lock()

    @property
    def n(self) -> int:
        return len(self.lut)

    def header(self, i: int) -> dict[str, Any]:
        return {
            "domain": "QBO",
            "sparse": False,
            "Id": str(i + 1),
            "SyncToken": str(self.sync.item(i)),
            "MetaData": {"CreateTime": iso(self.created.item(i)), "LastUpdatedTime": iso(self.lut.item(i))},
        }

    def render(self, i: int) -> dict[str, Any]:
        raise NotImplementedError

    def fast_columns(self) -> dict[str, Callable[[], np.ndarray]]:
        """Paths this table can produce without rendering rows (comparable form)."""
        return {}

    def column(self, path: str, kind: str) -> np.ndarray:
        """The comparable values of ``path`` for all rows (cached: the base never changes)."""
        cache_key = f"{kind}:{path}"
        with self._columns_lock:
            cached = self._columns.get(cache_key)
        if cached is not None:
            return cached
        if path == "Id":
            values = np.arange(1, self.n + 1, dtype=np.float64)
        elif path == "MetaData.LastUpdatedTime":
            values = self.lut.astype(np.float64)
        elif path == "MetaData.CreateTime":
            values = self.created.astype(np.float64)
        elif (fast := self.fast_columns().get(path)) is not None:
            values = fast()
        else:
            values = self._rendered_column(path, kind)
        with self._columns_lock:
            self._columns[cache_key] = values
        return values

    def _rendered_column(self, path: str, kind: str) -> np.ndarray:
        raw = [comparable(kind, read_path(self.render(i), path)) for i in range(self.n)]
        if kind == "str":
            out = np.empty(self.n, dtype=object)
            out[:] = raw
            return out
        return np.asarray(raw, dtype=np.float64)


def _strings(values: list[str | None]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [v.casefold() if isinstance(v, str) else None for v in values]
    return out


def _money_column(cents: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: cents.astype(np.float64) / 100


def _const_str(n: int, value: str) -> Callable[[], np.ndarray]:
    return lambda: _strings([value] * n)


def _ids(values: np.ndarray, offset: int = 1) -> Callable[[], np.ndarray]:
    """A ref column: ids as strings (refs compare as the string of their value)."""
    return lambda: _strings([str(int(v) + offset) for v in values])


class AccountTable(BaseTable):
    entity = "Account"

    def __init__(self, ctx: CompanyContext, lut, created, sync, balances: np.ndarray) -> None:
        super().__init__(ctx, lut, created, sync)
        self.balances = balances.astype(np.int64)

    def render(self, i: int) -> dict[str, Any]:
        seed = chart.ACCOUNTS[i]
        balance = money(self.balances.item(i))
        return {
            "Name": seed.name,
            "SubAccount": False,
            "FullyQualifiedName": seed.name,
            "Active": True,
            "Classification": chart.CLASSIFICATION[seed.account_type],
            "AccountType": seed.account_type,
            "AccountSubType": seed.sub_type,
            "CurrentBalance": balance,
            "CurrentBalanceWithSubAccounts": balance,
            "CurrencyRef": dict(USD),
            **self.header(i),
        }

    def fast_columns(self):
        seeds = chart.ACCOUNTS[: self.n]
        return {
            "Name": lambda: _strings([s.name for s in seeds]),
            "FullyQualifiedName": lambda: _strings([s.name for s in seeds]),
            "AccountType": lambda: _strings([s.account_type for s in seeds]),
            "AccountSubType": lambda: _strings([s.sub_type for s in seeds]),
            "Classification": lambda: _strings([chart.CLASSIFICATION[s.account_type] for s in seeds]),
            "CurrentBalance": _money_column(self.balances),
            "Active": lambda: np.ones(self.n),
            "CurrencyRef.value": _const_str(self.n, "USD"),
        }


class TermTable(BaseTable):
    entity = "Term"

    def render(self, i: int) -> dict[str, Any]:
        return {
            "Name": self.ctx.term_names[i],
            "Active": True,
            "Type": "STANDARD",
            "DueDays": self.ctx.term_days[i],
            "DiscountPercent": 0,
            "DiscountDays": 0,
            **self.header(i),
        }

    def fast_columns(self):
        return {
            "Name": lambda: _strings(list(self.ctx.term_names[: self.n])),
            "DueDays": lambda: np.asarray(self.ctx.term_days[: self.n], dtype=np.float64),
            "Active": lambda: np.ones(self.n),
        }


class ItemTable(BaseTable):
    entity = "Item"

    def __init__(self, ctx, lut, created, sync, prices, is_service, income_ids, cogs_id, active) -> None:
        super().__init__(ctx, lut, created, sync)
        self.prices = prices.astype(np.int64)
        self.is_service = is_service.astype(bool)
        self.income_ids = income_ids.astype(np.int32)
        self.cogs_id = cogs_id
        self.active = active.astype(bool)

    def render(self, i: int) -> dict[str, Any]:
        name = self.ctx.item_names(i)
        obj: dict[str, Any] = {
            "Name": name,
            "Description": f"{name} ({'service' if self.is_service.item(i) else 'each'})",
            "Active": self.active.item(i),
            "FullyQualifiedName": name,
            "Taxable": False,
            "UnitPrice": money(self.prices.item(i)),
            "Type": "Service" if self.is_service.item(i) else "NonInventory",
            "IncomeAccountRef": self.ctx.account_ref(self.income_ids.item(i)),
            "PurchaseCost": 0,
            "TrackQtyOnHand": False,
        }
        if not self.is_service.item(i):
            obj["ExpenseAccountRef"] = self.ctx.account_ref(self.cogs_id)
        obj.update(self.header(i))
        return obj

    def fast_columns(self):
        return {
            "Name": lambda: _strings([self.ctx.item_names(i) for i in range(self.n)]),
            "Type": lambda: _strings(["Service" if s else "NonInventory" for s in self.is_service]),
            "UnitPrice": _money_column(self.prices),
            "Active": lambda: self.active.astype(np.float64),
            "IncomeAccountRef.value": _ids(self.income_ids, 0),
            "ExpenseAccountRef.value": lambda: _strings([None if s else str(self.cogs_id) for s in self.is_service]),
        }


def _address(key: int, row: int) -> dict[str, str]:
    city, state, postal = chart.CITIES[pick(key, row, S_STREET, len(chart.CITIES))]
    number = 100 + pick(key, row, S_STREET + 1, 9800)
    street = chart.STREETS[pick(key, row, S_STREET + 2, len(chart.STREETS))]
    return {
        "Id": str(row + 1000),
        "Line1": f"{number} {street}",
        "City": city,
        "CountrySubDivisionCode": state,
        "PostalCode": postal,
        "Country": "USA",
    }


def _phone(key: int, row: int) -> dict[str, str]:
    digits = mix(key, row, S_PHONE) % 10_000_000
    return {"FreeFormNumber": f"(415) {digits // 10000 % 1000:03d}-{digits % 10000:04d}"}


class VendorTable(BaseTable):
    entity = "Vendor"

    def __init__(self, ctx, lut, created, sync, active, terms, balances) -> None:
        super().__init__(ctx, lut, created, sync)
        self.active = active.astype(bool)
        self.terms = terms.astype(np.int32)
        self.balances = balances.astype(np.int64)

    def email(self, i: int) -> str:
        return f"billing@{_slug(self.ctx.vendor_names(i)) or 'vendor'}.example.com"

    def render(self, i: int) -> dict[str, Any]:
        name = self.ctx.vendor_names(i)
        return {
            "DisplayName": name,
            "CompanyName": name,
            "PrintOnCheckName": name,
            "Active": self.active.item(i),
            "Vendor1099": bool(mix(self.key, i, S_DESC) % 5 == 0),
            "Balance": money(self.balances.item(i)),
            "AcctNum": f"A{100000 + i}",
            "PrimaryEmailAddr": {"Address": self.email(i)},
            "PrimaryPhone": _phone(self.key, i),
            "BillAddr": _address(self.key, i),
            "TermRef": self.ctx.term_ref(self.terms.item(i)),
            "CurrencyRef": dict(USD),
            **self.header(i),
        }

    def fast_columns(self):
        return {
            "DisplayName": lambda: _strings([self.ctx.vendor_names(i) for i in range(self.n)]),
            "CompanyName": lambda: _strings([self.ctx.vendor_names(i) for i in range(self.n)]),
            "PrimaryEmailAddr.Address": lambda: _strings([self.email(i) for i in range(self.n)]),
            "Balance": _money_column(self.balances),
            "Active": lambda: self.active.astype(np.float64),
            "TermRef.value": _ids(self.terms),
            "CurrencyRef.value": _const_str(self.n, "USD"),
        }


class CustomerTable(BaseTable):
    entity = "Customer"

    def __init__(self, ctx, lut, created, sync, active, terms, balances, has_company) -> None:
        super().__init__(ctx, lut, created, sync)
        self.active = active.astype(bool)
        self.terms = terms.astype(np.int32)
        self.balances = balances.astype(np.int64)
        self.has_company = has_company.astype(bool)

    def company_name(self, i: int) -> str | None:
        if not self.has_company.item(i):
            return None
        return f"{self.ctx.customer_names(i)[2]} {chart.VENDOR_SECOND[i % len(chart.VENDOR_SECOND)]}"

    def email(self, i: int) -> str:
        return f"{_slug(self.ctx.customer_names(i)[0])}@customer.example.com"

    def render(self, i: int) -> dict[str, Any]:
        display, given, family = self.ctx.customer_names(i)
        balance = money(self.balances.item(i))
        obj: dict[str, Any] = {
            "Taxable": False,
            "BillAddr": _address(self.key, i),
            "Job": False,
            "BillWithParent": False,
            "Balance": balance,
            "BalanceWithJobs": balance,
            "CurrencyRef": dict(USD),
            "PreferredDeliveryMethod": "Email",
            "GivenName": given,
            "FamilyName": family,
            "FullyQualifiedName": display,
            "DisplayName": display,
            "PrintOnCheckName": display,
            "Active": self.active.item(i),
            "PrimaryPhone": _phone(self.key, i),
            "PrimaryEmailAddr": {"Address": self.email(i)},
            "SalesTermRef": self.ctx.term_ref(self.terms.item(i)),
        }
        company = self.company_name(i)
        if company:
            obj["CompanyName"] = company
        obj.update(self.header(i))
        return obj

    def fast_columns(self):
        return {
            "DisplayName": lambda: _strings([self.ctx.customer_names(i)[0] for i in range(self.n)]),
            "CompanyName": lambda: _strings([self.company_name(i) for i in range(self.n)]),
            "PrimaryEmailAddr.Address": lambda: _strings([self.email(i) for i in range(self.n)]),
            "Balance": _money_column(self.balances),
            "Active": lambda: self.active.astype(np.float64),
            "SalesTermRef.value": _ids(self.terms),
            "CurrencyRef.value": _const_str(self.n, "USD"),
        }


class _DocumentTable(BaseTable):
    """Bills and invoices: a party, terms, dates, total, open balance and up to two linked payments."""

    party_ref = ""  # the ref field of the party: VendorRef | CustomerRef
    payment_entity = ""  # what LinkedTxn points at: BillPayment | Payment

    def __init__(self, ctx, lut, created, sync, parties, terms, txn_days, due_days, totals, balances, pays):
        super().__init__(ctx, lut, created, sync)
        self.parties = parties.astype(np.int32)
        self.terms = terms.astype(np.int32)
        self.txn_days = txn_days.astype(np.int32)
        self.due_days = due_days.astype(np.int32)
        self.totals = totals.astype(np.int64)
        self.balances = balances.astype(np.int64)
        self.pays = pays.astype(np.int32)  # (n, 2) payment ids, 0 = none

    def linked(self, i: int) -> list[dict[str, str]]:
        return [{"TxnId": str(int(p)), "TxnType": self.payment_entity} for p in self.pays[i].tolist() if p]

    def fast_columns(self):
        return {
            "TxnDate": lambda: self.txn_days.astype(np.float64),
            "DueDate": lambda: self.due_days.astype(np.float64),
            "TotalAmt": _money_column(self.totals),
            "Balance": _money_column(self.balances),
            f"{self.party_ref}.value": _ids(self.parties),
            "SalesTermRef.value": _ids(self.terms),
            "CurrencyRef.value": _const_str(self.n, "USD"),
        }


class BillTable(_DocumentTable):
    entity = "Bill"
    party_ref = "VendorRef"
    payment_entity = "BillPayment"

    def doc_number(self, i: int) -> str:
        return f"{pick(self.key, i, S_DOC, 900_000) + 100_000}"

    def note(self, i: int) -> str | None:
        k = pick(self.key, i, S_NOTE, 4 * len(chart.BILL_NOTES))
        return chart.BILL_NOTES[k] if k < len(chart.BILL_NOTES) else None

    def render(self, i: int) -> dict[str, Any]:
        lines = expense_line_objects(self.key, i, self.ctx)
        obj: dict[str, Any] = {
            "DueDate": day_text(self.due_days.item(i)),
            "Balance": money(self.balances.item(i)),
            **self.header(i),
            "DocNumber": self.doc_number(i),
            "TxnDate": day_text(self.txn_days.item(i)),
            "CurrencyRef": dict(USD),
        }
        note = self.note(i)
        if note:
            obj["PrivateNote"] = note
        linked = self.linked(i)
        if linked:
            obj["LinkedTxn"] = linked
        obj["Line"] = lines
        obj["VendorRef"] = self.ctx.vendor_ref(self.parties.item(i))
        obj["APAccountRef"] = self.ctx.account_ref(self.ctx.ap_id)
        obj["SalesTermRef"] = self.ctx.term_ref(self.terms.item(i))
        obj["TotalAmt"] = money(self.totals.item(i))
        return obj

    def fast_columns(self):
        return {
            **super().fast_columns(),
            "DocNumber": lambda: _strings([self.doc_number(i) for i in range(self.n)]),
            "APAccountRef.value": _const_str(self.n, str(self.ctx.ap_id)),
            "PrivateNote": lambda: _strings([self.note(i) for i in range(self.n)]),
        }


class BillPaymentTable(BaseTable):
    entity = "BillPayment"

    def __init__(self, ctx, lut, created, sync, bills, vendors, amounts, by_card, accounts, txn_days):
        super().__init__(ctx, lut, created, sync)
        self.bills = bills.astype(np.int32)  # paid bill id
        self.vendors = vendors.astype(np.int32)
        self.amounts = amounts.astype(np.int64)
        self.by_card = by_card.astype(bool)
        self.accounts = accounts.astype(np.int32)
        self.txn_days = txn_days.astype(np.int32)

    def render(self, i: int) -> dict[str, Any]:
        amount = money(self.amounts.item(i))
        obj: dict[str, Any] = {"VendorRef": self.ctx.vendor_ref(self.vendors.item(i))}
        if self.by_card.item(i):
            obj["PayType"] = "CreditCard"
            obj["CreditCardPayment"] = {"CCAccountRef": self.ctx.account_ref(self.accounts.item(i))}
        else:
            obj["PayType"] = "Check"
            obj["CheckPayment"] = {
                "BankAccountRef": self.ctx.account_ref(self.accounts.item(i)),
                "PrintStatus": "NotSet",
            }
            obj["DocNumber"] = str(2000 + i)
        obj.update(
            {
                "TotalAmt": amount,
                **self.header(i),
                "TxnDate": day_text(self.txn_days.item(i)),
                "CurrencyRef": dict(USD),
                "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": str(self.bills.item(i)), "TxnType": "Bill"}]}],
            }
        )
        return obj

    def fast_columns(self):
        return {
            "DocNumber": lambda: _strings([None if c else str(2000 + i) for i, c in enumerate(self.by_card)]),
            "TxnDate": lambda: self.txn_days.astype(np.float64),
            "TotalAmt": _money_column(self.amounts),
            "PayType": lambda: _strings(["CreditCard" if c else "Check" for c in self.by_card]),
            "VendorRef.value": _ids(self.vendors),
            "CheckPayment.BankAccountRef.value": lambda: _strings(
                [None if c else str(int(a)) for c, a in zip(self.by_card, self.accounts, strict=True)]
            ),
            "CreditCardPayment.CCAccountRef.value": lambda: _strings(
                [str(int(a)) if c else None for c, a in zip(self.by_card, self.accounts, strict=True)]
            ),
            "CurrencyRef.value": _const_str(self.n, "USD"),
        }


class InvoiceTable(_DocumentTable):
    entity = "Invoice"
    party_ref = "CustomerRef"
    payment_entity = "Payment"

    def email_status(self, i: int) -> str:
        return "EmailSent" if pick(self.key, i, S_NOTE, 5) < 3 else "NotSet"

    def render(self, i: int) -> dict[str, Any]:
        lines = sales_line_objects(self.key, i, self.ctx, self.totals.item(i))
        customer = self.parties.item(i)
        obj: dict[str, Any] = {
            "AllowIPNPayment": False,
            "AllowOnlinePayment": False,
            "AllowOnlineCreditCardPayment": False,
            "AllowOnlineACHPayment": False,
            **self.header(i),
            "DocNumber": str(1000 + i),
            "TxnDate": day_text(self.txn_days.item(i)),
            "CurrencyRef": dict(USD),
        }
        linked = self.linked(i)
        if linked:
            obj["LinkedTxn"] = linked
        obj.update(
            {
                "Line": lines,
                "CustomerRef": self.ctx.customer_ref(customer),
                "CustomerMemo": {"value": chart.INVOICE_MEMOS[i % len(chart.INVOICE_MEMOS)]},
                "SalesTermRef": self.ctx.term_ref(self.terms.item(i)),
                "DueDate": day_text(self.due_days.item(i)),
                "TotalAmt": money(self.totals.item(i)),
                "ApplyTaxAfterDiscount": False,
                "PrintStatus": "NotSet",
                "EmailStatus": self.email_status(i),
                "BillEmail": {"Address": f"{_slug(self.ctx.customer_names(customer)[0])}@customer.example.com"},
                "Balance": money(self.balances.item(i)),
                "Deposit": 0,
            }
        )
        return obj

    def fast_columns(self):
        return {
            **super().fast_columns(),
            "DocNumber": lambda: _strings([str(1000 + i) for i in range(self.n)]),
            "EmailStatus": lambda: _strings([self.email_status(i) for i in range(self.n)]),
        }


class PaymentTable(BaseTable):
    """Customer payments, each applied to one invoice; ``unapplied`` (cents) is what a payment received
    beyond that line: QBO's ``UnappliedAmt``, a credit the customer has not used yet."""

    entity = "Payment"

    def __init__(self, ctx, lut, created, sync, invoices, customers, amounts, accounts, txn_days, unapplied=None):
        super().__init__(ctx, lut, created, sync)
        self.invoices = invoices.astype(np.int32)  # paid invoice id
        self.customers = customers.astype(np.int32)
        self.amounts = amounts.astype(np.int64)  # applied to the invoice
        self.accounts = accounts.astype(np.int32)
        self.txn_days = txn_days.astype(np.int32)
        self.unapplied = np.zeros(len(self.amounts), np.int64) if unapplied is None else unapplied.astype(np.int64)
        self.totals = self.amounts + self.unapplied

    def render(self, i: int) -> dict[str, Any]:
        amount = money(self.amounts.item(i))
        return {
            "CustomerRef": self.ctx.customer_ref(self.customers.item(i)),
            "DepositToAccountRef": self.ctx.account_ref(self.accounts.item(i)),
            "PaymentRefNum": str(7000 + i),
            "TotalAmt": money(self.totals.item(i)),
            "UnappliedAmt": money(self.unapplied.item(i)) if self.unapplied.item(i) else 0,
            "ProcessPayment": False,
            **self.header(i),
            "TxnDate": day_text(self.txn_days.item(i)),
            "CurrencyRef": dict(USD),
            "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": str(self.invoices.item(i)), "TxnType": "Invoice"}]}],
        }

    def fast_columns(self):
        return {
            "TxnDate": lambda: self.txn_days.astype(np.float64),
            "TotalAmt": _money_column(self.totals),
            "UnappliedAmt": _money_column(self.unapplied),
            "CustomerRef.value": _ids(self.customers),
            "DepositToAccountRef.value": _ids(self.accounts, 0),
            "CurrencyRef.value": _const_str(self.n, "USD"),
        }


PURCHASE_TYPES = ("Cash", "Check", "CreditCard")


class PurchaseTable(BaseTable):
    entity = "Purchase"

    def __init__(self, ctx, lut, created, sync, vendors, pay_types, accounts, totals, txn_days):
        super().__init__(ctx, lut, created, sync)
        self.vendors = vendors.astype(np.int32)
        self.pay_types = pay_types.astype(np.int32)
        self.accounts = accounts.astype(np.int32)
        self.totals = totals.astype(np.int64)
        self.txn_days = txn_days.astype(np.int32)

    def doc_number(self, i: int) -> str | None:
        return str(9000 + i) if self.pay_types.item(i) == 1 else None

    def render(self, i: int) -> dict[str, Any]:
        lines = expense_line_objects(self.key, i, self.ctx)
        vendor = self.ctx.vendor_ref(self.vendors.item(i))
        obj: dict[str, Any] = {
            "AccountRef": self.ctx.account_ref(self.accounts.item(i)),
            "PaymentType": PURCHASE_TYPES[self.pay_types.item(i)],
            "EntityRef": {**vendor, "type": "Vendor"},
            "Credit": False,
            "TotalAmt": money(self.totals.item(i)),
            **self.header(i),
            "TxnDate": day_text(self.txn_days.item(i)),
            "CurrencyRef": dict(USD),
            "Line": lines,
        }
        doc = self.doc_number(i)
        if doc:
            obj["DocNumber"] = doc
        return obj

    def fast_columns(self):
        return {
            "DocNumber": lambda: _strings([self.doc_number(i) for i in range(self.n)]),
            "TxnDate": lambda: self.txn_days.astype(np.float64),
            "TotalAmt": _money_column(self.totals),
            "PaymentType": lambda: _strings([PURCHASE_TYPES[int(t)] for t in self.pay_types]),
            "AccountRef.value": _ids(self.accounts, 0),
            "EntityRef.value": _ids(self.vendors),
            "CurrencyRef.value": _const_str(self.n, "USD"),
        }
