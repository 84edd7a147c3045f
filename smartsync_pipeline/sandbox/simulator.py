"""Business activity on demand: bills and invoices arrive, get paid, edited, deleted and voided.

Every operation goes through the same write path as the API (``execute_write``), so its side effects,
journal records and webhooks are exactly those of real API calls. The clock moves a few seconds per
operation, and sometimes not at all, so several changes share one LastUpdatedTime second.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from smartsync_pipeline.sandbox.api_errors import ApiFault
from smartsync_pipeline.sandbox.qbo_time import day_number, day_text, parse_day
from smartsync_pipeline.sandbox.store import Change, Company
from smartsync_pipeline.sandbox.write_rules import execute_write

CLOCK_STEPS = (0, 0, 1, 1, 2, 3, 5, 8)
NOTES = ("Approved by ops", "Disputed line resolved", "Per updated quote", "Paid by wire next week")


class ActivitySimulator:
    def __init__(self, company: Company, seed: int) -> None:
        self.company = company
        self.rng = random.Random(seed)
        self.changes: list[Change] = []
        self.turns: dict[str, int] = {}
        self.operations: list[tuple[Callable[[], bool], int]] = [
            (self.create_bill, 14),
            (self.create_invoice, 14),
            (self.create_purchase, 6),
            (self.pay_bills, 12),
            (self.receive_payment, 12),
            (self.edit_bill, 8),
            (self.edit_invoice, 8),
            (self.edit_vendor_email, 4),
            (self.deactivate_customer, 2),
            (self.delete_bill, 3),
            (self.delete_purchase, 2),
            (self.delete_bill_payment, 3),
            (self.void_invoice, 2),
            (self.void_payment, 3),
            # The rest of the books: every entity gets creates, edits and (where QBO allows) deletes/voids.
            (self.create_sales_receipt, 5),
            (self.void_sales_receipt, 1),
            (self.create_credit_memo, 2),
            (self.create_vendor_credit, 2),
            (self.create_refund_receipt, 1),
            (self.create_deposit, 2),
            (self.create_transfer, 2),
            (self.create_journal_entry, 1),
            (self.create_estimate, 2),
            (self.create_purchase_order, 2),
            (self.create_time_activity, 4),
            (self.edit_document, 4),
            (self.delete_document, 4),
            (self.edit_list_entry, 3),
            (self.create_list_entry, 1),
            (self.attach_file, 1),
            (self.edit_company, 1),
        ]

    def run(self, operations: int) -> list[Change]:
        funcs = [f for f, _ in self.operations]
        weights = [w for _, w in self.operations]
        for _ in range(operations):
            self.company.clock.advance(self.rng.choice(CLOCK_STEPS))
            operation = self.rng.choices(funcs, weights)[0]
            if not operation():
                self.create_bill()
        return self.changes

    # -- plumbing -------------------------------------------------------------------------------------
    def write(self, entity: str, body: dict[str, Any], operation: str | None = None) -> bool:
        try:
            _, changes = execute_write(self.company, entity, body, operation)
        except ApiFault:
            return False
        self.changes.extend(changes)
        return True

    def find(self, entity: str, accept: Callable[[dict[str, Any]], bool], tries: int = 60) -> dict[str, Any] | None:
        """A random live object that ``accept`` likes (recent ids are favoured: that is where work is)."""
        table = self.company.table(entity)
        top = table.next_id - 1
        if top < 1:
            return None
        for _ in range(tries):
            if self.rng.random() < 0.6:
                low = max(1, top - max(50, top // 10))
                object_id = self.rng.randint(low, top)
            else:
                object_id = self.rng.randint(1, top)
            obj = self.company.get(entity, object_id)
            if obj is not None and accept(obj):
                return obj
        return None

    def account_ids(self, account_type: str) -> list[str]:
        ctx = self.company.seeded.ctx
        return [str(i + 1) for i, t in enumerate(ctx.account_types) if t == account_type]

    def today(self) -> int:
        return day_number(self.company.clock.now())

    def amount(self, low: float, high: float) -> float:
        return round(self.rng.uniform(low, high), 2)

    # -- operations -----------------------------------------------------------------------------------
    def create_bill(self) -> bool:
        vendor = self.find("Vendor", lambda v: v.get("Active", True))
        if vendor is None:
            return False
        expense = [str(i) for i in self.company.seeded.ctx.expense_account_ids]
        lines = [
            {
                "Amount": self.amount(20, 2500),
                "DetailType": "AccountBasedExpenseLineDetail",
                "AccountBasedExpenseLineDetail": {"AccountRef": {"value": self.rng.choice(expense)}},
            }
            for _ in range(self.rng.randint(1, 3))
        ]
        body = {
            "VendorRef": {"value": vendor["Id"]},
            "TxnDate": day_text(self.today() - self.rng.randint(0, 3)),
            "DocNumber": str(self.rng.randint(100_000, 999_999)),
            "Line": lines,
        }
        return self.write("Bill", body)

    def create_invoice(self) -> bool:
        customer = self.find("Customer", lambda c: c.get("Active", True))
        if customer is None:
            return False
        lines = []
        for _ in range(self.rng.randint(1, 3)):
            item = self.find("Item", lambda i: i.get("Active", True))
            if item is None:
                return False
            qty = self.rng.randint(1, 5)
            lines.append(
                {
                    "Amount": round(qty * float(item.get("UnitPrice", 0) or 10), 2),
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": qty,
                                            "UnitPrice": item.get("UnitPrice", 10)},
                }
            )  # fmt: skip
        body = {"CustomerRef": {"value": customer["Id"]}, "TxnDate": day_text(self.today()), "Line": lines}
        return self.write("Invoice", body)

    def create_purchase(self) -> bool:
        vendor = self.find("Vendor", lambda v: v.get("Active", True))
        if vendor is None:
            return False
        payment_type = self.rng.choice(("Cash", "Check", "CreditCard"))
        account = self.rng.choice(self.account_ids("Credit Card" if payment_type == "CreditCard" else "Bank")[:3])
        expense = [str(i) for i in self.company.seeded.ctx.expense_account_ids]
        body = {
            "PaymentType": payment_type,
            "AccountRef": {"value": account},
            "EntityRef": {"value": vendor["Id"], "type": "Vendor"},
            "TxnDate": day_text(self.today()),
            "Line": [
                {
                    "Amount": self.amount(5, 900),
                    "DetailType": "AccountBasedExpenseLineDetail",
                    "AccountBasedExpenseLineDetail": {"AccountRef": {"value": self.rng.choice(expense)}},
                }
            ],
        }
        return self.write("Purchase", body)

    def pay_bills(self) -> bool:
        bill = self.find("Bill", lambda b: float(b.get("Balance", 0)) > 0)
        if bill is None:
            return False
        bills = [bill]
        if self.rng.random() < 0.3:
            other = self.find(
                "Bill",
                lambda b: (
                    b["VendorRef"]["value"] == bill["VendorRef"]["value"]
                    and b["Id"] != bill["Id"]
                    and float(b.get("Balance", 0)) > 0
                ),
                tries=20,
            )
            if other is not None:
                bills.append(other)
        lines = []
        for b in bills:
            balance = float(b["Balance"])
            pay = balance if self.rng.random() < 0.7 else round(balance * self.rng.uniform(0.3, 0.9), 2)
            lines.append({"Amount": max(0.01, pay), "LinkedTxn": [{"TxnId": b["Id"], "TxnType": "Bill"}]})
        total = round(sum(line["Amount"] for line in lines), 2)
        body: dict[str, Any] = {"VendorRef": {"value": bill["VendorRef"]["value"]}, "TotalAmt": total, "Line": lines,
                                "TxnDate": day_text(self.today())}  # fmt: skip
        if self.rng.random() < 0.8:
            body["PayType"] = "Check"
            body["CheckPayment"] = {"BankAccountRef": {"value": self.rng.choice(self.account_ids("Bank")[:3])}}
        else:
            body["PayType"] = "CreditCard"
            body["CreditCardPayment"] = {"CCAccountRef": {"value": self.rng.choice(self.account_ids("Credit Card"))}}
        return self.write("BillPayment", body)

    def receive_payment(self) -> bool:
        invoice = self.find("Invoice", lambda i: float(i.get("Balance", 0)) > 0)
        if invoice is None:
            return False
        balance = float(invoice["Balance"])
        pay = balance if self.rng.random() < 0.75 else round(balance * self.rng.uniform(0.3, 0.9), 2)
        pay = max(0.01, pay)
        body = {
            "CustomerRef": {"value": invoice["CustomerRef"]["value"]},
            "TotalAmt": pay,
            "DepositToAccountRef": {"value": self.rng.choice(self.account_ids("Bank")[:3])},
            "TxnDate": day_text(self.today()),
            "Line": [{"Amount": pay, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        }
        return self.write("Payment", body)

    def edit_bill(self) -> bool:
        bill = self.find("Bill", lambda b: float(b.get("Balance", 0)) > 0)
        if bill is None:
            return False
        body: dict[str, Any] = {"Id": bill["Id"], "SyncToken": bill["SyncToken"], "sparse": True}
        choice = self.rng.randrange(3)
        if choice == 0:
            body["DueDate"] = day_text(parse_day(bill["DueDate"]) + self.rng.randint(7, 30))
        elif choice == 1:
            body["PrivateNote"] = self.rng.choice(NOTES)
        else:
            lines = [dict(line) for line in bill["Line"]]
            lines[0]["Amount"] = round(float(lines[0]["Amount"]) + self.amount(1, 300), 2)
            body["Line"] = lines
        return self.write("Bill", body)

    def edit_invoice(self) -> bool:
        invoice = self.find("Invoice", lambda i: float(i.get("Balance", 0)) > 0)
        if invoice is None:
            return False
        body: dict[str, Any] = {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"], "sparse": True}
        choice = self.rng.randrange(3)
        if choice == 0:
            body["DueDate"] = day_text(parse_day(invoice["DueDate"]) + self.rng.randint(7, 30))
        elif choice == 1:
            body["CustomerMemo"] = {"value": self.rng.choice(NOTES)}
        else:
            lines = [dict(line) for line in invoice["Line"] if line.get("DetailType") == "SalesItemLineDetail"]
            detail = dict(lines[0]["SalesItemLineDetail"])
            detail["Qty"] = int(detail.get("Qty", 1)) + 1
            lines[0]["SalesItemLineDetail"] = detail
            lines[0]["Amount"] = round(detail["Qty"] * float(detail.get("UnitPrice", 0)), 2)
            body["Line"] = lines
        return self.write("Invoice", body)

    def edit_vendor_email(self) -> bool:
        vendor = self.find("Vendor", lambda v: True)
        if vendor is None:
            return False
        address = f"ap{self.rng.randint(1, 999)}@{vendor['Id']}.vendor.example.com"
        body = {"Id": vendor["Id"], "SyncToken": vendor["SyncToken"], "sparse": True,
                "PrimaryEmailAddr": {"Address": address}}  # fmt: skip
        return self.write("Vendor", body)

    def deactivate_customer(self) -> bool:
        customer = self.find("Customer", lambda c: c.get("Active", True))
        if customer is None:
            return False
        body = {"Id": customer["Id"], "SyncToken": customer["SyncToken"], "sparse": True, "Active": False}
        return self.write("Customer", body)

    def delete_bill(self) -> bool:
        bill = self.find("Bill", lambda b: not b.get("LinkedTxn") and b.get("Balance") == b.get("TotalAmt"))
        if bill is None:
            return False
        return self.write("Bill", {"Id": bill["Id"], "SyncToken": bill["SyncToken"]}, "delete")

    def delete_purchase(self) -> bool:
        purchase = self.find("Purchase", lambda p: True)
        if purchase is None:
            return False
        return self.write("Purchase", {"Id": purchase["Id"], "SyncToken": purchase["SyncToken"]}, "delete")

    def delete_bill_payment(self) -> bool:
        payment = self.find("BillPayment", lambda p: True)
        if payment is None:
            return False
        return self.write("BillPayment", {"Id": payment["Id"], "SyncToken": payment["SyncToken"]}, "delete")

    def void_invoice(self) -> bool:
        invoice = self.find(
            "Invoice",
            lambda i: (
                not i.get("LinkedTxn") and float(i.get("TotalAmt", 0)) > 0 and i.get("Balance") == i.get("TotalAmt")
            ),
        )
        if invoice is None:
            return False
        return self.write("Invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, "void")

    def void_payment(self) -> bool:
        payment = self.find("Payment", lambda p: float(p.get("TotalAmt", 0)) > 0)
        if payment is None:
            return False
        return self.write("Payment", {"Id": payment["Id"], "SyncToken": payment["SyncToken"]}, "void")

    # -- the rest of the books ------------------------------------------------------------------------
    def turn(self, kind: str, entities: Sequence[str]) -> str:
        """The next entity of ``entities`` for this kind of operation: round robin, so a long enough run
        touches every one of them."""
        count = self.turns.get(kind, 0)
        self.turns[kind] = count + 1
        return entities[count % len(entities)]

    def sales_lines(self) -> list[dict[str, Any]] | None:
        lines = []
        for _ in range(self.rng.randint(1, 2)):
            item = self.find("Item", lambda i: i.get("Active", True))
            if item is None:
                return None
            qty = self.rng.randint(1, 3)
            price = float(item.get("UnitPrice", 0) or 10)
            detail = {"ItemRef": {"value": item["Id"]}, "Qty": qty, "UnitPrice": price}
            lines.append({"Amount": round(qty * price, 2), "DetailType": "SalesItemLineDetail",
                          "SalesItemLineDetail": detail})  # fmt: skip
        return lines

    def expense_lines(self, low: float = 20, high: float = 900) -> list[dict[str, Any]]:
        expense = [str(i) for i in self.company.seeded.ctx.expense_account_ids]
        return [{"Amount": self.amount(low, high), "DetailType": "AccountBasedExpenseLineDetail",
                 "AccountBasedExpenseLineDetail": {"AccountRef": {"value": self.rng.choice(expense)}}}]  # fmt: skip

    def sales_form(self, entity: str, **extra: Any) -> bool:
        customer = self.find("Customer", lambda c: c.get("Active", True))
        lines = self.sales_lines()
        if customer is None or lines is None:
            return False
        body = {"CustomerRef": {"value": customer["Id"]}, "TxnDate": day_text(self.today()), "Line": lines, **extra}
        return self.write(entity, body)

    def create_sales_receipt(self) -> bool:
        bank = self.rng.choice(self.account_ids("Bank")[:3])
        return self.sales_form("SalesReceipt", DepositToAccountRef={"value": bank}, PaymentMethodRef={"value": "1"})

    def void_sales_receipt(self) -> bool:
        receipt = self.find("SalesReceipt", lambda r: float(r.get("TotalAmt", 0)) > 0)
        if receipt is None:
            return False
        return self.write("SalesReceipt", {"Id": receipt["Id"], "SyncToken": receipt["SyncToken"]}, "void")

    def create_credit_memo(self) -> bool:
        return self.sales_form("CreditMemo")

    def create_refund_receipt(self) -> bool:
        return self.sales_form("RefundReceipt", DepositToAccountRef={"value": self.account_ids("Bank")[0]})

    def create_estimate(self) -> bool:
        return self.sales_form("Estimate", ExpirationDate=day_text(self.today() + 30))

    def create_vendor_credit(self) -> bool:
        vendor = self.find("Vendor", lambda v: v.get("Active", True))
        if vendor is None:
            return False
        body = {"VendorRef": {"value": vendor["Id"]}, "TxnDate": day_text(self.today()), "Line": self.expense_lines()}
        return self.write("VendorCredit", body)

    def create_purchase_order(self) -> bool:
        vendor = self.find("Vendor", lambda v: v.get("Active", True))
        if vendor is None:
            return False
        body = {"VendorRef": {"value": vendor["Id"]}, "Line": self.expense_lines(100, 5000),
                "DueDate": day_text(self.today() + 14)}  # fmt: skip
        return self.write("PurchaseOrder", body)

    def create_deposit(self) -> bool:
        income = self.account_ids("Other Income")
        body = {"DepositToAccountRef": {"value": self.rng.choice(self.account_ids("Bank")[:3])},
                "TxnDate": day_text(self.today()),
                "Line": [{"Amount": self.amount(50, 3000), "DetailType": "DepositLineDetail",
                          "DepositLineDetail": {"AccountRef": {"value": self.rng.choice(income)}}}]}  # fmt: skip
        return self.write("Deposit", body)

    def create_transfer(self) -> bool:
        source, target = self.rng.sample(self.account_ids("Bank")[:3], 2)
        body = {"FromAccountRef": {"value": source}, "ToAccountRef": {"value": target},
                "Amount": self.amount(100, 5000), "TxnDate": day_text(self.today())}  # fmt: skip
        return self.write("Transfer", body)

    def create_journal_entry(self) -> bool:
        amount = self.amount(100, 2000)
        debit = next(i for i, n in enumerate(self.company.seeded.ctx.account_names, 1) if n == "Depreciation")
        credit = next(i for i, n in enumerate(self.company.seeded.ctx.account_names, 1) if "Accumulated" in n)
        lines = [{"Amount": amount, "DetailType": "JournalEntryLineDetail",
                  "JournalEntryLineDetail": {"PostingType": posting, "AccountRef": {"value": str(account)}}}
                 for posting, account in (("Debit", debit), ("Credit", credit))]  # fmt: skip
        return self.write("JournalEntry", {"TxnDate": day_text(self.today()), "Line": lines,
                                           "PrivateNote": "Monthly depreciation"})  # fmt: skip

    def create_time_activity(self) -> bool:
        employee = self.find("Employee", lambda e: e.get("Active", True))
        customer = self.find("Customer", lambda c: c.get("Active", True))
        if employee is None or customer is None:
            return False
        body = {"NameOf": "Employee", "EmployeeRef": {"value": employee["Id"]},
                "CustomerRef": {"value": customer["Id"]}, "Hours": self.rng.randint(1, 8),
                "Minutes": self.rng.choice((0, 15, 30, 45)), "HourlyRate": float(self.rng.randint(40, 150)),
                "TxnDate": day_text(self.today())}  # fmt: skip
        return self.write("TimeActivity", body)

    # Edits and deletes of the other documents: one field each, through a sparse update.
    EDITS = {
        "SalesReceipt": lambda self, o: {"PrivateNote": self.rng.choice(NOTES)},
        "CreditMemo": lambda self, o: {"PrivateNote": self.rng.choice(NOTES)},
        "VendorCredit": lambda self, o: {"PrivateNote": self.rng.choice(NOTES)},
        "Deposit": lambda self, o: {"PrivateNote": self.rng.choice(NOTES)},
        "Transfer": lambda self, o: {"Amount": round(float(o["Amount"]) + self.amount(1, 200), 2)},
        "JournalEntry": lambda self, o: {"PrivateNote": self.rng.choice(NOTES)},
        "Estimate": lambda self, o: {"TxnStatus": self.rng.choice(("Accepted", "Closed", "Rejected"))},
        "PurchaseOrder": lambda self, o: {"POStatus": "Closed"},
        "TimeActivity": lambda self, o: {"Description": self.rng.choice(NOTES)},
        "RefundReceipt": lambda self, o: {"PrivateNote": self.rng.choice(NOTES)},
    }

    def edit_document(self) -> bool:
        entity = self.turn("edit", sorted(self.EDITS))
        obj = self.find(entity, lambda o: True)
        if obj is None:
            return False
        body = {"Id": obj["Id"], "SyncToken": obj["SyncToken"], "sparse": True, **self.EDITS[entity](self, obj)}
        return self.write(entity, body)

    def delete_document(self) -> bool:
        entity = self.turn("delete", sorted((*self.EDITS, "Attachable")))
        obj = self.find(entity, lambda o: True)
        if obj is None:
            return False
        return self.write(entity, {"Id": obj["Id"], "SyncToken": obj["SyncToken"]}, "delete")

    LISTS = ("Class", "Department", "CustomerType", "PaymentMethod", "TaxCode", "TaxRate", "Budget",
             "CompanyCurrency", "Employee", "TaxAgency", "Item", "Term")  # fmt: skip

    def edit_list_entry(self) -> bool:
        entity = self.turn("list", self.LISTS)
        obj = self.find(entity, lambda o: True)
        if obj is None:
            return False
        body: dict[str, Any] = {"Id": obj["Id"], "SyncToken": obj["SyncToken"], "sparse": True}
        if "Active" in obj and self.rng.random() < 0.3:
            body["Active"] = not obj["Active"]
        elif entity == "Employee":
            body["PrimaryEmailAddr"] = {"Address": f"staff{self.rng.randint(1, 999)}@staff.example.com"}
        elif entity == "TaxAgency":
            body["TaxTrackedOnPurchases"] = not obj.get("TaxTrackedOnPurchases", False)
        elif entity == "TaxRate":
            body["RateValue"] = round(float(obj.get("RateValue", 0)) + 0.25, 2)
        else:
            body["Active"] = True
            body["sparse"] = True
            body[{"CompanyCurrency": "Name"}.get(entity, "Name")] = f"{obj.get('Name', entity)} {obj['SyncToken']}"
        return self.write(entity, body)

    def create_list_entry(self) -> bool:
        entity = self.rng.choice(("Class", "Department", "CustomerType", "Employee"))
        label = f"{entity} {self.rng.randint(100, 99_999)}"
        body = (
            {"DisplayName": label, "GivenName": "Temp", "FamilyName": label}
            if entity == "Employee"
            else {"Name": label}
        )
        return self.write(entity, body)

    def attach_file(self) -> bool:
        bill = self.find("Bill", lambda b: True)
        if bill is None:
            return False
        body = {"FileName": f"receipt-{bill['Id']}.pdf", "ContentType": "application/pdf", "Size": 48_213,
                "AttachableRef": [{"EntityRef": {"type": "Bill", "value": bill["Id"]}}]}  # fmt: skip
        return self.write("Attachable", body)

    def edit_company(self) -> bool:
        entity = self.rng.choice(("CompanyInfo", "Preferences"))
        obj = self.company.get(entity, 1)
        if obj is None:
            return False
        body: dict[str, Any] = {"Id": obj["Id"], "SyncToken": obj["SyncToken"], "sparse": True}
        if entity == "CompanyInfo":
            body["PrimaryPhone"] = {"FreeFormNumber": f"(415) 555-{self.rng.randint(1000, 9999)}"}
        else:
            body["SalesFormsPrefs"] = {**obj.get("SalesFormsPrefs", {}), "AllowEstimates": self.rng.random() < 0.8}
        return self.write(entity, body)


def simulate(company: Company, operations: int, seed: int) -> list[Change]:
    """Run ``operations`` business operations on one realm; the changes they made, in order."""
    return ActivitySimulator(company, seed).run(operations)
