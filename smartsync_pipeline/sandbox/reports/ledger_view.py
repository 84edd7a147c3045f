"""The ledger the sandbox's reports are computed from: a small interface and an adapter over the
sandbox's own documents.

Reports need three things from the books: the chart of accounts, every posting (double entry: each
transaction's postings sum to zero, debits positive, in cents) and the open payables / receivables
as of a date. ``Ledger`` is that interface; ``DocumentLedger`` derives it from the documents the
sandbox already stores (bills, invoices, payments, bill payments, purchases), and opening balances
that make the seeded account balances come out. When the sandbox's own double-entry ledger takes
over, only the adapter changes.
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol

import numpy as np

from smartsync_pipeline.sandbox import chart
from smartsync_pipeline.sandbox.company import HISTORY_DAYS
from smartsync_pipeline.sandbox.qbo_time import day_number
from smartsync_pipeline.sandbox.store import Company

# Account types by where they sit in the reports.
ASSET, LIABILITY, EQUITY, REVENUE, EXPENSE = "Asset", "Liability", "Equity", "Revenue", "Expense"
CASH_TYPES = ("Bank",)


@dataclass(frozen=True)
class LedgerAccount:
    id: str
    name: str
    account_type: str  # QBO AccountType: Bank, Accounts Payable, Income, …
    sub_type: str
    classification: str  # Asset, Liability, Equity, Revenue, Expense
    order: int  # chart order

    @property
    def sign(self) -> int:
        """+1 where debits increase the balance (assets, expenses), -1 otherwise."""
        return 1 if self.classification in (ASSET, EXPENSE) else -1

    @property
    def on_balance_sheet(self) -> bool:
        return self.classification in (ASSET, LIABILITY, EQUITY)


@dataclass(frozen=True)
class Posting:
    """One side of a transaction. ``amount`` is in cents, debit positive."""

    txn_type: str  # QBO entity: Bill, BillPayment, Invoice, Payment, Purchase, JournalEntry
    txn_label: str  # how reports name it: "Bill Payment (Check)", "Expense", …
    txn_id: str
    txn_date: date
    doc_number: str
    account_id: str
    amount: int
    party_id: str | None = None
    party_name: str = ""
    party_type: str = ""  # Vendor | Customer
    memo: str = ""


@dataclass(frozen=True)
class OpenItem:
    """A bill or invoice (or an unapplied payment, negative) still open on a date."""

    party_id: str
    party_name: str
    txn_type: str
    txn_id: str
    doc_number: str
    txn_date: date
    due_date: date
    open_amount: int  # cents


class Ledger(Protocol):
    """What the report engine reads."""

    def accounts(self) -> Sequence[LedgerAccount]: ...

    def postings(self, start: date | None, end: date) -> list[Posting]:
        """Postings dated ``start..end`` (inclusive; from the beginning when ``start`` is None),
        ordered by date, then transaction."""
        ...

    def open_items(self, side: str, as_of: date) -> list[OpenItem]:
        """Open ``payable`` (bills) or ``receivable`` (invoices) items as of the end of ``as_of``."""
        ...

    def today(self) -> date: ...


def cents(value: Any) -> int:
    """A JSON amount → exact cents."""
    if value is None:
        return 0
    return int((Decimal(str(value)) * 100).to_integral_value())


def _day(text: str) -> date:
    return date.fromisoformat(str(text)[:10])


def _ref(obj: dict[str, Any], field: str) -> tuple[str | None, str]:
    ref = obj.get(field) or {}
    value = ref.get("value")
    return (str(value) if value not in (None, "") else None), str(ref.get("name") or "")


_PURCHASE_LABELS = {"Cash": "Expense", "Check": "Check", "CreditCard": "Credit Card Expense"}


class _Postings:
    """Turns documents into balanced postings."""

    def __init__(self, company: Company, accounts: dict[str, LedgerAccount]) -> None:
        self.company = company
        self.accounts = accounts
        self._item_accounts: dict[str, tuple[str | None, str | None]] = {}
        ctx = company.seeded.ctx
        self.ap_id, self.ar_id = str(ctx.ap_id), str(ctx.ar_id)
        self.cogs_id = next((a.id for a in accounts.values() if a.account_type == "Cost of Goods Sold"), None)
        self.uncategorized = next((a.id for a in accounts.values() if a.account_type == "Expense"), None)

    def item_accounts(self, item_id: str | None) -> tuple[str | None, str | None]:
        """(income account, expense account) of an item."""
        if item_id is None:
            return None, None
        if item_id not in self._item_accounts:
            item = self.company.get("Item", item_id) or {}
            self._item_accounts[item_id] = (_ref(item, "IncomeAccountRef")[0], _ref(item, "ExpenseAccountRef")[0])
        return self._item_accounts[item_id]

    def expense_line_account(self, line: dict[str, Any]) -> str | None:
        detail = line.get("AccountBasedExpenseLineDetail")
        if isinstance(detail, dict):
            return _ref(detail, "AccountRef")[0]
        detail = line.get("ItemBasedExpenseLineDetail")
        if isinstance(detail, dict):
            return self.item_accounts(_ref(detail, "ItemRef")[0])[1] or self.cogs_id
        return None

    def of(self, entity: str, obj: dict[str, Any]) -> list[Posting]:
        build = getattr(self, f"_{entity.lower()}", None)
        if build is None:
            return []
        return build(obj)

    def _post(self, obj: dict[str, Any], entity: str, label: str, party: tuple[str | None, str], party_type: str,
              lines: list[tuple[str | None, int]]) -> list[Posting]:  # fmt: skip
        """Postings of one transaction; lines whose account is unknown go to a fallback so the
        transaction still balances."""
        day = _day(obj["TxnDate"])
        doc = str(obj.get("DocNumber") or obj.get("PaymentRefNum") or "")
        memo = str(obj.get("PrivateNote") or "")
        out = []
        for account, amount in lines:
            if amount == 0:
                continue
            if account is None or account not in self.accounts:
                account = self.uncategorized
            out.append(Posting(entity, label, str(obj["Id"]), day, doc, str(account), amount, party[0], party[1],
                               party_type, memo))  # fmt: skip
        assert sum(p.amount for p in out) == 0, f"{entity} {obj['Id']} does not balance"
        return out

    def _bill(self, obj: dict[str, Any]) -> list[Posting]:
        lines = [(self.expense_line_account(ln), cents(ln.get("Amount"))) for ln in obj.get("Line") or []]
        ap = _ref(obj, "APAccountRef")[0] or self.ap_id
        lines.append((ap, -sum(a for _, a in lines)))
        return self._post(obj, "Bill", "Bill", _ref(obj, "VendorRef"), "Vendor", lines)

    def _purchase(self, obj: dict[str, Any]) -> list[Posting]:
        lines = [(self.expense_line_account(ln), cents(ln.get("Amount"))) for ln in obj.get("Line") or []]
        lines.append((_ref(obj, "AccountRef")[0], -sum(a for _, a in lines)))
        label = _PURCHASE_LABELS.get(str(obj.get("PaymentType")), "Expense")
        return self._post(obj, "Purchase", label, _ref(obj, "EntityRef"), "Vendor", lines)

    def _invoice(self, obj: dict[str, Any]) -> list[Posting]:
        lines: list[tuple[str | None, int]] = []
        for ln in obj.get("Line") or []:
            if ln.get("DetailType") != "SalesItemLineDetail":
                continue
            item = _ref(ln.get("SalesItemLineDetail") or {}, "ItemRef")[0]
            lines.append((self.item_accounts(item)[0], -cents(ln.get("Amount"))))
        lines.append((self.ar_id, -sum(a for _, a in lines)))
        return self._post(obj, "Invoice", "Invoice", _ref(obj, "CustomerRef"), "Customer", lines)

    def _billpayment(self, obj: dict[str, Any]) -> list[Posting]:
        total = cents(obj.get("TotalAmt"))
        if obj.get("PayType") == "CreditCard":
            source, label = _ref(obj.get("CreditCardPayment") or {}, "CCAccountRef")[0], "Bill Payment (Credit Card)"
        else:
            source, label = _ref(obj.get("CheckPayment") or {}, "BankAccountRef")[0], "Bill Payment (Check)"
        lines = [(self.ap_id, total), (source, -total)]
        return self._post(obj, "BillPayment", label, _ref(obj, "VendorRef"), "Vendor", lines)

    def _payment(self, obj: dict[str, Any]) -> list[Posting]:
        total = cents(obj.get("TotalAmt"))
        lines = [(_ref(obj, "DepositToAccountRef")[0], total), (self.ar_id, -total)]
        return self._post(obj, "Payment", "Payment", _ref(obj, "CustomerRef"), "Customer", lines)

    def _sales_lines(self, obj: dict[str, Any], sign: int) -> list[tuple[str | None, int]]:
        """Item lines of a sales form to their items' income accounts (credit when ``sign`` is -1)."""
        lines: list[tuple[str | None, int]] = []
        for ln in obj.get("Line") or []:
            if ln.get("DetailType") != "SalesItemLineDetail":
                continue
            item = _ref(ln.get("SalesItemLineDetail") or {}, "ItemRef")[0]
            lines.append((self.item_accounts(item)[0], sign * cents(ln.get("Amount"))))
        return lines

    def _salesreceipt(self, obj: dict[str, Any]) -> list[Posting]:
        lines = self._sales_lines(obj, -1)
        lines.append((_ref(obj, "DepositToAccountRef")[0], -sum(a for _, a in lines)))
        return self._post(obj, "SalesReceipt", "Sales Receipt", _ref(obj, "CustomerRef"), "Customer", lines)

    def _refundreceipt(self, obj: dict[str, Any]) -> list[Posting]:
        lines = self._sales_lines(obj, 1)
        lines.append((_ref(obj, "DepositToAccountRef")[0], -sum(a for _, a in lines)))
        return self._post(obj, "RefundReceipt", "Refund", _ref(obj, "CustomerRef"), "Customer", lines)

    def _creditmemo(self, obj: dict[str, Any]) -> list[Posting]:
        lines = self._sales_lines(obj, 1)
        ar = _ref(obj, "ARAccountRef")[0] or self.ar_id
        lines.append((ar, -sum(a for _, a in lines)))
        return self._post(obj, "CreditMemo", "Credit Memo", _ref(obj, "CustomerRef"), "Customer", lines)

    def _vendorcredit(self, obj: dict[str, Any]) -> list[Posting]:
        lines = [(self.expense_line_account(ln), -cents(ln.get("Amount"))) for ln in obj.get("Line") or []]
        ap = _ref(obj, "APAccountRef")[0] or self.ap_id
        lines.append((ap, -sum(a for _, a in lines)))
        return self._post(obj, "VendorCredit", "Vendor Credit", _ref(obj, "VendorRef"), "Vendor", lines)

    def _deposit(self, obj: dict[str, Any]) -> list[Posting]:
        lines: list[tuple[str | None, int]] = []
        undeposited = str(self.company.seeded.undeposited_id)
        for ln in obj.get("Line") or []:
            detail = ln.get("DepositLineDetail") or {}
            source = _ref(detail, "AccountRef")[0] if isinstance(detail, dict) else None
            lines.append((source or undeposited, -cents(ln.get("Amount"))))
        lines.append((_ref(obj, "DepositToAccountRef")[0], -sum(a for _, a in lines)))
        return self._post(obj, "Deposit", "Deposit", (None, ""), "", lines)

    def _transfer(self, obj: dict[str, Any]) -> list[Posting]:
        amount = cents(obj.get("Amount"))
        lines = [(_ref(obj, "ToAccountRef")[0], amount), (_ref(obj, "FromAccountRef")[0], -amount)]
        return self._post(obj, "Transfer", "Transfer", (None, ""), "", lines)

    def _journalentry(self, obj: dict[str, Any]) -> list[Posting]:
        lines: list[tuple[str | None, int]] = []
        for ln in obj.get("Line") or []:
            detail = ln.get("JournalEntryLineDetail") or {}
            sign = 1 if detail.get("PostingType") == "Debit" else -1
            lines.append((_ref(detail, "AccountRef")[0], sign * cents(ln.get("Amount"))))
        return self._post(obj, "JournalEntry", "Journal Entry", (None, ""), "", lines)


# Documents that post to the ledger (Estimate, PurchaseOrder and TimeActivity post nothing).
TRANSACTION_ENTITIES = ("Bill", "BillPayment", "Invoice", "Payment", "Purchase", "SalesReceipt", "RefundReceipt",
                        "CreditMemo", "VendorCredit", "Deposit", "Transfer", "JournalEntry")  # fmt: skip
# Open credits: they count against what a party owes, as negative open items.
CREDIT_ENTITIES = {"payable": ("VendorCredit", "VendorRef"), "receivable": ("CreditMemo", "CustomerRef")}


def _snapshot(company: Company, entities: Sequence[str]) -> dict[str, Iterator[dict[str, Any]]]:
    """Every live object of ``entities`` as of one instant: the overlays and deletion masks are copied
    under one hold of the realm lock (writes replace objects whole), rendering happens after."""
    taken = {}
    with company.lock:
        for entity in entities:
            table = company.table(entity)
            taken[entity] = (table, [obj for _, obj in table.overlay_items()], table.masked.copy())

    def objects(table: Any, overlay: list[dict[str, Any]], masked: np.ndarray) -> Iterator[dict[str, Any]]:
        for row in np.flatnonzero(~masked):
            yield table.base.render(int(row))
        yield from overlay

    return {entity: objects(*parts) for entity, parts in taken.items()}


class DocumentLedger:
    """A ``Ledger`` derived from the sandbox company's documents at one moment."""

    def __init__(self, company: Company, openings: dict[str, int], start: date) -> None:
        self.company = company
        self._start = start
        live = _snapshot(company, ("Account", *TRANSACTION_ENTITIES))
        self._accounts = _accounts(live["Account"])
        builder = _Postings(company, {a.id: a for a in self._accounts})
        postings: list[Posting] = []
        self._documents: dict[str, list[dict[str, Any]]] = {}
        for entity in TRANSACTION_ENTITIES:
            docs = list(live[entity])
            self._documents[entity] = docs
            for obj in docs:
                postings.extend(builder.of(entity, obj))
        postings.extend(_opening_postings(openings, start))
        postings.sort(key=lambda p: (p.txn_date, p.txn_type, int(p.txn_id) if p.txn_id.isdigit() else 0))
        self._postings = postings
        self._dates = [p.txn_date for p in postings]

    def accounts(self) -> Sequence[LedgerAccount]:
        return self._accounts

    def postings(self, start: date | None, end: date) -> list[Posting]:
        import bisect

        lo = 0 if start is None else bisect.bisect_left(self._dates, start)
        hi = bisect.bisect_right(self._dates, end)
        return self._postings[lo:hi]

    def today(self) -> date:
        from smartsync_pipeline.sandbox.qbo_time import day_text

        return date.fromisoformat(day_text(day_number(self.company.clock.now())))

    @property
    def company_start(self) -> date:
        return self._start

    def documents(self, entity: str) -> list[dict[str, Any]]:
        return self._documents.get(entity, [])

    def open_items(self, side: str, as_of: date) -> list[OpenItem]:
        if side not in ("payable", "receivable"):
            raise ValueError(f"side must be payable or receivable, not {side!r}")
        doc_entity, pay_entity, party_field = (
            ("Bill", "BillPayment", "VendorRef") if side == "payable" else ("Invoice", "Payment", "CustomerRef")
        )
        applied: dict[str, int] = defaultdict(int)
        items: list[OpenItem] = []
        for pay in self.documents(pay_entity):
            if _day(pay["TxnDate"]) > as_of:
                continue
            used = 0
            for line in pay.get("Line") or []:
                amount = cents(line.get("Amount"))
                for txn in line.get("LinkedTxn") or []:
                    applied[str(txn.get("TxnId"))] += amount
                used += amount
            unapplied = cents(pay.get("TotalAmt")) - used
            if unapplied > 0:
                party = _ref(pay, party_field)
                day = _day(pay["TxnDate"])
                items.append(OpenItem(party[0] or "", party[1], pay_entity, str(pay["Id"]),
                                      str(pay.get("DocNumber") or ""), day, day, -unapplied))  # fmt: skip
        credit_entity, credit_party = CREDIT_ENTITIES[side]
        for credit in self.documents(credit_entity):
            day = _day(credit["TxnDate"])
            remaining = cents(credit.get("Balance"))
            if day > as_of or remaining == 0:
                continue
            party = _ref(credit, credit_party)
            items.append(OpenItem(party[0] or "", party[1], credit_entity, str(credit["Id"]),
                                  str(credit.get("DocNumber") or ""), day, day, -remaining))  # fmt: skip
        for doc in self.documents(doc_entity):
            day = _day(doc["TxnDate"])
            if day > as_of:
                continue
            open_amount = cents(doc.get("TotalAmt")) - applied.get(str(doc["Id"]), 0)
            if open_amount == 0:
                continue
            party = _ref(doc, party_field)
            due = _day(doc.get("DueDate") or doc["TxnDate"])
            items.append(OpenItem(party[0] or "", party[1], doc_entity, str(doc["Id"]),
                                  str(doc.get("DocNumber") or ""), day, due, open_amount))  # fmt: skip
        return items


def _accounts(objects: Iterator[dict[str, Any]]) -> list[LedgerAccount]:
    out = []
    for order, obj in enumerate(sorted(objects, key=lambda a: int(a["Id"]))):
        kind = str(obj.get("AccountType") or "")
        classification = str(obj.get("Classification") or chart.CLASSIFICATION.get(kind, ASSET))
        out.append(LedgerAccount(str(obj["Id"]), str(obj.get("Name") or ""), kind, str(obj.get("AccountSubType") or ""),
                                 classification, order))  # fmt: skip
    return out


def _opening_postings(openings: dict[str, int], start: date) -> list[Posting]:
    """One journal entry on the company's first day: each account's opening balance, Opening Balance
    Equity taking the other side."""
    return [Posting("JournalEntry", "Journal Entry", "0", start, "", account, amount, memo="Opening balance")
            for account, amount in openings.items() if amount]  # fmt: skip


def _seed_openings(company: Company) -> tuple[dict[str, int], date]:
    """Opening balances (debit-positive cents) such that the base documents end at the seeded
    ``CurrentBalance`` of every balance-sheet account; Opening Balance Equity takes the difference."""
    seeded = company.seeded
    base_accounts = seeded.tables["Account"]
    accounts = _accounts(base_accounts.render(row) for row in range(base_accounts.n))
    by_id = {a.id: a for a in accounts}
    builder = _Postings(company, by_id)
    flow: dict[str, int] = defaultdict(int)
    for entity in TRANSACTION_ENTITIES:
        base = seeded.tables[entity]
        for row in range(base.n):
            for posting in builder.of(entity, base.render(row)):
                flow[posting.account_id] += posting.amount
    balances = seeded.tables["Account"]
    openings: dict[str, int] = {}
    equity_plug = None
    for account in accounts:
        if not account.on_balance_sheet or not account.id.isdigit() or int(account.id) > balances.n:
            continue
        if account.sub_type == "OpeningBalanceEquity":
            equity_plug = account.id
            continue
        target = int(balances.balances[int(account.id) - 1]) * account.sign  # debit-positive
        openings[account.id] = target - flow.get(account.id, 0)
    if equity_plug is not None:
        openings[equity_plug] = -sum(openings.values())
    start_day = int(seeded.anchor // 86_400) - HISTORY_DAYS - 30
    return openings, date(1970, 1, 1) + timedelta(days=start_day)


class _Cache:
    """One ledger per company and version: rebuilt only after a write (the company's listeners tell)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: weakref.WeakKeyDictionary[Company, int] = weakref.WeakKeyDictionary()
        self._ledgers: weakref.WeakKeyDictionary[Company, tuple[int, Ledger]] = weakref.WeakKeyDictionary()
        self._openings: weakref.WeakKeyDictionary[Company, tuple[dict[str, int], date]] = weakref.WeakKeyDictionary()

    def _bump(self, company: Company, *_: Any) -> None:
        with self._lock:
            self._versions[company] = self._versions.get(company, 0) + 1

    def ledger(self, company: Company) -> Ledger:
        books = _books_module()
        with self._lock:
            if company not in self._versions:
                self._versions[company] = 0
                company.listeners.append(self._bump)
            version = self._versions[company]
            cached = self._ledgers.get(company)
            if cached is not None and cached[0] == version:
                return cached[1]
            openings = self._openings.get(company)
        ledger: Ledger
        if books is not None:
            ledger = BooksLedger(company, books)
        else:
            if openings is None:  # outside our lock: a writer holding the realm lock may be calling _bump
                openings = _seed_openings(company)
                with self._lock:
                    self._openings[company] = openings
            ledger = DocumentLedger(company, *openings)
        with self._lock:
            if self._versions.get(company) == version:
                self._ledgers[company] = (version, ledger)
        return ledger


TXN_LABELS = {
    "JournalEntry": "Journal Entry", "Bill": "Bill", "Invoice": "Invoice", "Payment": "Payment",
    "Deposit": "Deposit", "Transfer": "Transfer", "SalesReceipt": "Sales Receipt", "RefundReceipt": "Refund",
    "CreditMemo": "Credit Memo", "VendorCredit": "Vendor Credit",
}  # fmt: skip


def _label(txn_type: str, obj: dict[str, Any] | None) -> str:
    if txn_type == "BillPayment":
        return "Bill Payment (Credit Card)" if (obj or {}).get("PayType") == "CreditCard" else "Bill Payment (Check)"
    if txn_type == "Purchase":
        return _PURCHASE_LABELS.get(str((obj or {}).get("PaymentType")), "Expense")
    return TXN_LABELS.get(txn_type, txn_type)


class BooksLedger:
    """A ``Ledger`` over the sandbox's own double-entry ledger (``sandbox/ledger.py``): postings,
    accounts and open items come from there; document numbers, names and labels from the objects."""

    def __init__(self, company: Company, books: Any) -> None:
        from smartsync_pipeline.sandbox.qbo_time import day_text

        self.company = company
        self._accounts = [
            LedgerAccount(str(a.id), a.name, a.account_type, a.sub_type, a.classification, order)
            for order, a in enumerate(books.accounts(company))
        ]
        self._objects: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._names: dict[tuple[str, str], str] = {}
        postings = []
        for row in books.postings(company).rows():
            obj = self._object(row.txn_type, row.txn_id)
            party = row.entity_id if row.entity_type else None
            postings.append(Posting(
                row.txn_type, _label(row.txn_type, obj), row.txn_id, date.fromisoformat(row.date),
                str((obj or {}).get("DocNumber") or ""), row.account_id, int(row.amount_cents), party,
                self._name(row.entity_type, party), row.entity_type or "", str((obj or {}).get("PrivateNote") or ""),
            ))  # fmt: skip
        self._postings = postings
        self._dates = [p.txn_date for p in postings]
        self._books = books
        self._day_text = day_text

    def _object(self, txn_type: str, txn_id: str) -> dict[str, Any] | None:
        key = (txn_type, txn_id)
        if key not in self._objects:
            self._objects[key] = self.company.get(txn_type, txn_id) if txn_type in self.company.tables else None
        return self._objects[key]

    def _name(self, entity_type: str | None, entity_id: str | None) -> str:
        if not entity_type or not entity_id:
            return ""
        key = (entity_type, entity_id)
        if key not in self._names:
            obj = self.company.get(entity_type, entity_id) or {}
            self._names[key] = str(obj.get("DisplayName") or obj.get("Name") or "")
        return self._names[key]

    def accounts(self) -> Sequence[LedgerAccount]:
        return self._accounts

    def postings(self, start: date | None, end: date) -> list[Posting]:
        import bisect

        lo = 0 if start is None else bisect.bisect_left(self._dates, start)
        return self._postings[lo : bisect.bisect_right(self._dates, end)]

    def today(self) -> date:
        return date.fromisoformat(self._day_text(day_number(self.company.clock.now())))

    def open_items(self, side: str, as_of: date) -> list[OpenItem]:
        if side not in ("payable", "receivable"):
            raise ValueError(f"side must be payable or receivable, not {side!r}")
        party_type = "Vendor" if side == "payable" else "Customer"
        out = []
        for item in self._books.open_items(self.company, "AP" if side == "payable" else "AR", as_of):
            obj = self._object(item.txn_type, str(item.txn_id)) or {}
            party = str(item.party_id)
            out.append(OpenItem(
                party, self._name(party_type, party), item.txn_type, str(item.txn_id), str(obj.get("DocNumber") or ""),
                date.fromisoformat(self._day_text(item.txn_day)), date.fromisoformat(self._day_text(item.due_day)),
                int(item.open_cents),
            ))  # fmt: skip
        return out


def _books_module() -> Any | None:
    """The sandbox's own ledger module when this build has it (it replaces ``DocumentLedger``)."""
    try:
        from smartsync_pipeline.sandbox import ledger  # type: ignore[attr-defined]
    except ImportError:
        return None
    needed = ("accounts", "postings", "open_items")
    return ledger if all(hasattr(ledger, n) for n in needed) else None


_CACHE = _Cache()


def ledger_for(company: Company) -> Ledger:
    """The company's ledger as of now (cached until the next write): the sandbox's double-entry ledger
    when it exists, else the one derived here from the documents."""
    return _CACHE.ledger(company)
