"""Write rules of the rest of the books: validation and defaults per entity, and how each one moves
balances. ``write_rules.WritePlanner`` calls ``normalise`` and ``contributions`` for every entity
listed in ``RULES``; everything else about a write (SyncToken, sparse updates, deletes, voids, side
effects stamped as object changes) is the planner's and the same for every entity.

Balances follow double entry: a transaction's lines are (account, debit cents) pairs, and a
balance-sheet account's ``CurrentBalance`` moves by the debit for assets and by the credit for
liabilities and equity (QBO keeps no running balance on income and expense accounts). The same lines
are what the ledger behind the sandbox's reports posts (``reports/ledger_view.py``), so the reports
and the accounts agree after any write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from smartsync_pipeline.sandbox import api_errors as errors
from smartsync_pipeline.sandbox.base_tables import USD, money

if TYPE_CHECKING:
    from smartsync_pipeline.sandbox.write_rules import Contributions, WritePlanner

BANKISH = ("Bank", "Other Current Asset")


def _cents(value: Any) -> int:
    return round(float(value or 0) * 100)


def _required(obj: dict[str, Any], field: str) -> Any:
    value = obj.get(field)
    if value in (None, ""):
        raise errors.validation(errors.REQUIRED_MISSING, "Required param missing", f"{field} is required", field)
    return value


def _named(p: WritePlanner, obj: dict[str, Any], new_id: int, field: str = "Name") -> str:
    """A list entry's unique name (QBO's 6240 on a duplicate); Active defaults to true."""
    name = _required(obj, field)
    if not isinstance(name, str):
        raise errors.validation(errors.INVALID_VALUE, "Invalid value", f"{field} must be text", field)
    p.unique_name(field, name, new_id)
    obj.setdefault("Active", True)
    return name


def _list_entry(p: WritePlanner, obj: dict[str, Any], current: dict[str, Any] | None, new_id: int, today: int) -> None:
    name = _named(p, obj, new_id)
    if p.spec.name in ("Class", "Department"):
        obj["FullyQualifiedName"] = name
    if p.spec.name == "PaymentMethod":
        obj.setdefault("Type", "NON_CREDIT_CARD")
    if p.spec.name == "TaxRate":
        obj["RateValue"] = money(p_cents(obj.get("RateValue", 0), "RateValue"))
        p.ref(obj, "AgencyRef", "TaxAgency", "AgencyRef")
    if p.spec.name == "Budget":
        p.date_field(obj, "StartDate", today)
        p.date_field(obj, "EndDate", today + 364)
        obj.setdefault("BudgetType", "ProfitAndLoss")
        obj.setdefault("BudgetEntryType", "Monthly")


def p_cents(value: Any, element: str) -> int:
    from smartsync_pipeline.sandbox.write_rules import cents_of

    amount = cents_of(value, element)
    assert amount is not None
    return amount


def _currency(p: WritePlanner, obj: dict[str, Any], current: dict[str, Any] | None, new_id: int, today: int) -> None:
    code = _required(obj, "Code")
    p.unique_name("Code", str(code), new_id)
    obj.setdefault("Name", str(code))
    obj.setdefault("Active", True)


def _employee(p: WritePlanner, obj: dict[str, Any], current: dict[str, Any] | None, new_id: int, today: int) -> None:
    if not obj.get("DisplayName"):
        obj["DisplayName"] = " ".join(str(obj.get(k, "")) for k in ("GivenName", "FamilyName")).strip()
    _named(p, obj, new_id, "DisplayName")
    obj.setdefault("PrintOnCheckName", obj["DisplayName"])
    p.date_field(obj, "HiredDate", None)


def _tax_agency(p: WritePlanner, obj: dict[str, Any], current: dict[str, Any] | None, new_id: int, today: int) -> None:
    name = _required(obj, "DisplayName")
    p.unique_name("DisplayName", str(name), new_id)
    obj.setdefault("TaxTrackedOnSales", True)
    obj.setdefault("TaxTrackedOnPurchases", False)


def _attachable(p: WritePlanner, obj: dict[str, Any], current: dict[str, Any] | None, new_id: int, today: int) -> None:
    if not obj.get("FileName") and not obj.get("Note"):
        raise errors.validation(errors.REQUIRED_MISSING, "Required param missing", "FileName or Note is required")
    refs = obj.get("AttachableRef") or []
    if not isinstance(refs, list):
        raise errors.validation(errors.INVALID_VALUE, "Invalid value", "AttachableRef must be a list", "AttachableRef")
    for entry in refs:
        target = (entry or {}).get("EntityRef") or {}
        if not isinstance(target, dict) or target.get("type") not in p.company.tables:
            raise errors.validation(errors.INVALID_REFERENCE, "Invalid Reference Id", "AttachableRef.EntityRef.type")
        if p.company.get(str(target["type"]), target.get("value")) is None:
            raise errors.validation(
                errors.INVALID_REFERENCE, "Invalid Reference Id", f"{target['type']} {target.get('value')!r} not found"
            )


def _singleton(p: WritePlanner, obj: dict[str, Any], current: dict[str, Any] | None, new_id: int, today: int) -> None:
    if current is None:
        raise errors.validation(
            errors.UNSUPPORTED_OPERATION, "Operation Create is not supported", f"{p.spec.name} exists once: update it"
        )
    if p.spec.name == "CompanyInfo":
        _required(obj, "CompanyName")


def _sales_form(p: WritePlanner, obj: dict[str, Any], current: dict[str, Any] | None, new_id: int, today: int) -> None:
    """CreditMemo, SalesReceipt, RefundReceipt, Estimate: item lines, a customer, dates, totals."""
    name = p.spec.name
    p.ref(obj, "CustomerRef", "Customer", "CustomerRef", required=name in ("CreditMemo", "Estimate"))
    total = p.sales_lines(obj)
    obj["TotalAmt"] = money(total)
    p.date_field(obj, "TxnDate", today)
    obj.setdefault("CurrencyRef", dict(USD))
    obj.setdefault("PrintStatus", "NotSet")
    obj.setdefault("EmailStatus", "NotSet")
    if name == "CreditMemo":
        obj.setdefault("ARAccountRef", {"value": str(p.company.seeded.ctx.ar_id)})
        p.ref(obj, "ARAccountRef", "Account", "ARAccountRef", account_types=("Accounts Receivable",))
        obj["Balance"] = obj["RemainingCredit"] = money(total)  # credits are not applied in the sandbox
    elif name in ("SalesReceipt", "RefundReceipt"):
        if name == "SalesReceipt":
            obj.setdefault("DepositToAccountRef", {"value": str(p.company.seeded.undeposited_id)})
        p.ref(obj, "DepositToAccountRef", "Account", "DepositToAccountRef", name == "RefundReceipt", BANKISH)
        p.ref(obj, "PaymentMethodRef", "PaymentMethod", "PaymentMethodRef")
        obj["Balance"] = 0
    else:
        obj.setdefault("TxnStatus", "Pending")
        p.date_field(obj, "ExpirationDate", None)


def _purchase_form(
    p: WritePlanner, obj: dict[str, Any], current: dict[str, Any] | None, new_id: int, today: int
) -> None:
    """VendorCredit, PurchaseOrder: expense lines and a vendor."""
    p.ref(obj, "VendorRef", "Vendor", "VendorRef", required=True)
    obj.setdefault("APAccountRef", {"value": str(p.company.seeded.ctx.ap_id)})
    p.ref(obj, "APAccountRef", "Account", "APAccountRef", account_types=("Accounts Payable",))
    total = p.expense_lines(obj)
    obj["TotalAmt"] = money(total)
    p.date_field(obj, "TxnDate", today)
    obj.setdefault("CurrencyRef", dict(USD))
    if p.spec.name == "VendorCredit":
        obj["Balance"] = money(total)
    else:
        p.date_field(obj, "DueDate", None)
        if obj.setdefault("POStatus", "Open") not in ("Open", "Closed"):
            raise errors.validation(errors.INVALID_VALUE, "Invalid POStatus", "POStatus is Open or Closed", "POStatus")


def _deposit(p: WritePlanner, obj: dict[str, Any], current: dict[str, Any] | None, new_id: int, today: int) -> None:
    p.ref(obj, "DepositToAccountRef", "Account", "DepositToAccountRef", True, BANKISH)
    lines = obj.get("Line")
    if not isinstance(lines, list) or not lines:
        raise errors.validation(errors.REQUIRED_MISSING, "Required param missing", "Line is required", "Line")
    out, total = [], 0
    for number, line in enumerate(lines, 1):
        if not isinstance(line, dict):
            raise errors.validation(errors.INVALID_VALUE, "Invalid line", "Line items must be objects", "Line")
        amount = p_cents(line.get("Amount"), "Line.Amount")
        detail = dict(line.get("DepositLineDetail") or {})
        p.ref(detail, "AccountRef", "Account", "Line.DepositLineDetail.AccountRef", True)
        out.append({**line, "Id": str(line.get("Id") or number), "LineNum": number, "Amount": money(amount),
                    "DetailType": "DepositLineDetail", "DepositLineDetail": detail})  # fmt: skip
        total += amount
    obj["Line"] = out
    obj["TotalAmt"] = money(total)
    p.date_field(obj, "TxnDate", today)
    obj.setdefault("CurrencyRef", dict(USD))


def _transfer(p: WritePlanner, obj: dict[str, Any], current: dict[str, Any] | None, new_id: int, today: int) -> None:
    p.ref(obj, "FromAccountRef", "Account", "FromAccountRef", required=True)
    p.ref(obj, "ToAccountRef", "Account", "ToAccountRef", required=True)
    if obj["FromAccountRef"]["value"] == obj["ToAccountRef"]["value"]:
        raise errors.business("a transfer needs two different accounts", "ToAccountRef")
    amount = p_cents(obj.get("Amount"), "Amount")
    if amount <= 0:
        raise errors.business("Amount must be positive", "Amount")
    obj["Amount"] = money(amount)
    p.date_field(obj, "TxnDate", today)
    obj.setdefault("CurrencyRef", dict(USD))


def _journal_entry(
    p: WritePlanner, obj: dict[str, Any], current: dict[str, Any] | None, new_id: int, today: int
) -> None:
    lines = obj.get("Line")
    if not isinstance(lines, list) or len(lines) < 2:
        raise errors.validation(errors.REQUIRED_MISSING, "Required param missing", "two lines or more", "Line")
    out, debits, credits = [], 0, 0
    for number, line in enumerate(lines, 1):
        if not isinstance(line, dict):
            raise errors.validation(errors.INVALID_VALUE, "Invalid line", "Line items must be objects", "Line")
        amount = p_cents(line.get("Amount"), "Line.Amount")
        detail = dict(line.get("JournalEntryLineDetail") or {})
        posting = detail.get("PostingType")
        if posting not in ("Debit", "Credit"):
            raise errors.validation(errors.INVALID_VALUE, "Invalid PostingType", "Debit or Credit", "PostingType")
        p.ref(detail, "AccountRef", "Account", "Line.JournalEntryLineDetail.AccountRef", True)
        if posting == "Debit":
            debits += amount
        else:
            credits += amount
        out.append({**line, "Id": str(number - 1), "LineNum": number, "Amount": money(amount),
                    "DetailType": "JournalEntryLineDetail", "JournalEntryLineDetail": detail})  # fmt: skip
    if debits != credits:
        raise errors.business(
            f"Transaction must balance: debits {money(debits)} and credits {money(credits)} differ", "Line"
        )
    obj["Line"] = out
    obj["TotalAmt"] = money(debits)
    obj.setdefault("Adjustment", False)
    p.date_field(obj, "TxnDate", today)
    obj.setdefault("CurrencyRef", dict(USD))


def _time_activity(
    p: WritePlanner, obj: dict[str, Any], current: dict[str, Any] | None, new_id: int, today: int
) -> None:
    name_of = obj.setdefault("NameOf", "Employee")
    if name_of not in ("Employee", "Vendor"):
        raise errors.validation(errors.INVALID_VALUE, "Invalid NameOf", "NameOf is Employee or Vendor", "NameOf")
    field = f"{name_of}Ref"
    p.ref(obj, field, name_of, field, required=True)
    p.ref(obj, "CustomerRef", "Customer", "CustomerRef")
    p.ref(obj, "ItemRef", "Item", "ItemRef")
    for unit in ("Hours", "Minutes"):
        value = obj.setdefault(unit, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise errors.validation(errors.INVALID_VALUE, f"Invalid {unit}", f"{unit} must be >= 0", unit)
    obj["HourlyRate"] = money(p_cents(obj.get("HourlyRate", 0), "HourlyRate"))
    obj.setdefault("BillableStatus", "Billable" if obj["HourlyRate"] else "NotBillable")
    obj.setdefault("Taxable", False)
    p.date_field(obj, "TxnDate", today)


Rule = Callable[["WritePlanner", dict[str, Any], "dict[str, Any] | None", int, int], None]
RULES: dict[str, Rule] = {
    **dict.fromkeys(
        ("Class", "Department", "CustomerType", "PaymentMethod", "TaxCode", "TaxRate", "Budget"), _list_entry
    ),
    "CompanyCurrency": _currency,
    "Employee": _employee,
    "TaxAgency": _tax_agency,
    "Attachable": _attachable,
    "CompanyInfo": _singleton,
    "Preferences": _singleton,
    **dict.fromkeys(("CreditMemo", "SalesReceipt", "RefundReceipt", "Estimate"), _sales_form),
    **dict.fromkeys(("VendorCredit", "PurchaseOrder"), _purchase_form),
    "Deposit": _deposit,
    "Transfer": _transfer,
    "JournalEntry": _journal_entry,
    "TimeActivity": _time_activity,
}


def _ref_id(obj: dict[str, Any], *path: str) -> int | None:
    value: Any = obj
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _debits(p: WritePlanner, name: str, obj: dict[str, Any]) -> list[tuple[int | None, int]]:
    """(account id, debit cents) of a transaction's balance-sheet-relevant lines."""
    total = _cents(obj.get("TotalAmt"))
    if name == "SalesReceipt":
        return [(_ref_id(obj, "DepositToAccountRef", "value"), total)]
    if name == "RefundReceipt":
        return [(_ref_id(obj, "DepositToAccountRef", "value"), -total)]
    if name == "Deposit":
        lines = [(_ref_id(ln, "DepositLineDetail", "AccountRef", "value"), -_cents(ln.get("Amount")))
                 for ln in obj.get("Line") or []]  # fmt: skip
        return [(_ref_id(obj, "DepositToAccountRef", "value"), total), *lines]
    if name == "Transfer":
        amount = _cents(obj.get("Amount"))
        return [(_ref_id(obj, "ToAccountRef", "value"), amount), (_ref_id(obj, "FromAccountRef", "value"), -amount)]
    if name == "JournalEntry":
        out = []
        for ln in obj.get("Line") or []:
            detail = ln.get("JournalEntryLineDetail") or {}
            sign = 1 if detail.get("PostingType") == "Debit" else -1
            out.append((_ref_id(detail, "AccountRef", "value"), sign * _cents(ln.get("Amount"))))
        return out
    return []


def contributions(p: WritePlanner, name: str, obj: dict[str, Any], out: Contributions) -> None:
    """Add what ``obj`` contributes to other objects' balances (see the module docstring)."""
    ctx = p.company.seeded.ctx
    if name == "CreditMemo":
        remaining = _cents(obj.get("Balance"))
        out[("Customer", int(obj["CustomerRef"]["value"]), "Balance")] -= remaining
        out[("Account", _ref_id(obj, "ARAccountRef", "value") or ctx.ar_id, "CurrentBalance")] -= remaining
        return
    if name == "VendorCredit":
        remaining = _cents(obj.get("Balance"))
        out[("Vendor", int(obj["VendorRef"]["value"]), "Balance")] -= remaining
        out[("Account", _ref_id(obj, "APAccountRef", "value") or ctx.ap_id, "CurrentBalance")] -= remaining
        return
    for account_id, debit in _debits(p, name, obj):
        if account_id is None or debit == 0:
            continue
        account = p.company.get("Account", account_id) or {}
        classification = account.get("Classification")
        if classification == "Asset":
            out[("Account", account_id, "CurrentBalance")] += debit
        elif classification in ("Liability", "Equity"):
            out[("Account", account_id, "CurrentBalance")] -= debit
