"""Seeding the rest of the books: lists, singletons and the transactions beyond bills and invoices.

Called by ``company.build_company`` with its own random stream (the base entities' data stays what it
was), it returns the tables plus the money they move, so the builder can keep every balance
consistent: banks (sales receipts, refunds, deposits, transfers), customers and A/R (credit memos),
vendors and A/P (vendor credits). ``unapplied_payments`` leaves some customer payments partly
unapplied (banks, customers and A/R again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from smartsync_pipeline.sandbox import chart
from smartsync_pipeline.sandbox.base_tables import (
    USD,
    BaseTable,
    CompanyContext,
    expense_totals,
    sales_totals,
    table_key,
)
from smartsync_pipeline.sandbox.book_tables import (
    CreditMemoTable,
    DepositTable,
    EstimateTable,
    JournalEntryTable,
    PurchaseOrderTable,
    RecordTable,
    RefundReceiptTable,
    SalesReceiptTable,
    TimeActivityTable,
    TransferTable,
    VendorCreditTable,
)
from smartsync_pipeline.sandbox.qbo_time import day_text

CLASSES = ("Retail", "Wholesale", "Services", "Projects")
DEPARTMENTS = ("Headquarters", "East Region", "West Region")
CUSTOMER_TYPES = ("Commercial", "Residential", "Government")
PAYMENT_METHODS = (
    ("Cash", "NON_CREDIT_CARD"),
    ("Check", "NON_CREDIT_CARD"),
    ("Visa", "CREDIT_CARD"),
    ("MasterCard", "CREDIT_CARD"),
    ("American Express", "CREDIT_CARD"),
    ("ACH", "NON_CREDIT_CARD"),
)
TAX_AGENCIES = ("California Department of Tax and Fee Administration", "San Francisco Tax Collector")
TAX_RATES = (("California State", 7.25, 1), ("San Francisco County", 1.25, 2), ("Out of State", 0.0, 1))
TAX_CODES = (("California", "CA state and county", True), ("Out of State", "No sales tax", False))
CURRENCIES = (("CAD", "Canadian Dollar"), ("EUR", "Euro"), ("GBP", "British Pound Sterling"))


@dataclass
class BookSeed:
    """The tables and the money they move (cents, indexed like the base arrays)."""

    tables: dict[str, BaseTable] = field(default_factory=dict)
    account_flows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # per account, debit +
    customer_credits: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    vendor_credits: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def _sums(index: np.ndarray, amounts: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros(length, dtype=np.int64)
    np.add.at(out, index, amounts)
    return out


def build_books(
    rng: np.random.Generator,
    timeline: Any,
    ctx: CompanyContext,
    *,
    company_name: str,
    documents: int,
    employees: int,
    vendors: int,
    customers: int,
    items: int,
    bank_ids: tuple[int, ...],
    bills: int,
    days: Any,
) -> BookSeed:
    """Every table besides the ten base ones; ``documents`` rows per busy transaction entity."""
    accounts = chart.ACCOUNTS
    account_id = {a.name: i + 1 for i, a in enumerate(accounts)}
    n_accounts = len(accounts)
    out = BookSeed(
        account_flows=np.zeros(n_accounts, np.int64),
        customer_credits=np.zeros(customers, np.int64),
        vendor_credits=np.zeros(vendors, np.int64),
    )
    anchor = timeline.anchor

    def record_table(entity: str, bodies: list[dict[str, Any]], edited: bool = True) -> None:
        lut, created, sync = timeline.list_times(len(bodies))
        if not edited:
            created, sync = lut, np.zeros(len(bodies), np.int32)
        out.tables[entity] = RecordTable(entity, ctx, lut, created, sync, bodies)

    # Name lists and settings.
    record_table("Class", [{"Name": n, "FullyQualifiedName": n, "SubClass": False, "Active": True} for n in CLASSES])
    record_table("Department", [{"Name": n, "FullyQualifiedName": n, "SubDepartment": False, "Active": True}
                                for n in DEPARTMENTS])  # fmt: skip
    record_table("CustomerType", [{"Name": n, "Active": True} for n in CUSTOMER_TYPES])
    record_table("PaymentMethod", [{"Name": n, "Type": t, "Active": True} for n, t in PAYMENT_METHODS])
    record_table("TaxAgency", [{"DisplayName": n, "TaxTrackedOnSales": True, "TaxTrackedOnPurchases": False}
                               for n in TAX_AGENCIES])  # fmt: skip
    record_table("TaxRate", [{"Name": n, "Description": n, "RateValue": r, "Active": True, "SpecialTaxType": "NONE",
                              "AgencyRef": {"value": str(a)}} for n, r, a in TAX_RATES])  # fmt: skip
    record_table("TaxCode", [{"Name": n, "Description": d, "Taxable": t, "TaxGroup": True, "Active": True,
                              "SalesTaxRateList": {"TaxRateDetail": [{"TaxRateRef": {"value": "1"}}] if t else []}}
                             for n, d, t in TAX_CODES])  # fmt: skip
    record_table("CompanyCurrency", [{"Code": c, "Name": n, "Active": True} for c, n in CURRENCIES])
    year = int(day_text(days(np.asarray([anchor]))[0])[:4])
    expense_names = [a.name for a in accounts if a.account_type == "Expense"][:4]
    record_table(
        "Budget",
        [
            {
                "Name": f"FY{y} Operating Budget",
                "StartDate": f"{y}-01-01",
                "EndDate": f"{y}-12-31",
                "BudgetType": "ProfitAndLoss",
                "BudgetEntryType": "Monthly",
                "Active": True,
                "BudgetDetail": [
                    {
                        "BudgetDate": f"{y}-{m:02d}-01",
                        "Amount": float(200 + 50 * k + 10 * m),
                        "AccountRef": ctx.account_ref(account_id[name]),
                    }
                    for k, name in enumerate(expense_names)
                    for m in range(1, 13)
                ],
            }
            for y in (year - 1, year)
        ],
    )
    given, family = chart.GIVEN_NAMES, chart.FAMILY_NAMES
    employee_names = [
        f"{given[(i * 7 + 3) % len(given)]} {family[(i * 11 + 5) % len(family)]}" for i in range(employees)
    ]
    employee_names = [n if employee_names.index(n) == i else f"{n} {i + 1}" for i, n in enumerate(employee_names)]
    record_table(
        "Employee",
        [
            {
                "DisplayName": name,
                "GivenName": name.split(" ")[0],
                "FamilyName": name.split(" ", 1)[1],
                "PrintOnCheckName": name,
                "PrimaryEmailAddr": {"Address": f"{name.lower().replace(' ', '.')}@staff.example.com"},
                "HiredDate": day_text(int(days(np.asarray([anchor]))[0]) - 60 - 37 * i),
                "BillableTime": True,
                "Active": i % 17 != 16,
            }
            for i, name in enumerate(employee_names)
        ],
    )
    info_lut = np.asarray([anchor - 86_400], np.int64)
    out.tables["CompanyInfo"] = RecordTable("CompanyInfo", ctx, info_lut, info_lut - 400 * 86_400,
                                            np.asarray([3], np.int32), [_company_info(company_name)])  # fmt: skip
    out.tables["Preferences"] = RecordTable("Preferences", ctx, info_lut, info_lut - 400 * 86_400,
                                            np.asarray([1], np.int32), [_preferences()])  # fmt: skip

    # Transactions.
    def dated(n: int, back: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        lut = timeline.sorted_times(n)
        created = lut - rng.integers(0, 2 * 86_400, n) * (rng.random(n) < 0.3)
        sync = (created != lut).astype(np.int32)
        return lut, created, sync, days(created) - rng.integers(0, back, n)

    def weights(n: int) -> np.ndarray:
        w = 1.0 / (np.arange(n) + 5.0)
        w = w[rng.permutation(n)]
        return w / w.sum()

    banks = np.asarray(bank_ids[:3], np.int64)
    zeros = np.zeros
    item_prices = ctx.item_prices
    few = max(3, documents // 4)

    n = few
    lut, created, sync, txn = dated(n)
    parties = rng.choice(customers, size=n, p=weights(customers))
    totals = sales_totals(table_key(ctx.key, "CreditMemo"), n, item_prices)
    out.tables["CreditMemo"] = CreditMemoTable(ctx, lut, created, sync, parties, zeros(n), zeros(n), totals, totals,
                                               txn, txn)  # fmt: skip
    out.customer_credits += _sums(parties, totals, customers)
    out.account_flows[ctx.ar_id - 1] -= int(totals.sum())

    lut, created, sync, txn = dated(n)
    parties = rng.choice(vendors, size=n, p=weights(vendors))
    totals = expense_totals(table_key(ctx.key, "VendorCredit"), n)
    out.tables["VendorCredit"] = VendorCreditTable(ctx, lut, created, sync, parties, zeros(n), zeros(n), totals,
                                                   totals, txn, txn)  # fmt: skip
    out.vendor_credits += _sums(parties, totals, vendors)
    out.account_flows[ctx.ap_id - 1] += int(totals.sum())  # debit A/P: less owed

    for entity, cls, count, sign in (("SalesReceipt", SalesReceiptTable, documents, 1),
                                     ("RefundReceipt", RefundReceiptTable, few, -1)):  # fmt: skip
        lut, created, sync, txn = dated(count)
        parties = rng.choice(customers, size=count, p=weights(customers))
        to = banks[rng.integers(0, len(banks), count)]
        methods = rng.integers(1, len(PAYMENT_METHODS) + 1, count)
        totals = sales_totals(table_key(ctx.key, entity), count, item_prices)
        out.tables[entity] = cls(ctx, lut, created, sync, parties, to, methods, totals, zeros(count), txn, txn)
        out.account_flows += sign * _sums(to - 1, totals, n_accounts)

    lut, created, sync, txn = dated(documents)
    to = banks[rng.integers(0, len(banks), documents)]
    sources = np.asarray([account_id["Interest Earned"], account_id["Other Income"]])[rng.integers(0, 2, documents)]
    totals = rng.integers(5_000, 400_000, documents).astype(np.int64)
    out.tables["Deposit"] = DepositTable(ctx, lut, created, sync, zeros(documents), to, sources, totals,
                                         zeros(documents), txn, txn)  # fmt: skip
    out.account_flows += _sums(to - 1, totals, n_accounts)

    lut, created, sync, txn = dated(few)
    pick = rng.integers(0, len(banks), few)
    source = banks[pick]
    target = banks[(pick + 1 + rng.integers(0, len(banks) - 1, few)) % len(banks)]
    totals = rng.integers(50_000, 2_000_000, few).astype(np.int64)
    out.tables["Transfer"] = TransferTable(ctx, lut, created, sync, zeros(few), source, target, totals, zeros(few),
                                           txn, txn)  # fmt: skip
    out.account_flows += _sums(target - 1, totals, n_accounts) - _sums(source - 1, totals, n_accounts)

    lut, created, sync, txn = dated(few)
    kinds = rng.integers(0, 2, few)
    debit = np.where(kinds == 0, account_id["Depreciation"], account_id["Insurance"])
    credit = np.where(kinds == 0, account_id["Accumulated Depreciation"], account_id["Prepaid Expenses"])
    totals = rng.integers(20_000, 300_000, few).astype(np.int64)
    out.tables["JournalEntry"] = JournalEntryTable(ctx, lut, created, sync, zeros(few), debit, credit, totals,
                                                   zeros(few), txn, txn)  # fmt: skip
    out.account_flows += _sums(debit - 1, totals, n_accounts) - _sums(credit - 1, totals, n_accounts)

    lut, created, sync, txn = dated(few)
    parties = rng.choice(customers, size=few, p=weights(customers))
    totals = sales_totals(table_key(ctx.key, "Estimate"), few, item_prices)
    out.tables["Estimate"] = EstimateTable(ctx, lut, created, sync, parties, rng.integers(0, 4, few), zeros(few),
                                           totals, zeros(few), txn, txn + 30)  # fmt: skip

    lut, created, sync, txn = dated(few)
    parties = rng.choice(vendors, size=few, p=weights(vendors))
    totals = expense_totals(table_key(ctx.key, "PurchaseOrder"), few)
    out.tables["PurchaseOrder"] = PurchaseOrderTable(ctx, lut, created, sync, parties, rng.random(few) < 0.6,
                                                     zeros(few), totals, zeros(few), txn, txn + 14)  # fmt: skip

    lut, created, sync, txn = dated(documents, back=7)
    workers = rng.integers(0, employees, documents)
    minutes = rng.integers(2, 17, documents) * 30
    rates = np.where(rng.random(documents) < 0.7, rng.integers(40, 160, documents) * 100, 0)
    out.tables["TimeActivity"] = TimeActivityTable(
        ctx, lut, created, sync, workers, rng.integers(0, customers, documents), rng.integers(0, items, documents),
        minutes, rates, txn, txn, employee_names=employee_names,
    )  # fmt: skip

    attachments = max(2, documents // 2)
    bodies = []
    for k, bill in enumerate(sorted(rng.choice(bills, size=min(attachments, bills), replace=False).tolist())):
        bodies.append({
            "FileName": f"bill-{bill + 1}.pdf", "ContentType": "application/pdf",
            "Size": int(20_000 + (bill * 7919) % 400_000), "Note": "Scanned invoice" if k % 3 else "Signed copy",
            "AttachableRef": [{"EntityRef": {"type": "Bill", "value": str(bill + 1)}, "IncludeOnSend": False}],
        })  # fmt: skip
    record_table("Attachable", bodies, edited=False)
    return out


UNAPPLIED_SHARE = 0.08  # customer payments that brought more than the invoice they pay


def unapplied_payments(rng: np.random.Generator, amounts: np.ndarray) -> np.ndarray:
    """Cents each seeded customer payment received beyond what it applies to its invoice (mostly 0).

    A customer who pays ahead or rounds up leaves a payment partly unapplied: QBO keeps the rest as the
    payment's ``UnappliedAmt``, a credit that lowers the customer's balance and A/R (and shows as a
    negative amount in A/R aging) until it is applied. One in ~12 payments here, 5-60 % of its applied
    amount and at least $1. Drawn from its own stream, so every other seeded figure stays as it was."""
    n = len(amounts)
    chosen = rng.random(n) < UNAPPLIED_SHARE
    extra = np.maximum(100, np.rint(amounts * rng.uniform(0.05, 0.6, n))).astype(np.int64)
    return np.where(chosen, extra, 0).astype(np.int64)


def _company_info(name: str) -> dict[str, Any]:
    address = {"Id": "1", "Line1": "500 Market Street", "City": "San Francisco", "CountrySubDivisionCode": "CA",
               "PostalCode": "94105", "Country": "US"}  # fmt: skip
    return {
        "CompanyName": name,
        "LegalName": f"{name} LLC",
        "CompanyAddr": address,
        "LegalAddr": dict(address),
        "CustomerCommunicationAddr": dict(address),
        "PrimaryPhone": {"FreeFormNumber": "(415) 555-0100"},
        "CompanyStartDate": "2015-03-01",
        "FiscalYearStartMonth": "January",
        "Country": "US",
        "Email": {"Address": "books@" + "".join(ch for ch in name.lower() if ch.isalnum()) + ".example.com"},
        "WebAddr": {},
        "SupportedLanguages": "en",
        "NameValue": [{"Name": "IndustryType", "Value": "Professional Services"}],
    }


def _preferences() -> dict[str, Any]:
    return {
        "AccountingInfoPrefs": {
            "TrackDepartments": True,
            "DepartmentTerminology": "Location",
            "ClassTrackingPerTxn": True,
        },
        "SalesFormsPrefs": {"AllowEstimates": True, "ETransactionEnabledStatus": "NotApplicable"},
        "VendorAndPurchasesPrefs": {"BillableExpenseTracking": True, "POCustomField": []},
        "TimeTrackingPrefs": {"UseServices": True, "BillCustomers": True, "ShowBillRateToAll": False},
        "TaxPrefs": {"UsingSalesTax": True},
        "CurrencyPrefs": {"MultiCurrencyEnabled": False, "HomeCurrency": dict(USD)},
        "ReportPrefs": {"ReportBasis": "Accrual", "CalcAgingReportFromTxnDate": False},
    }


def company_name_for(seed: int, realm_index: int) -> str:
    """A plausible small-business name, stable for (seed, realm)."""
    k = (seed * 31 + realm_index * 7) % (len(chart.VENDOR_FIRST) * len(chart.VENDOR_SECOND))
    first = chart.VENDOR_FIRST[k % len(chart.VENDOR_FIRST)]
    second = chart.VENDOR_SECOND[(k // len(chart.VENDOR_FIRST)) % len(chart.VENDOR_SECOND)]
    return f"{first} {second} Co"


__all__ = ["UNAPPLIED_SHARE", "BookSeed", "build_books", "company_name_for", "unapplied_payments"]
