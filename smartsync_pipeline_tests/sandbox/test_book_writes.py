"""Writes of the rest of the books over real HTTP: QBO's shapes, SyncToken rules, validation, and the
balances each transaction moves by double entry."""

from __future__ import annotations

import pytest

from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.sandbox.api_session import SandboxApi


@pytest.fixture(scope="module")
def api():
    with SandboxProcess.start(seed=23) as sandbox:
        yield SandboxApi(sandbox)


def cents(value) -> int:
    return round(float(value) * 100)


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    [(_, obj)] = [(k, v) for k, v in response.json().items() if k != "time"]
    return obj


def fault_of(response) -> dict:
    assert response.status_code == 400, response.text
    return response.json()["Fault"]["Error"][0]


def account_id(api: SandboxApi, name: str) -> str:
    return api.rows(f"SELECT * FROM Account WHERE Name = '{name}'", "Account")[0]["Id"]


def balance(api: SandboxApi, entity: str, object_id: str, field: str) -> int:
    return cents(api.read(entity, object_id)[field])


def test_sales_receipt_moves_the_bank_and_voiding_moves_it_back(api):
    bank = account_id(api, "Checking")
    item = api.rows("SELECT * FROM Item MAXRESULTS 1", "Item")[0]
    before = balance(api, "Account", bank, "CurrentBalance")
    line = {"Amount": 120.5, "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1, "UnitPrice": 120.5}}  # fmt: skip
    receipt = ok(api.write("SalesReceipt", {"Line": [line], "DepositToAccountRef": {"value": bank}}))
    assert receipt["SyncToken"] == "0" and receipt["TotalAmt"] == 120.5
    assert receipt["Line"][-1]["DetailType"] == "SubTotalLineDetail"
    assert balance(api, "Account", bank, "CurrentBalance") == before + 12050
    stale = api.write("SalesReceipt", {"Id": receipt["Id"], "SyncToken": "7"}, "void")
    assert fault_of(stale)["code"] == "5010"
    voided = ok(api.write("SalesReceipt", {"Id": receipt["Id"], "SyncToken": "0"}, "void"))
    assert voided["SyncToken"] == "1" and voided["TotalAmt"] == 0
    assert balance(api, "Account", bank, "CurrentBalance") == before


def test_credit_memo_and_vendor_credit_lower_what_parties_owe(api):
    customer = api.rows("SELECT * FROM Customer MAXRESULTS 1", "Customer")[0]
    vendor = api.rows("SELECT * FROM Vendor MAXRESULTS 1", "Vendor")[0]
    item = api.rows("SELECT * FROM Item MAXRESULTS 1", "Item")[0]
    ar, ap = account_id(api, "Accounts Receivable (A/R)"), account_id(api, "Accounts Payable (A/P)")
    owed, ar_before = balance(api, "Customer", customer["Id"], "Balance"), balance(api, "Account", ar, "CurrentBalance")
    line = {"Amount": 40, "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 2, "UnitPrice": 20}}  # fmt: skip
    memo = ok(api.write("CreditMemo", {"CustomerRef": {"value": customer["Id"]}, "Line": [line]}))
    assert memo["Balance"] == memo["RemainingCredit"] == 40 and memo["ARAccountRef"]["value"] == ar
    assert balance(api, "Customer", customer["Id"], "Balance") == owed - 4000
    assert balance(api, "Account", ar, "CurrentBalance") == ar_before - 4000

    vendor_owed, ap_before = (
        balance(api, "Vendor", vendor["Id"], "Balance"),
        balance(api, "Account", ap, "CurrentBalance"),
    )
    expense = {"Amount": 15.25, "DetailType": "AccountBasedExpenseLineDetail",
               "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account_id(api, "Supplies")}}}  # fmt: skip
    credit = ok(api.write("VendorCredit", {"VendorRef": {"value": vendor["Id"]}, "Line": [expense]}))
    assert credit["Balance"] == 15.25
    assert balance(api, "Vendor", vendor["Id"], "Balance") == vendor_owed - 1525
    assert balance(api, "Account", ap, "CurrentBalance") == ap_before - 1525
    ok(api.write("VendorCredit", {"Id": credit["Id"], "SyncToken": credit["SyncToken"]}, "delete"))
    assert balance(api, "Vendor", vendor["Id"], "Balance") == vendor_owed
    assert api.get(f"vendorcredit/{credit['Id']}").status_code == 400


def test_journal_entries_must_balance_and_transfers_need_two_accounts(api):
    depreciation, accumulated = account_id(api, "Depreciation"), account_id(api, "Accumulated Depreciation")

    def line(posting: str, account: str, amount: float) -> dict:
        return {"Amount": amount, "DetailType": "JournalEntryLineDetail",
                "JournalEntryLineDetail": {"PostingType": posting, "AccountRef": {"value": account}}}  # fmt: skip

    unbalanced = api.write("JournalEntry", {"Line": [line("Debit", depreciation, 10), line("Credit", accumulated, 9)]})
    assert "must balance" in fault_of(unbalanced)["Detail"]
    fixed_asset = balance(api, "Account", accumulated, "CurrentBalance")
    entry = ok(api.write("JournalEntry", {"Line": [line("Debit", depreciation, 10), line("Credit", accumulated, 10)]}))
    assert entry["TotalAmt"] == 10
    assert balance(api, "Account", accumulated, "CurrentBalance") == fixed_asset - 1000  # an asset credited

    checking, savings = account_id(api, "Checking"), account_id(api, "Savings")
    same = api.write(
        "Transfer", {"FromAccountRef": {"value": checking}, "ToAccountRef": {"value": checking}, "Amount": 5}
    )
    assert "two different accounts" in fault_of(same)["Detail"]
    before = balance(api, "Account", checking, "CurrentBalance"), balance(api, "Account", savings, "CurrentBalance")
    ok(api.write("Transfer", {"FromAccountRef": {"value": checking}, "ToAccountRef": {"value": savings}, "Amount": 5}))
    assert balance(api, "Account", checking, "CurrentBalance") == before[0] - 500
    assert balance(api, "Account", savings, "CurrentBalance") == before[1] + 500


def test_singletons_and_lists_follow_qbo(api):
    info = api.read("CompanyInfo", "1")
    assert info["CompanyName"] and api.get(f"companyinfo/{api.realm_id}").json()["CompanyInfo"]["Id"] == "1"
    assert api.get("preferences").json()["Preferences"]["CurrencyPrefs"]["HomeCurrency"]["value"] == "USD"
    assert "update it" in fault_of(api.write("CompanyInfo", {"CompanyName": "Second"}))["Detail"]
    refused = api.write("CompanyInfo", {"Id": "1", "SyncToken": info["SyncToken"]}, "delete")
    assert fault_of(refused)["code"] == "6000"
    renamed = ok(api.write("CompanyInfo", {"Id": "1", "SyncToken": info["SyncToken"], "sparse": True,
                                           "CompanyName": "Renamed Co"}))  # fmt: skip
    assert renamed["SyncToken"] == str(int(info["SyncToken"]) + 1) and renamed["LegalName"] == info["LegalName"]

    existing = api.rows("SELECT * FROM Class", "Class")[0]["Name"]
    assert fault_of(api.write("Class", {"Name": existing}))["code"] == "6240"
    created = ok(api.write("Class", {"Name": "Online"}))
    assert created["Active"] is True and created["FullyQualifiedName"] == "Online"
    refused = api.write("Class", {"Id": created["Id"], "SyncToken": "0"}, "delete")
    assert "make it inactive" in fault_of(refused)["Detail"]
    hidden = ok(api.write("Class", {"Id": created["Id"], "SyncToken": "0", "sparse": True, "Active": False}))
    assert hidden["Active"] is False
    assert "Online" not in {c["Name"] for c in api.rows("SELECT * FROM Class", "Class")}
    assert "Online" in {c["Name"] for c in api.rows("SELECT * FROM Class WHERE Active IN (true, false)", "Class")}


def test_time_activity_needs_its_worker_and_is_outside_cdc(api):
    employee = api.rows("SELECT * FROM Employee MAXRESULTS 1", "Employee")[0]
    missing = api.write("TimeActivity", {"NameOf": "Employee", "Hours": 2})
    assert fault_of(missing)["code"] == "2020"
    entry = ok(api.write("TimeActivity", {"NameOf": "Employee", "EmployeeRef": {"value": employee["Id"]},
                                          "Hours": 2, "Minutes": 30, "HourlyRate": 80}))  # fmt: skip
    assert entry["EmployeeRef"]["name"] == employee["DisplayName"] and entry["BillableStatus"] == "Billable"
    cdc = api.cdc("TimeActivity", "2026-01-01T00:00:00-08:00")
    assert cdc.status_code == 400 and "does not support" in cdc.text
