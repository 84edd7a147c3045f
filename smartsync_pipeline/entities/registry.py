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


# How smartsync learns about an entity's changes (see ARCHITECTURE.md, "Sync strategies").
CDC = "cdc"  # QBO's change data capture reports its creates, updates and deletes
QUERY_ONLY = "query_only"  # CDC does not cover it: list it when due, deletes by id diff
SINGLETON = "singleton"  # one object per company (Id 1), read when due, never deleted
STRATEGIES = (CDC, QUERY_ONLY, SINGLETON)


@dataclass(frozen=True)
class EntitySpec:
    """Everything smartsync knows about one QBO entity type."""

    name: str  # QBO's name, as in queries and responses: "Bill"
    columns: tuple[Column, ...]
    freshness: Freshness
    name_list: bool = False  # list entity with Active: queries hide inactive rows unless asked
    strategy: str = CDC
    voidable: bool = False
    numeric_ids: bool = True  # QBO Ids are digit strings for every entity here
    extra_query_fields: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"{self.name}: strategy must be one of {', '.join(STRATEGIES)}")

    @property
    def in_cdc(self) -> bool:
        """Whether QBO's CDC reports this entity (the others are listed when due)."""
        return self.strategy == CDC

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
    # --- the rest of the books ---------------------------------------------------------------------
    EntitySpec(
        "CreditMemo",
        (
            Column("doc_number", "DocNumber"),
            Column("txn_date", "TxnDate", DATE),
            Column("total_amt", "TotalAmt", MONEY),
            Column("balance", "Balance", MONEY),
            *ref("customer", "CustomerRef"),
            *ref("ar_account", "ARAccountRef"),
            *_CURRENCY,
            Column("private_note", "PrivateNote"),
        ),
        TRANSACTIONS,
        description="Credits owed to customers; Balance is the credit not yet applied (reduces A/R).",
    ),
    EntitySpec(
        "VendorCredit",
        (
            Column("doc_number", "DocNumber"),
            Column("txn_date", "TxnDate", DATE),
            Column("total_amt", "TotalAmt", MONEY),
            Column("balance", "Balance", MONEY),
            *ref("vendor", "VendorRef"),
            *ref("ap_account", "APAccountRef"),
            *_CURRENCY,
            Column("private_note", "PrivateNote"),
        ),
        TRANSACTIONS,
        description="Credits vendors owe the company; Balance is the credit not yet applied (reduces A/P).",
    ),
    EntitySpec(
        "SalesReceipt",
        (
            Column("doc_number", "DocNumber"),
            Column("txn_date", "TxnDate", DATE),
            Column("total_amt", "TotalAmt", MONEY),
            *ref("customer", "CustomerRef"),
            *ref("deposit_account", "DepositToAccountRef"),
            *ref("payment_method", "PaymentMethodRef"),
            *_CURRENCY,
        ),
        TRANSACTIONS,
        voidable=True,
        description="Sales paid on the spot: money straight into an account, no receivable.",
    ),
    EntitySpec(
        "RefundReceipt",
        (
            Column("doc_number", "DocNumber"),
            Column("txn_date", "TxnDate", DATE),
            Column("total_amt", "TotalAmt", MONEY),
            *ref("customer", "CustomerRef"),
            *ref("deposit_account", "DepositToAccountRef"),
            *ref("payment_method", "PaymentMethodRef"),
            *_CURRENCY,
        ),
        TRANSACTIONS,
        description="Refunds paid to customers out of DepositToAccountRef.",
    ),
    EntitySpec(
        "Deposit",
        (
            Column("txn_date", "TxnDate", DATE),
            Column("total_amt", "TotalAmt", MONEY),
            *ref("deposit_account", "DepositToAccountRef"),
            *_CURRENCY,
            Column("private_note", "PrivateNote"),
        ),
        TRANSACTIONS,
        description="Money deposited into a bank account; lines name where it came from.",
    ),
    EntitySpec(
        "Transfer",
        (
            Column("txn_date", "TxnDate", DATE),
            Column("amount", "Amount", MONEY),
            *ref("from_account", "FromAccountRef"),
            *ref("to_account", "ToAccountRef"),
            *_CURRENCY,
            Column("private_note", "PrivateNote"),
        ),
        TRANSACTIONS,
        description="Money moved between two balance-sheet accounts.",
    ),
    EntitySpec(
        "JournalEntry",
        (
            Column("doc_number", "DocNumber"),
            Column("txn_date", "TxnDate", DATE),
            Column("total_amt", "TotalAmt", MONEY),
            Column("adjustment", "Adjustment", BOOL),
            *_CURRENCY,
            Column("private_note", "PrivateNote"),
        ),
        TRANSACTIONS,
        description="Debits and credits posted directly (depreciation, accruals); debits equal credits.",
    ),
    EntitySpec(
        "Estimate",
        (
            Column("doc_number", "DocNumber"),
            Column("txn_date", "TxnDate", DATE),
            Column("expiration_date", "ExpirationDate", DATE),
            Column("total_amt", "TotalAmt", MONEY),
            Column("txn_status", "TxnStatus"),
            *ref("customer", "CustomerRef"),
            *_CURRENCY,
        ),
        TRANSACTIONS,
        description="Quotes to customers; they post nothing until invoiced.",
    ),
    EntitySpec(
        "PurchaseOrder",
        (
            Column("doc_number", "DocNumber"),
            Column("txn_date", "TxnDate", DATE),
            Column("due_date", "DueDate", DATE),
            Column("total_amt", "TotalAmt", MONEY),
            Column("po_status", "POStatus"),
            *ref("vendor", "VendorRef"),
            *ref("ap_account", "APAccountRef"),
            *_CURRENCY,
        ),
        TRANSACTIONS,
        description="Orders placed with vendors; they post nothing until billed.",
    ),
    EntitySpec(
        "TimeActivity",
        (
            Column("txn_date", "TxnDate", DATE),
            Column("name_of", "NameOf"),
            *ref("employee", "EmployeeRef"),
            *ref("customer", "CustomerRef"),
            *ref("item", "ItemRef"),
            Column("hours", "Hours", INT),
            Column("minutes", "Minutes", INT),
            Column("hourly_rate", "HourlyRate", MONEY),
            Column("billable_status", "BillableStatus"),
            Column("description", "Description"),
        ),
        TRANSACTIONS,
        strategy=QUERY_ONLY,
        description="Hours worked; QBO's CDC does not report them, so they are listed and diffed by id.",
    ),
    EntitySpec(
        "Employee",
        (
            Column("display_name", "DisplayName"),
            Column("given_name", "GivenName"),
            Column("family_name", "FamilyName"),
            Column("email", "PrimaryEmailAddr.Address"),
            Column("hired_date", "HiredDate", DATE),
            Column("active", "Active", BOOL),
        ),
        PARTIES,
        name_list=True,
        description="People on the payroll; TimeActivity names them.",
    ),
    EntitySpec(
        "Class",
        (
            Column("name", "Name"),
            Column("fully_qualified_name", "FullyQualifiedName"),
            Column("active", "Active", BOOL),
        ),
        REFERENCE,
        name_list=True,
        description="Classes that tag lines for reporting (ClassRef).",
    ),
    EntitySpec(
        "Department",
        (
            Column("name", "Name"),
            Column("fully_qualified_name", "FullyQualifiedName"),
            Column("active", "Active", BOOL),
        ),
        REFERENCE,
        name_list=True,
        description="Locations / departments that tag transactions (DepartmentRef).",
    ),
    EntitySpec(
        "CustomerType",
        (Column("name", "Name"), Column("active", "Active", BOOL)),
        REFERENCE,
        name_list=True,
        description="Customer segments.",
    ),
    EntitySpec(
        "PaymentMethod",
        (Column("name", "Name"), Column("type", "Type"), Column("active", "Active", BOOL)),
        REFERENCE,
        name_list=True,
        description="How money is paid: cash, check, card (PaymentMethodRef).",
    ),
    EntitySpec(
        "TaxAgency",
        (
            Column("display_name", "DisplayName"),
            Column("tax_tracked_on_sales", "TaxTrackedOnSales", BOOL),
            Column("tax_tracked_on_purchases", "TaxTrackedOnPurchases", BOOL),
        ),
        REFERENCE,
        strategy=QUERY_ONLY,
        description="Tax authorities; not in QBO's CDC.",
    ),
    EntitySpec(
        "TaxCode",
        (
            Column("name", "Name"),
            Column("description", "Description"),
            Column("taxable", "Taxable", BOOL),
            Column("tax_group", "TaxGroup", BOOL),
            Column("active", "Active", BOOL),
        ),
        REFERENCE,
        name_list=True,
        strategy=QUERY_ONLY,
        description="Sales tax codes; not in QBO's CDC.",
    ),
    EntitySpec(
        "TaxRate",
        (
            Column("name", "Name"),
            Column("rate_value", "RateValue", MONEY),
            *ref("agency", "AgencyRef"),
            Column("active", "Active", BOOL),
        ),
        REFERENCE,
        name_list=True,
        strategy=QUERY_ONLY,
        description="Sales tax rates (percent); not in QBO's CDC.",
    ),
    EntitySpec(
        "Budget",
        (
            Column("name", "Name"),
            Column("start_date", "StartDate", DATE),
            Column("end_date", "EndDate", DATE),
            Column("budget_type", "BudgetType"),
            Column("budget_entry_type", "BudgetEntryType"),
            Column("active", "Active", BOOL),
        ),
        REFERENCE,
        name_list=True,
        description="Budgets per account and month (BudgetDetail).",
    ),
    EntitySpec(
        "CompanyCurrency",
        (Column("code", "Code"), Column("name", "Name"), Column("active", "Active", BOOL)),
        REFERENCE,
        name_list=True,
        description="Currencies the company uses besides its home currency.",
    ),
    EntitySpec(
        "Attachable",
        (
            Column("file_name", "FileName"),
            Column("content_type", "ContentType"),
            Column("size", "Size", INT),
            Column("note", "Note"),
        ),
        REFERENCE,
        description="Files and notes attached to transactions (AttachableRef names them).",
    ),
    EntitySpec(
        "CompanyInfo",
        (
            Column("company_name", "CompanyName"),
            Column("legal_name", "LegalName"),
            Column("country", "Country"),
            Column("fiscal_year_start_month", "FiscalYearStartMonth"),
            Column("email", "Email.Address"),
        ),
        REFERENCE,
        strategy=SINGLETON,
        description="The company itself: its name is what the digest shows.",
    ),
    EntitySpec(
        "Preferences",
        (
            Column("home_currency", "CurrencyPrefs.HomeCurrency.value"),
            Column("multi_currency_enabled", "CurrencyPrefs.MultiCurrencyEnabled", BOOL),
            Column("report_basis", "ReportPrefs.ReportBasis"),
        ),
        REFERENCE,
        strategy=SINGLETON,
        description="Company settings (currency, accounting basis).",
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
    "CDC",
    "DATE",
    "ENTITIES",
    "INT",
    "MONEY",
    "QUERY_ONLY",
    "SINGLETON",
    "STRATEGIES",
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
