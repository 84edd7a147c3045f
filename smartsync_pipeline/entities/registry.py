"""The one registry of QBO entities.

Client (query validation), sandbox (which entities exist), mirror (tables and typed columns),
Dagster (one asset per entry) and the smart reader (freshness windows) all iterate over
``ENTITIES``. Adding an entity is one ``EntitySpec`` here plus its sandbox data rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

# DuckDB types used by typed mirror columns.
TEXT = "VARCHAR"
DATE = "DATE"
MONEY = "DECIMAL(18,2)"
BOOL = "BOOLEAN"
INT = "INTEGER"


@dataclass(frozen=True)
class Column:
    """A typed mirror column pulled out of the QBO JSON at a dotted ``path``."""

    name: str
    path: str
    type: str = TEXT


def ref(prefix: str, path: str) -> tuple[Column, Column]:
    """A QBO reference ``{"value": id, "name": display}`` split into ``<prefix>_id`` and ``<prefix>_name``."""
    return Column(f"{prefix}_id", f"{path}.value"), Column(f"{prefix}_name", f"{path}.name")


@dataclass(frozen=True)
class Freshness:
    """How old a mirror may get. ``fail`` is the reader's default ``max_age`` and Dagster's fail
    window; ``warn`` is when Dagster warns and the freshness enforcer starts a refresh, so data is
    refreshed before anyone would be refused it."""

    fail: timedelta
    warn: timedelta

    def __post_init__(self) -> None:
        if not (timedelta(minutes=1) <= self.warn < self.fail):
            raise ValueError("freshness needs 1 minute <= warn < fail")


@dataclass(frozen=True)
class EntitySpec:
    """Everything smartsync knows about one QBO entity type."""

    name: str  # QBO's name, as in queries and responses: "Bill"
    columns: tuple[Column, ...]
    freshness: Freshness
    name_list: bool = False  # list entity with Active: queries hide inactive rows unless asked
    cdc_reports_deletes: bool = True
    voidable: bool = False
    numeric_ids: bool = True  # QBO Ids are digit strings for every entity here
    extra_query_fields: tuple[str, ...] = ()
    description: str = ""

    @property
    def endpoint(self) -> str:
        """Path segment of the REST endpoint: ``/v3/company/{realm}/bill``."""
        return self.name.lower()

    @property
    def table(self) -> str:
        """Mirror table name in DuckDB."""
        return _snake(self.name)

    @property
    def query_fields(self) -> frozenset[str]:
        """Fields a query may filter or order on; anything else fails before a request is made."""
        tops = {c.path.split(".")[0] for c in self.columns}
        base = {"Id", "MetaData.CreateTime", "MetaData.LastUpdatedTime"}
        if self.name_list:
            base.add("Active")
        return frozenset(base | tops | set(self.extra_query_fields))


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _window(fail_minutes: int) -> Freshness:
    return Freshness(fail=timedelta(minutes=fail_minutes), warn=timedelta(minutes=fail_minutes // 2))


# Transactions move money every hour; the reports depend on them and on bank balances (Account).
# Name lists change rarely.
TRANSACTIONS = _window(30)
BALANCES = _window(30)
PARTIES = _window(120)
REFERENCE = _window(24 * 60)

_CURRENCY = ref("currency", "CurrencyRef")

ENTITIES: tuple[EntitySpec, ...] = (
    EntitySpec(
        "Account",
        (
            Column("name", "Name"),
            Column("fully_qualified_name", "FullyQualifiedName"),
            Column("account_type", "AccountType"),
            Column("account_sub_type", "AccountSubType"),
            Column("classification", "Classification"),
            Column("current_balance", "CurrentBalance", MONEY),
            Column("active", "Active", BOOL),
            *_CURRENCY,
        ),
        BALANCES,
        name_list=True,
        description="Chart of accounts; bank accounts hold cash.",
    ),
    EntitySpec(
        "Vendor",
        (
            Column("display_name", "DisplayName"),
            Column("company_name", "CompanyName"),
            Column("email", "PrimaryEmailAddr.Address"),
            Column("balance", "Balance", MONEY),
            Column("active", "Active", BOOL),
            *ref("term", "TermRef"),
            *_CURRENCY,
        ),
        PARTIES,
        name_list=True,
        description="Suppliers the company owes.",
    ),
    EntitySpec(
        "Customer",
        (
            Column("display_name", "DisplayName"),
            Column("company_name", "CompanyName"),
            Column("email", "PrimaryEmailAddr.Address"),
            Column("balance", "Balance", MONEY),
            Column("active", "Active", BOOL),
            *ref("sales_term", "SalesTermRef"),
            *_CURRENCY,
        ),
        PARTIES,
        name_list=True,
        description="Customers who owe the company.",
    ),
    EntitySpec(
        "Item",
        (
            Column("name", "Name"),
            Column("type", "Type"),
            Column("unit_price", "UnitPrice", MONEY),
            Column("active", "Active", BOOL),
            *ref("income_account", "IncomeAccountRef"),
            *ref("expense_account", "ExpenseAccountRef"),
        ),
        REFERENCE,
        name_list=True,
        description="Products and services sold or bought.",
    ),
    EntitySpec(
        "Term",
        (
            Column("name", "Name"),
            Column("due_days", "DueDays", INT),
            Column("active", "Active", BOOL),
        ),
        REFERENCE,
        name_list=True,
        description="Payment terms (Net 30, ...).",
    ),
    EntitySpec(
        "Bill",
        (
            Column("doc_number", "DocNumber"),
            Column("txn_date", "TxnDate", DATE),
            Column("due_date", "DueDate", DATE),
            Column("total_amt", "TotalAmt", MONEY),
            Column("balance", "Balance", MONEY),
            *ref("vendor", "VendorRef"),
            *ref("ap_account", "APAccountRef"),
            *ref("sales_term", "SalesTermRef"),
            *_CURRENCY,
            Column("private_note", "PrivateNote"),
        ),
        TRANSACTIONS,
        description="What the company owes vendors (accounts payable).",
    ),
    EntitySpec(
        "BillPayment",
        (
            Column("doc_number", "DocNumber"),
            Column("txn_date", "TxnDate", DATE),
            Column("total_amt", "TotalAmt", MONEY),
            Column("pay_type", "PayType"),
            *ref("vendor", "VendorRef"),
            *ref("bank_account", "CheckPayment.BankAccountRef"),
            *ref("cc_account", "CreditCardPayment.CCAccountRef"),
            *_CURRENCY,
        ),
        TRANSACTIONS,
        voidable=True,
        description="Payments of bills; Line[].LinkedTxn names the bills paid.",
    ),
    EntitySpec(
        "Invoice",
        (
            Column("doc_number", "DocNumber"),
            Column("txn_date", "TxnDate", DATE),
            Column("due_date", "DueDate", DATE),
            Column("total_amt", "TotalAmt", MONEY),
            Column("balance", "Balance", MONEY),
            *ref("customer", "CustomerRef"),
            *ref("sales_term", "SalesTermRef"),
            *_CURRENCY,
            Column("email_status", "EmailStatus"),
        ),
        TRANSACTIONS,
        voidable=True,
        description="What customers owe the company (accounts receivable).",
    ),
    EntitySpec(
        "Payment",
        (
            Column("txn_date", "TxnDate", DATE),
            Column("total_amt", "TotalAmt", MONEY),
            Column("unapplied_amt", "UnappliedAmt", MONEY),
            *ref("customer", "CustomerRef"),
            *ref("deposit_account", "DepositToAccountRef"),
            *_CURRENCY,
        ),
        TRANSACTIONS,
        voidable=True,
        description="Customer payments; Line[].LinkedTxn names the invoices paid.",
    ),
    EntitySpec(
        "Purchase",
        (
            Column("doc_number", "DocNumber"),
            Column("txn_date", "TxnDate", DATE),
            Column("total_amt", "TotalAmt", MONEY),
            Column("payment_type", "PaymentType"),
            *ref("account", "AccountRef"),
            *ref("payee", "EntityRef"),
            *_CURRENCY,
        ),
        TRANSACTIONS,
        description="Money spent directly (cash, check, card) without a bill.",
    ),
)

_BY_NAME = {e.name.lower(): e for e in ENTITIES}


class UnknownEntityError(ValueError):
    """Raised for an entity name that is not in the registry."""


def find_entity(name: str) -> EntitySpec | None:
    """The spec for a QBO name, endpoint or table name (case-insensitive), or None when unknown."""
    return _BY_NAME.get(name.replace("_", "").lower())


def entity(name: str) -> EntitySpec:
    """Look up an entity by QBO name, endpoint or table name, case-insensitively."""
    spec = find_entity(name)
    if spec is None:
        known = ", ".join(e.name for e in ENTITIES)
        raise UnknownEntityError(f"unknown QBO entity {name!r}; known entities: {known}")
    return spec


def entity_names() -> list[str]:
    return [e.name for e in ENTITIES]


def iter_entities(names: list[str] | None = None) -> Iterator[EntitySpec]:
    """The specs for ``names`` (all when empty), in registry order, validating every name."""
    if not names:
        yield from ENTITIES
        return
    wanted = {entity(n).name for n in names}
    yield from (e for e in ENTITIES if e.name in wanted)


__all__ = [
    "BOOL",
    "DATE",
    "ENTITIES",
    "INT",
    "MONEY",
    "TEXT",
    "Column",
    "EntitySpec",
    "Freshness",
    "UnknownEntityError",
    "entity",
    "entity_names",
    "find_entity",
    "iter_entities",
    "ref",
]
