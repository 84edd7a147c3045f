"""Creates, updates, deletes and voids, with QBO's validation and the books kept consistent.

Money moves by *contributions*: a bill adds its total to its vendor's balance and to A/P, a bill
payment subtracts what it pays from each linked bill, the vendor, A/P and its bank account, and so on
for invoices and payments. A write computes the contributions of the object before and after, applies
the difference to the objects involved, and each object that changes gets a SyncToken bump and a new
LastUpdatedTime — a side effect is an object change like any other.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from typing import Any

import numpy as np

from smartsync_pipeline.entities.registry import SINGLETON, EntitySpec, entity
from smartsync_pipeline.sandbox import api_errors as errors
from smartsync_pipeline.sandbox import book_rules
from smartsync_pipeline.sandbox.base_tables import USD, money
from smartsync_pipeline.sandbox.chart import CLASSIFICATION
from smartsync_pipeline.sandbox.qbo_time import TimeFormatError, day_number, day_text, iso, parse_day
from smartsync_pipeline.sandbox.store import Change, Company

SERVER_FIELDS = ("Id", "SyncToken", "MetaData", "domain", "sparse", "status")
EXPENSE_DETAILS = ("AccountBasedExpenseLineDetail", "ItemBasedExpenseLineDetail")
PAYMENT_LINKS = {"BillPayment": ("Bill", "BillPayment"), "Payment": ("Invoice", "Payment")}

Contributions = dict[tuple[str, int, str], int]


def cents_of(value: Any, element: str, required: bool = True) -> int | None:
    """A JSON amount (number or numeric string) in cents; anything else is a ValidationFault."""
    if value is None:
        if required:
            raise errors.validation(
                errors.REQUIRED_MISSING, "Required param missing", f"{element} is required", element
            )
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise errors.validation(errors.INVALID_VALUE, "Invalid amount", f"{element} must be a number", element)
    try:
        number = float(value)
    except ValueError:
        raise errors.validation(
            errors.INVALID_VALUE, "Invalid amount", f"{element} must be a number, got {value!r}", element
        ) from None
    if not math.isfinite(number):
        raise errors.validation(errors.INVALID_VALUE, "Invalid amount", f"{element} must be finite", element)
    return round(number * 100)


def _cents(value: Any) -> int:
    return round(float(value or 0) * 100)


def _display_name(obj: dict[str, Any]) -> str:
    return str(obj.get("DisplayName") or obj.get("Name") or obj.get("FullyQualifiedName") or "")


class WritePlanner:
    """One write against one realm; ``run`` validates everything before anything is stored."""

    def __init__(self, company: Company, spec: EntitySpec, now: float) -> None:
        self.company = company
        self.spec = spec
        self.now = now
        self.table = company.table(spec.name)

    # -- references and fields ------------------------------------------------------------------------
    def ref(
        self,
        obj: dict[str, Any],
        field: str,
        target: str,
        element: str,
        required: bool = False,
        account_types: tuple[str, ...] = (),
    ) -> dict[str, Any] | None:
        """Validate ``obj[field]`` as a reference to an existing ``target`` and fill in its name."""
        value = obj.get(field)
        if value is None:
            if required:
                raise errors.validation(
                    errors.REQUIRED_MISSING, "Required param missing", f"{element} is required", element
                )
            return None
        raw_id = value.get("value") if isinstance(value, dict) else None
        found = self.company.get(target, raw_id) if raw_id is not None else None
        if found is None:
            raise errors.validation(
                errors.INVALID_REFERENCE,
                "Invalid Reference Id",
                f"Invalid Reference Id : {target} with id {raw_id!r} was not found",
                element,
            )
        if account_types and found.get("AccountType") not in account_types:
            raise errors.business(f"{element} must be an account of type {' or '.join(account_types)}", element)
        out = {**value, "value": str(found["Id"]), "name": _display_name(found)}
        obj[field] = out
        return found

    def date_field(self, obj: dict[str, Any], field: str, default: int | None) -> int | None:
        raw = obj.get(field)
        if raw is None:
            if default is not None:
                obj[field] = day_text(default)
            return default
        try:
            day = parse_day(str(raw))
        except TimeFormatError:
            raise errors.validation(
                errors.INVALID_VALUE, "Invalid date", f"{field} must be YYYY-MM-DD", field
            ) from None
        obj[field] = day_text(day)
        return day

    def unique_name(self, field: str, name: str, own_id: int | None) -> None:
        """DisplayName / Name must be unique in its list (case-insensitive), like QBO's 6240."""
        folded = name.casefold()
        base = self.table.base
        column = base.column(field, "str")
        hits = np.flatnonzero((column == folded) & ~self.table.masked)
        clash = [int(h) + 1 for h in hits]
        clash += [oid for oid, obj in self.table.overlay.items() if str(obj.get(field, "")).casefold() == folded]
        if any(oid != own_id for oid in clash):
            raise errors.validation(
                errors.DUPLICATE_NAME,
                "Duplicate Name Exists Error",
                f"The name supplied already exists. : {name}",
                field,
            )

    # -- lines --------------------------------------------------------------------------------------
    def expense_lines(self, obj: dict[str, Any]) -> int:
        lines = obj.get("Line")
        if not isinstance(lines, list) or not lines:
            raise errors.validation(errors.REQUIRED_MISSING, "Required param missing", "Line is required", "Line")
        out, total = [], 0
        for number, line in enumerate(lines, 1):
            if not isinstance(line, dict):
                raise errors.validation(errors.INVALID_VALUE, "Invalid line", "Line items must be objects", "Line")
            amount = cents_of(line.get("Amount"), "Line.Amount")
            detail_type = line.get("DetailType") or next((d for d in EXPENSE_DETAILS if d in line), None)
            if detail_type not in EXPENSE_DETAILS:
                raise errors.validation(
                    errors.INVALID_VALUE,
                    "Invalid DetailType",
                    f"unsupported DetailType {detail_type!r}",
                    "Line.DetailType",
                )
            detail = dict(line.get(detail_type) or {})
            if detail_type == "AccountBasedExpenseLineDetail":
                self.ref(detail, "AccountRef", "Account", "Line.AccountBasedExpenseLineDetail.AccountRef", True)
            else:
                self.ref(detail, "ItemRef", "Item", "Line.ItemBasedExpenseLineDetail.ItemRef", True)
            total += amount
            out.append(
                {
                    **line,
                    "Id": str(line.get("Id") or number),
                    "LineNum": number,
                    "Amount": money(amount),
                    "DetailType": detail_type,
                    detail_type: detail,
                }
            )
        obj["Line"] = out
        return total

    def sales_lines(self, obj: dict[str, Any]) -> int:
        lines = obj.get("Line")
        if not isinstance(lines, list) or not lines:
            raise errors.validation(errors.REQUIRED_MISSING, "Required param missing", "Line is required", "Line")
        out, total = [], 0
        for line in lines:
            if not isinstance(line, dict):
                raise errors.validation(errors.INVALID_VALUE, "Invalid line", "Line items must be objects", "Line")
            detail_type = line.get("DetailType") or ("SalesItemLineDetail" if "SalesItemLineDetail" in line else None)
            if detail_type == "SubTotalLineDetail":
                continue  # recomputed below
            if detail_type != "SalesItemLineDetail":
                raise errors.validation(
                    errors.INVALID_VALUE,
                    "Invalid DetailType",
                    f"unsupported DetailType {detail_type!r}",
                    "Line.DetailType",
                )
            detail = dict(line.get("SalesItemLineDetail") or {})
            self.ref(detail, "ItemRef", "Item", "Line.SalesItemLineDetail.ItemRef", True)
            amount = cents_of(line.get("Amount"), "Line.Amount", required=False)
            if amount is None:
                qty = cents_of(detail.get("Qty"), "Line.SalesItemLineDetail.Qty")
                price = cents_of(detail.get("UnitPrice"), "Line.SalesItemLineDetail.UnitPrice")
                amount = round(qty * price / 100)
            number = len(out) + 1
            out.append(
                {
                    **line,
                    "Id": str(line.get("Id") or number),
                    "LineNum": number,
                    "Amount": money(amount),
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": detail,
                }
            )
            total += amount
        if not out:
            raise errors.validation(
                errors.REQUIRED_MISSING, "Required param missing", "a sales line is required", "Line"
            )
        out.append({"Amount": money(total), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        obj["Line"] = out
        return total

    def payment_lines(self, obj: dict[str, Any], target: str, party_field: str, party_id: str) -> int:
        """Lines of a (bill) payment: each pays one linked bill/invoice of the same party."""
        lines = obj.get("Line") or []
        if not isinstance(lines, list):
            raise errors.validation(errors.INVALID_VALUE, "Invalid line", "Line must be a list", "Line")
        out, total = [], 0
        for line in lines:
            if not isinstance(line, dict):
                raise errors.validation(errors.INVALID_VALUE, "Invalid line", "Line items must be objects", "Line")
            amount = cents_of(line.get("Amount"), "Line.Amount")
            linked = line.get("LinkedTxn")
            if not isinstance(linked, list) or len(linked) != 1 or not isinstance(linked[0], dict):
                raise errors.validation(
                    errors.REQUIRED_MISSING, "Required param missing", "each line needs one LinkedTxn", "Line.LinkedTxn"
                )
            txn = linked[0]
            paid = self.company.get(target, txn.get("TxnId"))
            if paid is None or str(txn.get("TxnType", target)) != target:
                raise errors.validation(
                    errors.INVALID_REFERENCE,
                    "Invalid Reference Id",
                    f"Invalid Reference Id : {target} {txn.get('TxnId')!r} was not found",
                    "Line.LinkedTxn.TxnId",
                )
            if paid[party_field]["value"] != party_id:
                raise errors.business(f"{target} {paid['Id']} belongs to another {party_field[:-3]}", "Line.LinkedTxn")
            total += amount
            out.append({**line, "Amount": money(amount), "LinkedTxn": [{"TxnId": str(paid["Id"]), "TxnType": target}]})
        obj["Line"] = out
        return total

    # -- per-entity normalisation -------------------------------------------------------------------
    def normalise(self, obj: dict[str, Any], current: dict[str, Any] | None, new_id: int) -> dict[str, Any]:
        name = self.spec.name
        today = day_number(self.now)
        obj["domain"] = "QBO"
        obj["sparse"] = False
        if name in ("Vendor", "Customer"):
            display = obj.get("DisplayName") or obj.get("CompanyName")
            if not display:
                given = " ".join(str(obj.get(k, "")) for k in ("GivenName", "FamilyName")).strip()
                display = given
            if not display or not isinstance(display, str):
                raise errors.validation(
                    errors.REQUIRED_MISSING, "Required param missing", "DisplayName is required", "DisplayName"
                )
            self.unique_name("DisplayName", display, new_id)
            obj["DisplayName"] = display
            obj.setdefault("PrintOnCheckName", display)
            obj.setdefault("Active", True)
            obj.setdefault("CurrencyRef", dict(USD))
            balance = current.get("Balance", 0) if current else 0
            obj["Balance"] = balance
            if name == "Customer":
                obj["FullyQualifiedName"] = display
                obj["BalanceWithJobs"] = balance
                self.ref(obj, "SalesTermRef", "Term", "SalesTermRef")
            else:
                self.ref(obj, "TermRef", "Term", "TermRef")
        elif name in ("Account", "Item", "Term"):
            label = obj.get("Name")
            if not label or not isinstance(label, str):
                raise errors.validation(errors.REQUIRED_MISSING, "Required param missing", "Name is required", "Name")
            self.unique_name("Name", label, new_id)
            obj.setdefault("Active", True)
            if name == "Account":
                kind = obj.get("AccountType")
                if kind not in CLASSIFICATION:
                    raise errors.validation(
                        errors.INVALID_VALUE, "Invalid AccountType", f"unknown AccountType {kind!r}", "AccountType"
                    )
                obj["Classification"] = CLASSIFICATION[kind]
                obj.setdefault("AccountSubType", kind.replace(" ", ""))
                obj["FullyQualifiedName"] = label
                obj.setdefault("SubAccount", False)
                balance = current.get("CurrentBalance", 0) if current else 0
                obj["CurrentBalance"] = balance
                obj["CurrentBalanceWithSubAccounts"] = balance
                obj.setdefault("CurrencyRef", dict(USD))
            elif name == "Item":
                obj.setdefault("Type", "Service")
                obj["FullyQualifiedName"] = label
                if obj.get("UnitPrice") is not None:
                    obj["UnitPrice"] = money(cents_of(obj["UnitPrice"], "UnitPrice"))
                self.ref(obj, "IncomeAccountRef", "Account", "IncomeAccountRef", required=True)
                self.ref(obj, "ExpenseAccountRef", "Account", "ExpenseAccountRef")
            else:
                days = obj.get("DueDays", 0)
                if isinstance(days, bool) or not isinstance(days, int) or days < 0:
                    raise errors.validation(errors.INVALID_VALUE, "Invalid DueDays", "DueDays must be >= 0", "DueDays")
                obj.setdefault("Type", "STANDARD")
        elif name == "Bill":
            vendor = self._document_party(obj, current, "VendorRef", "Vendor", "vendor of a bill")
            obj.setdefault("APAccountRef", {"value": str(self.company.seeded.ctx.ap_id)})
            self.ref(obj, "APAccountRef", "Account", "APAccountRef", account_types=("Accounts Payable",))
            term = self._document_term(obj, vendor.get("TermRef"))
            obj.setdefault("CurrencyRef", dict(USD))
            self._document_totals(obj, current, self.expense_lines(obj), term, today)
        elif name == "Invoice":
            customer = self._document_party(obj, current, "CustomerRef", "Customer", "customer of an invoice")
            term = self._document_term(obj, customer.get("SalesTermRef"))
            obj.setdefault("CurrencyRef", dict(USD))
            obj.setdefault("DocNumber", str(1000 + new_id - 1))
            obj.setdefault("EmailStatus", "NotSet")
            obj.setdefault("PrintStatus", "NotSet")
            self._document_totals(obj, current, self.sales_lines(obj), term, today)
        elif name == "BillPayment":
            vendor = self.ref(obj, "VendorRef", "Vendor", "VendorRef", required=True)
            assert vendor is not None
            pay_type = obj.get("PayType")
            if pay_type == "Check":
                detail = dict(obj.get("CheckPayment") or {})
                self.ref(detail, "BankAccountRef", "Account", "CheckPayment.BankAccountRef", True, ("Bank",))
                detail.setdefault("PrintStatus", "NotSet")
                obj["CheckPayment"] = detail
                obj.pop("CreditCardPayment", None)
            elif pay_type == "CreditCard":
                detail = dict(obj.get("CreditCardPayment") or {})
                self.ref(detail, "CCAccountRef", "Account", "CreditCardPayment.CCAccountRef", True, ("Credit Card",))
                obj["CreditCardPayment"] = detail
                obj.pop("CheckPayment", None)
            else:
                raise errors.validation(
                    errors.REQUIRED_MISSING, "Required param missing", "PayType must be Check or CreditCard", "PayType"
                )
            self._payment_amounts(obj, "Bill", "VendorRef", vendor)
            obj.setdefault("CurrencyRef", dict(USD))
            self.date_field(obj, "TxnDate", today)
        elif name == "Payment":
            customer = self.ref(obj, "CustomerRef", "Customer", "CustomerRef", required=True)
            assert customer is not None
            obj.setdefault("DepositToAccountRef", {"value": str(self.company.seeded.undeposited_id)})
            self.ref(
                obj,
                "DepositToAccountRef",
                "Account",
                "DepositToAccountRef",
                account_types=("Bank", "Other Current Asset"),
            )
            total, applied = self._payment_amounts(obj, "Invoice", "CustomerRef", customer)
            obj["UnappliedAmt"] = money(total - applied)
            obj.setdefault("ProcessPayment", False)
            obj.setdefault("CurrencyRef", dict(USD))
            self.date_field(obj, "TxnDate", today)
        elif name == "Purchase":
            payment_type = obj.get("PaymentType")
            if payment_type not in ("Cash", "Check", "CreditCard"):
                raise errors.validation(
                    errors.REQUIRED_MISSING,
                    "Required param missing",
                    "PaymentType must be Cash, Check or CreditCard",
                    "PaymentType",
                )
            allowed = ("Credit Card",) if payment_type == "CreditCard" else ("Bank", "Other Current Asset")
            self.ref(obj, "AccountRef", "Account", "AccountRef", True, allowed)
            payee = obj.get("EntityRef")
            if payee is not None:
                target = payee.get("type", "Vendor") if isinstance(payee, dict) else "Vendor"
                if target not in ("Vendor", "Customer"):
                    raise errors.validation(errors.INVALID_VALUE, "Invalid EntityRef", "EntityRef.type", "EntityRef")
                self.ref(obj, "EntityRef", target, "EntityRef")
                obj["EntityRef"]["type"] = target
            obj.setdefault("Credit", False)
            obj.setdefault("CurrencyRef", dict(USD))
            obj["TotalAmt"] = money(self.expense_lines(obj))
            self.date_field(obj, "TxnDate", today)
        elif name in book_rules.RULES:
            book_rules.RULES[name](self, obj, current, new_id, today)
        return obj

    def _payment_amounts(
        self, obj: dict[str, Any], target: str, party_field: str, party: dict[str, Any]
    ) -> tuple[int, int]:
        """(TotalAmt, amount applied to lines) in cents: the lines may not apply more than TotalAmt."""
        total = cents_of(obj.get("TotalAmt"), "TotalAmt")
        applied = self.payment_lines(obj, target, party_field, str(party["Id"]))
        if total is None or total < 0 or applied > total:
            raise errors.business("the amounts applied to lines exceed TotalAmt", "TotalAmt")
        obj["TotalAmt"] = money(total)
        return total, applied

    def _document_party(
        self, obj: dict[str, Any], current: dict[str, Any] | None, field: str, target: str, noun: str
    ) -> dict[str, Any]:
        """The vendor of a bill / customer of an invoice: it cannot change once payments are linked."""
        party = self.ref(obj, field, target, field, required=True)
        assert party is not None
        if current and current[field]["value"] != obj[field]["value"] and current.get("LinkedTxn"):
            raise errors.business(f"the {noun} with payments cannot change", field)
        return party

    def _document_term(self, obj: dict[str, Any], party_term: dict[str, Any] | None) -> dict[str, Any] | None:
        """SalesTermRef, defaulting to the party's own terms."""
        if obj.get("SalesTermRef") is None and party_term:
            obj["SalesTermRef"] = {"value": party_term["value"]}
        return self.ref(obj, "SalesTermRef", "Term", "SalesTermRef")

    def _document_totals(
        self, obj: dict[str, Any], current: dict[str, Any] | None, total: int, term: dict[str, Any] | None, today: int
    ) -> None:
        """TxnDate, DueDate = TxnDate + the term's days, TotalAmt from the lines, Balance = TotalAmt - paid."""
        txn_day = self.date_field(obj, "TxnDate", today)
        self.date_field(obj, "DueDate", (txn_day or today) + int((term or {}).get("DueDays", 0)))
        paid = _cents(current["TotalAmt"]) - _cents(current["Balance"]) if current else 0
        if total < paid:
            raise errors.business("the new total is less than the amount already paid", "Line.Amount")
        obj["TotalAmt"] = money(total)
        obj["Balance"] = money(total - paid)
        if current and current.get("LinkedTxn"):
            obj["LinkedTxn"] = current["LinkedTxn"]
        else:
            obj.pop("LinkedTxn", None)

    # -- money flows --------------------------------------------------------------------------------
    def contributions(self, name: str, obj: dict[str, Any] | None) -> Contributions:
        out: Contributions = defaultdict(int)
        if obj is None:
            return out
        ctx = self.company.seeded.ctx
        if name == "Bill":
            total = _cents(obj.get("TotalAmt"))
            out[("Vendor", int(obj["VendorRef"]["value"]), "Balance")] += total
            out[("Account", int(obj["APAccountRef"]["value"]), "CurrentBalance")] += total
        elif name == "Invoice":
            total = _cents(obj.get("TotalAmt"))
            out[("Customer", int(obj["CustomerRef"]["value"]), "Balance")] += total
            out[("Account", ctx.ar_id, "CurrentBalance")] += total
        elif name in PAYMENT_LINKS:
            target, _ = PAYMENT_LINKS[name]
            party = ("Vendor", "VendorRef") if name == "BillPayment" else ("Customer", "CustomerRef")
            for line in obj.get("Line") or []:
                amount = _cents(line.get("Amount"))
                for txn in line.get("LinkedTxn") or []:
                    out[(target, int(txn["TxnId"]), "Balance")] -= amount
            # The whole payment leaves A/P (A/R) and the party's balance: what is not applied to a line
            # stays as the payment's unapplied credit (QBO's UnappliedAmt), as the ledger posts it.
            total = _cents(obj.get("TotalAmt"))
            out[(party[0], int(obj[party[1]]["value"]), "Balance")] -= total
            if name == "BillPayment":
                out[("Account", ctx.ap_id, "CurrentBalance")] -= total
                if obj.get("PayType") == "CreditCard":
                    out[("Account", int(obj["CreditCardPayment"]["CCAccountRef"]["value"]), "CurrentBalance")] += total
                else:
                    out[("Account", int(obj["CheckPayment"]["BankAccountRef"]["value"]), "CurrentBalance")] -= total
            else:
                out[("Account", ctx.ar_id, "CurrentBalance")] -= total
                out[("Account", int(obj["DepositToAccountRef"]["value"]), "CurrentBalance")] += total
        elif name == "Purchase":
            total = _cents(obj.get("TotalAmt"))
            account = int(obj["AccountRef"]["value"])
            sign = 1 if obj.get("PaymentType") == "CreditCard" else -1
            out[("Account", account, "CurrentBalance")] += sign * total
        elif name in book_rules.RULES:
            book_rules.contributions(self, name, obj, out)
        return out

    def links(self, name: str, obj: dict[str, Any] | None) -> set[int]:
        """Ids of the bills/invoices a (bill) payment currently pays (lines with an amount)."""
        if obj is None or name not in PAYMENT_LINKS:
            return set()
        return {
            int(txn["TxnId"])
            for line in obj.get("Line") or []
            if _cents(line.get("Amount")) > 0
            for txn in line.get("LinkedTxn") or []
        }

    # -- the write ----------------------------------------------------------------------------------
    def run(self, body: Any, operation: str | None) -> tuple[dict[str, Any], list[Change]]:
        name = self.spec.name
        if not isinstance(body, dict):
            raise errors.validation(errors.INVALID_VALUE, "Invalid request body", "the body must be a JSON object")
        if operation not in (None, "delete", "void", "update", "create"):
            raise errors.validation(
                errors.UNSUPPORTED_OPERATION, "Unsupported Operation", f"operation {operation!r} is not supported"
            )
        raw_id = body.get("Id")
        current: dict[str, Any] | None = None
        if raw_id not in (None, ""):
            current = self.company.get(name, raw_id)
            if current is None:
                raise errors.not_found(name, str(raw_id))
            sent = body.get("SyncToken")
            if sent is None:
                raise errors.validation(
                    errors.REQUIRED_MISSING,
                    "Required param missing",
                    "SyncToken is required to change an object",
                    "SyncToken",
                )
            if str(sent) != current["SyncToken"]:
                raise errors.stale_object(name, str(raw_id), str(sent), current["SyncToken"])
        elif operation in ("delete", "void"):
            raise errors.validation(errors.REQUIRED_MISSING, "Required param missing", "Id is required", "Id")

        object_id = int(current["Id"]) if current else self.table.next_id
        new: dict[str, Any] | None
        if operation == "delete":
            assert current is not None
            if self.spec.strategy == SINGLETON:
                raise errors.validation(
                    errors.BUSINESS_VALIDATION, "Operation Delete is not supported", f"{name} cannot be deleted"
                )
            if self.spec.name_list:
                raise errors.validation(
                    errors.BUSINESS_VALIDATION,
                    "Operation Delete is not supported",
                    f"{name} is a name list: it cannot be deleted, make it inactive with Active=false instead",
                )
            self._refuse_if_paid(current, "deleted")
            new = None
        elif operation == "void":
            assert current is not None
            if not self.spec.voidable:
                raise errors.validation(
                    errors.UNSUPPORTED_OPERATION, "Operation Void is not supported", f"{name} cannot be voided"
                )
            self._refuse_if_paid(current, "voided")
            new = self._voided(current)
        else:
            incoming = {k: copy.deepcopy(v) for k, v in body.items() if k not in SERVER_FIELDS}
            if current is not None and body.get("sparse") is True:
                merged = {k: copy.deepcopy(v) for k, v in current.items() if k not in SERVER_FIELDS}
                merged.update(incoming)
            else:
                merged = incoming
            new = self.normalise(merged, current, object_id)

        # Money flows: apply the difference of contributions to the objects involved.
        before, after = self.contributions(name, current), self.contributions(name, new)
        deltas = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}
        touched: dict[tuple[str, int], dict[str, Any]] = {}

        def touch(target: str, target_id: int) -> dict[str, Any]:
            key = (target, target_id)
            if key not in touched:
                found = self.company.get(target, target_id)
                if found is None:
                    raise errors.validation(
                        errors.INVALID_REFERENCE, "Invalid Reference Id", f"{target} {target_id} was not found"
                    )
                touched[key] = copy.deepcopy(found)
            return touched[key]

        for (target, target_id, field), delta in sorted(deltas.items()):
            if delta == 0:
                continue
            obj = touch(target, target_id)
            value = _cents(obj.get(field)) + delta
            if field == "Balance" and target in ("Bill", "Invoice") and value < 0:
                raise errors.business(
                    f"the amount paid exceeds the open balance of {target} {target_id}", "Line.Amount"
                )
            obj[field] = money(value)
            if field == "Balance" and target == "Customer":
                obj["BalanceWithJobs"] = obj[field]
            if field == "CurrentBalance":
                obj["CurrentBalanceWithSubAccounts"] = obj[field]
        if name in PAYMENT_LINKS:
            target, txn_type = PAYMENT_LINKS[name]
            old_links, new_links = self.links(name, current), self.links(name, new)
            for target_id in sorted(old_links ^ new_links):
                obj = touch(target, target_id)
                linked = [t for t in obj.get("LinkedTxn", []) if t.get("TxnId") != str(object_id)]
                if target_id in new_links:
                    linked.append({"TxnId": str(object_id), "TxnType": txn_type})
                if linked:
                    obj["LinkedTxn"] = linked
                else:
                    obj.pop("LinkedTxn", None)

        # Stamp and store: the written object first, then its side effects.
        stamp = iso(self.now)
        items: list[tuple[str, dict[str, Any], str, str, str]] = []
        if new is None:
            assert current is not None
            tombstone = {
                "Id": current["Id"],
                "MetaData": {"CreateTime": current["MetaData"]["CreateTime"], "LastUpdatedTime": stamp},
                "status": "Deleted",
            }
            items.append((name, tombstone, "delete", "Delete", current["SyncToken"]))
            response = {"Id": current["Id"], "status": "Deleted", "domain": "QBO"}
        else:
            created = current["MetaData"]["CreateTime"] if current else stamp
            sync = str(int(current["SyncToken"]) + 1) if current else "0"
            new = {"Id": str(object_id), "SyncToken": sync, **new}
            new["MetaData"] = {"CreateTime": created, "LastUpdatedTime": stamp}
            event = "Void" if operation == "void" else ("Update" if current else "Create")
            items.append((name, new, "update" if current else "create", event, sync))
            response = new
        for (target, _), obj in sorted(touched.items()):
            obj["SyncToken"] = str(int(obj["SyncToken"]) + 1)
            obj["MetaData"] = {**obj["MetaData"], "LastUpdatedTime": stamp}
            items.append((target, obj, "update", "Update", obj["SyncToken"]))
        changes = self.company.commit(items, self.now)
        return response, changes

    def _refuse_if_paid(self, current: dict[str, Any], verb: str) -> None:
        if self.spec.name in ("Bill", "Invoice") and (
            current.get("LinkedTxn") or _cents(current.get("Balance")) != _cents(current.get("TotalAmt"))
        ):
            raise errors.business(
                f"{self.spec.name} {current['Id']} has payments applied; remove them before it can be {verb}"
            )

    def _voided(self, current: dict[str, Any]) -> dict[str, Any]:
        """QBO's void: amounts to zero, balance zero, the note says Voided."""
        obj = copy.deepcopy(current)
        for key in SERVER_FIELDS:
            obj.pop(key, None)
        obj["domain"], obj["sparse"] = "QBO", False
        for line in obj.get("Line") or []:
            line["Amount"] = 0
        obj["TotalAmt"] = 0
        if "Balance" in obj:
            obj["Balance"] = 0
        if "UnappliedAmt" in obj:
            obj["UnappliedAmt"] = 0
        obj["PrivateNote"] = "Voided"
        return obj


def execute_write(
    company: Company, entity_name: str, body: Any, operation: str | None = None
) -> tuple[dict[str, Any], list[Change]]:
    """Apply one API write to a realm atomically; returns (response object, changes in order)."""
    spec = entity(entity_name)
    with company.lock:
        now = float(int(company.clock.now()))
        return WritePlanner(company, spec, now).run(body, operation)
