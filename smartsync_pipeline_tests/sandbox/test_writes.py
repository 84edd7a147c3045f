"""Reads and writes over real HTTP: SyncToken, 5010, sparse/full updates, delete, void, validation,
and the side effects that keep the books consistent."""

from __future__ import annotations

import pytest

from smartsync_pipeline.sandbox.process import SandboxProcess
from smartsync_pipeline_tests.sandbox.api_session import SandboxApi


@pytest.fixture(scope="module")
def api():
    """One sandbox for this module: every test reads what it needs first and asserts on differences,
    so the tests do not depend on each other's writes."""
    with SandboxProcess.start(seed=21) as sandbox:
        yield SandboxApi(sandbox)


def fault_of(response):
    assert response.status_code == 400, response.text
    fault = response.json()["Fault"]
    return fault["type"], fault["Error"][0]


def open_unpaid_bill(api):
    rows = api.rows("SELECT * FROM Bill WHERE Balance > '0' ORDERBY Id DESC MAXRESULTS 1000", "Bill")
    return next(b for b in rows if not b.get("LinkedTxn"))


def advance(api, seconds=3):
    api.sandbox.control("clock", {"advance_seconds": seconds})


def test_read_by_id_and_unknown_id(api):
    bill = api.read("Bill", "5")
    assert bill["Id"] == "5" and bill["domain"] == "QBO" and bill["sparse"] is False
    assert isinstance(bill["SyncToken"], str) and bill["SyncToken"].isdigit()
    assert bill["CurrencyRef"] == {"value": "USD", "name": "United States Dollar"}
    detail = bill["Line"][0]["AccountBasedExpenseLineDetail"]
    assert set(detail["AccountRef"]) == {"value", "name"}
    _, error = fault_of(api.get("bill/999999"))
    assert error["code"] == "610"


def test_create_bill_computes_totals_and_raises_vendor_balance(api):
    vendor = api.read("Vendor", "4")
    ap_before = api.read("Account", "13")
    body = {
        "VendorRef": {"value": "4"},
        "Line": [
            {"Amount": 100.25, "DetailType": "AccountBasedExpenseLineDetail",
             "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "40"}}},
            {"Amount": "49.75", "DetailType": "AccountBasedExpenseLineDetail",
             "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "41"}}},
        ],
    }  # fmt: skip
    response = api.write("Bill", body)
    assert response.status_code == 200, response.text
    bill = response.json()["Bill"]
    assert bill["SyncToken"] == "0" and int(bill["Id"]) > 250
    assert bill["TotalAmt"] == 150.0 and bill["Balance"] == 150.0
    assert bill["VendorRef"] == {"value": "4", "name": vendor["DisplayName"]}
    assert bill["APAccountRef"]["value"] == "13"
    assert bill["MetaData"]["CreateTime"] == bill["MetaData"]["LastUpdatedTime"]
    assert api.read("Bill", bill["Id"]) == bill
    vendor_after = api.read("Vendor", "4")
    assert vendor_after["Balance"] == pytest.approx(vendor["Balance"] + 150.0)
    assert int(vendor_after["SyncToken"]) == int(vendor["SyncToken"]) + 1
    assert vendor_after["MetaData"]["LastUpdatedTime"] == bill["MetaData"]["LastUpdatedTime"]
    assert api.read("Account", "13")["CurrentBalance"] == pytest.approx(ap_before["CurrentBalance"] + 150.0)


def test_update_bumps_sync_token_and_time_and_stale_token_is_5010(api):
    bill = open_unpaid_bill(api)
    advance(api)
    response = api.write("Bill", {"Id": bill["Id"], "SyncToken": bill["SyncToken"], "sparse": True,
                                  "PrivateNote": "checked"})  # fmt: skip
    assert response.status_code == 200
    updated = response.json()["Bill"]
    assert int(updated["SyncToken"]) == int(bill["SyncToken"]) + 1
    assert updated["MetaData"]["LastUpdatedTime"] > bill["MetaData"]["LastUpdatedTime"]
    assert updated["MetaData"]["CreateTime"] == bill["MetaData"]["CreateTime"]
    assert updated["PrivateNote"] == "checked" and updated["Line"] == bill["Line"]

    stale = api.write("Bill", {"Id": bill["Id"], "SyncToken": bill["SyncToken"], "sparse": True, "PrivateNote": "x"})
    kind, error = fault_of(stale)
    assert (kind, error["code"], error["Message"]) == ("ValidationFault", "5010", "Stale Object Error")
    assert api.read("Bill", bill["Id"]) == updated

    _, error = fault_of(api.write("Bill", {"Id": bill["Id"], "sparse": True, "PrivateNote": "x"}))
    assert error["element"] == "SyncToken"


def test_full_update_replaces_but_keeps_id_and_metadata(api):
    bill = open_unpaid_bill(api)
    body = {k: v for k, v in bill.items() if k not in ("PrivateNote", "DocNumber")}
    body["Line"] = bill["Line"][:1]
    response = api.write("Bill", body)
    assert response.status_code == 200, response.text
    replaced = response.json()["Bill"]
    assert "PrivateNote" not in replaced and "DocNumber" not in replaced
    assert replaced["Id"] == bill["Id"]
    assert replaced["MetaData"]["CreateTime"] == bill["MetaData"]["CreateTime"]
    assert replaced["TotalAmt"] == bill["Line"][0]["Amount"] == replaced["Balance"]


def test_delete_and_what_cannot_be_deleted(api):
    bill = open_unpaid_bill(api)
    vendor = api.read("Vendor", bill["VendorRef"]["value"])
    count = api.count("SELECT COUNT(*) FROM Bill")
    response = api.write("Bill", {"Id": bill["Id"], "SyncToken": bill["SyncToken"]}, "delete")
    assert response.status_code == 200
    assert response.json()["Bill"] == {"Id": bill["Id"], "status": "Deleted", "domain": "QBO"}
    assert api.get(f"bill/{bill['Id']}").status_code == 400
    assert api.count("SELECT COUNT(*) FROM Bill") == count - 1
    assert bill["Id"] in api.all_objects("Bill")["deleted"]
    assert api.read("Vendor", vendor["Id"])["Balance"] == pytest.approx(vendor["Balance"] - bill["TotalAmt"])

    paid = api.rows("SELECT * FROM Bill WHERE Balance = '0' MAXRESULTS 1", "Bill")[0]
    _, error = fault_of(api.write("Bill", {"Id": paid["Id"], "SyncToken": paid["SyncToken"]}, "delete"))
    assert error["code"] == "6000"

    _, error = fault_of(api.write("Vendor", {"Id": vendor["Id"], "SyncToken": "0"}, "delete"))
    vendor = api.read("Vendor", vendor["Id"])
    _, error = fault_of(api.write("Vendor", {"Id": vendor["Id"], "SyncToken": vendor["SyncToken"]}, "delete"))
    assert "Active=false" in error["Detail"]
    assert api.read("Vendor", vendor["Id"])["Active"] is True


def test_name_lists_are_deactivated_instead(api):
    vendor = api.read("Vendor", "6")
    assert vendor["Active"]
    before = api.count("SELECT COUNT(*) FROM Vendor")
    response = api.write("Vendor", {"Id": "6", "SyncToken": vendor["SyncToken"], "sparse": True, "Active": False})
    assert response.status_code == 200
    assert api.count("SELECT COUNT(*) FROM Vendor") == before - 1
    assert "6" in [v["Id"] for v in api.rows("SELECT * FROM Vendor WHERE Active = false", "Vendor")]


def test_bill_payment_reduces_bill_vendor_and_bank_and_delete_restores(api):
    bill = open_unpaid_bill(api)
    vendor_id = bill["VendorRef"]["value"]
    vendor, bank = api.read("Vendor", vendor_id), api.read("Account", "1")
    advance(api)
    pay = round(bill["Balance"] / 2, 2)
    body = {
        "VendorRef": {"value": vendor_id},
        "PayType": "Check",
        "CheckPayment": {"BankAccountRef": {"value": "1"}},
        "TotalAmt": pay,
        "Line": [{"Amount": pay, "LinkedTxn": [{"TxnId": bill["Id"], "TxnType": "Bill"}]}],
    }
    response = api.write("BillPayment", body)
    assert response.status_code == 200, response.text
    payment = response.json()["BillPayment"]
    stamp = payment["MetaData"]["LastUpdatedTime"]

    bill_after = api.read("Bill", bill["Id"])
    assert bill_after["Balance"] == pytest.approx(bill["Balance"] - pay)
    assert int(bill_after["SyncToken"]) == int(bill["SyncToken"]) + 1
    assert bill_after["MetaData"]["LastUpdatedTime"] == stamp
    assert {"TxnId": payment["Id"], "TxnType": "BillPayment"} in bill_after["LinkedTxn"]
    assert api.read("Vendor", vendor_id)["Balance"] == pytest.approx(vendor["Balance"] - pay)
    assert api.read("Account", "1")["CurrentBalance"] == pytest.approx(bank["CurrentBalance"] - pay)

    response = api.write("BillPayment", {"Id": payment["Id"], "SyncToken": payment["SyncToken"]}, "delete")
    assert response.status_code == 200
    restored = api.read("Bill", bill["Id"])
    assert restored["Balance"] == pytest.approx(bill["Balance"])
    assert "LinkedTxn" not in restored
    assert int(restored["SyncToken"]) == int(bill["SyncToken"]) + 2
    assert api.read("Vendor", vendor_id)["Balance"] == pytest.approx(vendor["Balance"])
    assert api.read("Account", "1")["CurrentBalance"] == pytest.approx(bank["CurrentBalance"])


def test_overpaying_a_bill_is_refused_and_changes_nothing(api):
    bill = open_unpaid_bill(api)
    body = {
        "VendorRef": {"value": bill["VendorRef"]["value"]},
        "PayType": "Check",
        "CheckPayment": {"BankAccountRef": {"value": "1"}},
        "TotalAmt": bill["Balance"] + 1,
        "Line": [{"Amount": bill["Balance"] + 1, "LinkedTxn": [{"TxnId": bill["Id"], "TxnType": "Bill"}]}],
    }
    _, error = fault_of(api.write("BillPayment", body))
    assert error["code"] == "6000"
    assert api.read("Bill", bill["Id"]) == bill


def test_void_invoice_and_void_payment(api):
    invoices = api.rows("SELECT * FROM Invoice WHERE Balance > '0' ORDERBY Id DESC MAXRESULTS 1000", "Invoice")
    invoice = next(i for i in invoices if not i.get("LinkedTxn"))
    customer = api.read("Customer", invoice["CustomerRef"]["value"])
    response = api.write("Invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, "void")
    assert response.status_code == 200, response.text
    voided = response.json()["Invoice"]
    assert voided["TotalAmt"] == 0 and voided["Balance"] == 0
    assert voided["PrivateNote"] == "Voided"
    assert all(line["Amount"] == 0 for line in voided["Line"])
    assert api.read("Customer", customer["Id"])["Balance"] == pytest.approx(customer["Balance"] - invoice["TotalAmt"])

    payment = api.rows("SELECT * FROM Payment ORDERBY Id DESC MAXRESULTS 1", "Payment")[0]
    paid_id = payment["Line"][0]["LinkedTxn"][0]["TxnId"]
    paid = api.read("Invoice", paid_id)
    deposit = api.read("Account", payment["DepositToAccountRef"]["value"])
    response = api.write("Payment", {"Id": payment["Id"], "SyncToken": payment["SyncToken"]}, "void")
    assert response.status_code == 200
    assert response.json()["Payment"]["TotalAmt"] == 0
    applied = payment["Line"][0]["Amount"]
    assert api.read("Invoice", paid_id)["Balance"] == pytest.approx(paid["Balance"] + applied)
    assert api.read("Account", deposit["Id"])["CurrentBalance"] == pytest.approx(
        deposit["CurrentBalance"] - payment["TotalAmt"]
    )

    bill = open_unpaid_bill(api)
    _, error = fault_of(api.write("Bill", {"Id": bill["Id"], "SyncToken": bill["SyncToken"]}, "void"))
    assert "cannot be voided" in error["Detail"]


def test_a_partly_unapplied_payment_credits_the_customer_and_ar_with_all_of_it(api):
    """QBO keeps what a payment does not apply as its UnappliedAmt: the whole payment leaves the
    customer's balance and A/R (the ledger posts it so), the invoice only what its line applies."""
    seeded = api.rows("SELECT * FROM Payment WHERE UnappliedAmt > '0' MAXRESULTS 1000", "Payment")
    assert seeded  # the seed leaves some payments partly unapplied
    payment = seeded[0]
    applied = payment["Line"][0]["Amount"]
    assert payment["UnappliedAmt"] == pytest.approx(payment["TotalAmt"] - applied) and payment["UnappliedAmt"] > 0
    customer_id, paid_id = payment["CustomerRef"]["value"], payment["Line"][0]["LinkedTxn"][0]["TxnId"]
    customer, paid, ar = api.read("Customer", customer_id), api.read("Invoice", paid_id), api.read("Account", "5")
    assert ar["AccountType"] == "Accounts Receivable"
    response = api.write("Payment", {"Id": payment["Id"], "SyncToken": payment["SyncToken"]}, "void")
    assert response.status_code == 200, response.text
    assert response.json()["Payment"]["UnappliedAmt"] == 0
    assert api.read("Customer", customer_id)["Balance"] == pytest.approx(customer["Balance"] + payment["TotalAmt"])
    assert api.read("Account", "5")["CurrentBalance"] == pytest.approx(ar["CurrentBalance"] + payment["TotalAmt"])
    assert api.read("Invoice", paid_id)["Balance"] == pytest.approx(paid["Balance"] + applied)

    # Paying 40.00 against 25.00 of an open invoice leaves 15.00 unapplied.
    invoices = api.rows("SELECT * FROM Invoice WHERE Balance > '30' ORDERBY Id DESC MAXRESULTS 1000", "Invoice")
    invoice = invoices[0]
    customer = api.read("Customer", invoice["CustomerRef"]["value"])
    ar = api.read("Account", "5")
    body = {"CustomerRef": {"value": customer["Id"]}, "TotalAmt": 40, "DepositToAccountRef": {"value": "1"},
            "Line": [{"Amount": 25, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]}  # fmt: skip
    response = api.write("Payment", body)
    assert response.status_code == 200, response.text
    assert response.json()["Payment"]["UnappliedAmt"] == 15
    assert api.read("Customer", customer["Id"])["Balance"] == pytest.approx(customer["Balance"] - 40)
    assert api.read("Account", "5")["CurrentBalance"] == pytest.approx(ar["CurrentBalance"] - 40)
    assert api.read("Invoice", invoice["Id"])["Balance"] == pytest.approx(invoice["Balance"] - 25)


@pytest.mark.parametrize(
    ("body", "code", "element"),
    [
        ({"Line": [{"Amount": 5, "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "40"}}}]}, "2020",
         "VendorRef"),
        ({"VendorRef": {"value": "99999"}, "Line": []}, "2500", "VendorRef"),
        ({"VendorRef": {"value": "4"}}, "2020", "Line"),
        ({"VendorRef": {"value": "4"}, "Line": [{"Amount": "ten", "DetailType": "AccountBasedExpenseLineDetail",
          "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "40"}}}]}, "2010", "Line.Amount"),
        ({"VendorRef": {"value": "4"}, "Line": [{"Amount": 5, "DetailType": "AccountBasedExpenseLineDetail",
          "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "777"}}}]}, "2500",
         "Line.AccountBasedExpenseLineDetail.AccountRef"),
        ({"VendorRef": {"value": "4"}, "TxnDate": "next tuesday", "Line": [{"Amount": 5,
          "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "40"}}}]}, "2010", "TxnDate"),
    ],
)  # fmt: skip
def test_bill_validation_faults_name_the_element(api, body, code, element):
    count = api.count("SELECT COUNT(*) FROM Bill")
    kind, error = fault_of(api.write("Bill", body))
    assert (kind, error["code"], error["element"]) == ("ValidationFault", code, element)
    assert api.count("SELECT COUNT(*) FROM Bill") == count


def test_duplicate_display_name_and_bad_json(api):
    _, error = fault_of(api.write("Vendor", {"DisplayName": "o'brien"}))
    assert error["code"] == "6240"
    created = api.write("Vendor", {"DisplayName": "Brand New Supplier", "PrimaryEmailAddr": {"Address": "a@b.c"}})
    assert created.status_code == 200
    assert created.json()["Vendor"]["Balance"] == 0
    response = api.http.post(f"{api.base}/vendor", data=b"{not json", headers={**api.headers(),
                             "Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 400
    assert response.json()["Fault"]["type"] == "ValidationFault"


def test_unknown_entity_endpoint(api):
    response = api.get("spaceship/1")
    assert response.status_code == 400
    assert "Fault" in response.json()


def test_objects_never_change_without_a_sync_token_bump(api):
    before = {e: {o["Id"]: o for o in api.all_objects(e)["active"]} for e in ("Bill", "Vendor", "Account")}
    api.sandbox.control("simulate", {"operations": 40, "seed": 4})
    for entity, objects in before.items():
        after = {o["Id"]: o for o in api.all_objects(entity)["active"]}
        for object_id, old in objects.items():
            new = after.get(object_id)
            if new is not None and new != old:
                assert int(new["SyncToken"]) > int(old["SyncToken"]), (entity, object_id)
                assert new["MetaData"]["LastUpdatedTime"] >= old["MetaData"]["LastUpdatedTime"]
