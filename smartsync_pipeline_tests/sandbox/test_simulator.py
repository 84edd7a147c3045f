"""The business-activity simulator: its change list is exactly what the API then shows."""

from __future__ import annotations

from collections import Counter, defaultdict

from smartsync_pipeline.entities import entity as entity_spec
from smartsync_pipeline.sandbox.qbo_time import iso
from smartsync_pipeline_tests.sandbox.api_session import SandboxApi

START = "2026-11-20T09:30:00-08:00"


def cents(value: float) -> int:
    return round(value * 100)


def test_changes_match_the_api_and_cdc(sandbox_factory):
    sandbox = sandbox_factory(seed=61)
    api = SandboxApi(sandbox)
    since = iso(float(sandbox.control("clock", method="GET")["epoch"]) - 1)
    changes = sandbox.control("simulate", {"operations": 150, "seed": 3})["changes"]
    assert len(changes) > 150
    assert {c["op"] for c in changes} == {"create", "update", "delete"}
    touched = {c["entity"] for c in changes}
    assert {"Bill", "Invoice", "Purchase", "BillPayment", "Payment", "Vendor", "Customer", "Account"} <= touched
    stamps = Counter(c["last_updated"] for c in changes)
    assert max(stamps.values()) > 1  # several changes in one second happen

    last: dict[tuple[str, str], dict] = {}
    for change in changes:
        last[(change["entity"], change["id"])] = change
    for (entity, object_id), change in last.items():
        response = api.get(f"{entity.lower()}/{object_id}")
        if change["op"] == "delete":
            assert response.status_code == 400
            continue
        obj = response.json()[entity]
        assert obj["SyncToken"] == change["sync_token"], (entity, object_id)
        assert obj["MetaData"]["LastUpdatedTime"] == change["last_updated"]

    # Side effects are listed too: a new bill payment is followed by its bill's balance update.
    for index, change in enumerate(changes):
        if change["entity"] == "BillPayment" and change["op"] == "create":
            follow = changes[index + 1 : index + 6]
            assert any(c["entity"] == "Bill" and c["op"] == "update" for c in follow)
            break
    else:
        raise AssertionError("the simulation paid no bill")

    # CDC since before the run lists every changed object exactly once, deletes as deletes; the entities
    # QBO's CDC does not cover are refused, as QBO does.
    outside = sorted(n for n in touched if not entity_spec(n).in_cdc)
    assert "TimeActivity" in outside
    refused = api.cdc(outside[0], since)
    assert refused.status_code == 400 and "does not support" in refused.text
    names = sorted(n for n in touched if entity_spec(n).in_cdc)
    last = {key: change for key, change in last.items() if key[0] in names}
    [entry] = api.cdc(",".join(names), since).json()["CDCResponse"]
    seen = Counter()
    for name, result in zip(names, entry["QueryResponse"], strict=True):
        for obj in result.get(name, []):
            seen[(name, obj["Id"])] += 1
            assert (obj.get("status") == "Deleted") == (last[(name, obj["Id"])]["op"] == "delete")
    assert set(seen) == set(last)
    assert set(seen.values()) == {1}


def test_books_stay_consistent_after_activity(sandbox_factory):
    sandbox = sandbox_factory(seed=62)
    api = SandboxApi(sandbox)
    sandbox.control("simulate", {"operations": 300, "seed": 5})
    dump = {e: api.all_objects(e)["active"] for e in ("Bill", "BillPayment", "Vendor", "Invoice", "Payment",
                                                     "Customer", "Account", "VendorCredit", "CreditMemo")}  # fmt: skip
    paid = defaultdict(int)
    for bp in dump["BillPayment"]:
        for line in bp["Line"]:
            for txn in line["LinkedTxn"]:
                paid[txn["TxnId"]] += cents(line["Amount"])
    open_by_vendor = defaultdict(int)
    for bill in dump["Bill"]:
        assert cents(bill["Balance"]) == cents(bill["TotalAmt"]) - paid[bill["Id"]], bill["Id"]
        open_by_vendor[bill["VendorRef"]["value"]] += cents(bill["Balance"])
    for credit in dump["VendorCredit"]:  # unapplied vendor credits lower what is owed
        open_by_vendor[credit["VendorRef"]["value"]] -= cents(credit["Balance"])
    for vendor in dump["Vendor"]:
        assert cents(vendor["Balance"]) == open_by_vendor[vendor["Id"]], vendor["Id"]
    received = defaultdict(int)
    open_by_customer = defaultdict(int)
    for payment in dump["Payment"]:
        applied = 0
        for line in payment["Line"]:
            applied += cents(line["Amount"])
            for txn in line["LinkedTxn"]:
                received[txn["TxnId"]] += cents(line["Amount"])
        # What a payment does not apply is a credit the customer holds (a voided one holds none).
        assert cents(payment.get("UnappliedAmt") or 0) == cents(payment["TotalAmt"]) - applied, payment["Id"]
        open_by_customer[payment["CustomerRef"]["value"]] -= cents(payment["TotalAmt"]) - applied
    for invoice in dump["Invoice"]:
        assert cents(invoice["Balance"]) == cents(invoice["TotalAmt"]) - received[invoice["Id"]], invoice["Id"]
        open_by_customer[invoice["CustomerRef"]["value"]] += cents(invoice["Balance"])
    for credit in dump["CreditMemo"]:
        open_by_customer[credit["CustomerRef"]["value"]] -= cents(credit["Balance"])
    for customer in dump["Customer"]:
        assert cents(customer["Balance"]) == open_by_customer[customer["Id"]], customer["Id"]
    accounts = {a["AccountType"]: a for a in dump["Account"]}
    assert cents(accounts["Accounts Payable"]["CurrentBalance"]) == sum(open_by_vendor.values())
    assert cents(accounts["Accounts Receivable"]["CurrentBalance"]) == sum(open_by_customer.values())


def test_same_seed_same_activity(sandbox_factory):
    runs = []
    for _ in range(2):
        sandbox = sandbox_factory(seed=63, start_time=START, freeze=True)
        runs.append(sandbox.control("simulate", {"operations": 60, "seed": 8})["changes"])
    assert runs[0] == runs[1]
    other = sandbox_factory(seed=63, start_time=START, freeze=True)
    assert other.control("simulate", {"operations": 60, "seed": 9})["changes"] != runs[0]
